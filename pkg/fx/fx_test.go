package fx

import (
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

func TestDefaultTableConvertsEveryDisplayCurrency(t *testing.T) {
	tab := Default()
	want := map[money.Currency]money.Money{
		money.JPY: money.Yen(3_000_000),
		money.USD: money.New(1_984_127, money.USD),  // 3,000,000 / 151.20
		money.EUR: money.New(1_830_943, money.EUR),  // / 163.85
		money.GBP: money.New(1_535_312, money.GBP),  // / 195.40
		money.AUD: money.New(3_027_245, money.AUD),  // / 99.10
		money.CNY: money.New(14_251_781, money.CNY), // / 21.05
		money.TWD: money.New(63_559_322, money.TWD), // / 4.72
		money.KRW: money.New(27_840_000, money.KRW), // × 9.28
	}
	for c, w := range want {
		got, err := tab.FromJPY(money.Yen(3_000_000), c)
		if err != nil || got != w {
			t.Errorf("%s: %v %v, want %v", c, got, err, w)
		}
	}
}

func TestParseOverridesAndRejects(t *testing.T) {
	tab, err := Parse("as_of=2026-11-25T06:00:00Z USD=150 KRW=9.5/JPY")
	if err != nil {
		t.Fatal(err)
	}
	if !tab.AsOf.Equal(time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("as_of %v", tab.AsOf)
	}
	usd, _ := tab.FromJPY(money.Yen(1_500_000), money.USD)
	krw, _ := tab.FromJPY(money.Yen(1_000), money.KRW)
	eur, _ := tab.FromJPY(money.Yen(163_850), money.EUR) // default kept
	if usd != money.New(1_000_000, money.USD) || krw != money.New(9_500, money.KRW) || eur != money.New(100_000, money.EUR) {
		t.Fatalf("usd %v krw %v eur %v", usd, krw, eur)
	}
	for _, bad := range []string{"USD", "XXX=1", "USD=-1", "USD=1e2", "KRW=9", "USD=1/JPY", "JPY=1", "as_of=yesterday"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestYenRangeIsExactAtTheEdges(t *testing.T) {
	tab := Default()
	lo, hi := money.New(1_000_000, money.USD), money.New(2_000_000, money.USD) // $10,000 – $20,000
	minJPY, maxJPY, err := tab.YenRange(&lo, &hi)
	if err != nil {
		t.Fatal(err)
	}
	show := func(p int64) int64 { d, _ := tab.FromJPY(money.Yen(p), money.USD); return d.Amount }
	if show(*minJPY) < lo.Amount || show(*minJPY-1) >= lo.Amount {
		t.Fatalf("min ¥%d shows %d; ¥%d shows %d; bound %d", *minJPY, show(*minJPY), *minJPY-1, show(*minJPY-1), lo.Amount)
	}
	if show(*maxJPY) > hi.Amount || show(*maxJPY+1) <= hi.Amount {
		t.Fatalf("max ¥%d shows %d; ¥%d shows %d; bound %d", *maxJPY, show(*maxJPY), *maxJPY+1, show(*maxJPY+1), hi.Amount)
	}
	// KRW has no minor unit and a rate above 1: each yen is several won.
	klo := money.New(10_000_000, money.KRW)
	kmin, _, _ := tab.YenRange(&klo, nil)
	if d, _ := tab.FromJPY(money.Yen(*kmin), money.KRW); d.Amount < klo.Amount {
		t.Fatalf("KRW lower edge ¥%d shows %v", *kmin, d)
	}
	if d, _ := tab.FromJPY(money.Yen(*kmin-1), money.KRW); d.Amount >= klo.Amount {
		t.Fatalf("KRW lower edge not minimal")
	}
	jlo := money.Yen(500)
	jmin, jmax, _ := tab.YenRange(&jlo, nil)
	if *jmin != 500 || jmax != nil {
		t.Fatalf("JPY range %v %v", *jmin, jmax)
	}
}
