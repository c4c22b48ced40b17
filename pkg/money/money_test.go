package money

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestDecimalAndFormatRespectMinorUnits(t *testing.T) {
	cases := []struct {
		m       Money
		decimal string
		format  string
	}{
		{Yen(1_900_000), "1900000", "¥1,900,000"},
		{Yen(500), "500", "¥500"},
		{New(1234, USD), "12.34", "US$12.34"},
		{New(5, USD), "0.05", "US$0.05"},
		{New(-5, EUR), "-0.05", "-€0.05"},
		{New(12_345_678, KRW), "12345678", "₩12,345,678"},
		{New(123_456_789, GBP), "1234567.89", "£1,234,567.89"},
		{New(math.MinInt64, JPY), "-9223372036854775808", "-¥9,223,372,036,854,775,808"},
	}
	for _, c := range cases {
		if got := c.m.Decimal(); got != c.decimal {
			t.Errorf("%v.Decimal() = %q, want %q", c.m, got, c.decimal)
		}
		if got := c.m.Format(); got != c.format {
			t.Errorf("%v.Format() = %q, want %q", c.m, got, c.format)
		}
	}
}

func TestArithmeticRefusesMixedCurrenciesAndOverflow(t *testing.T) {
	if _, err := Yen(1).Add(New(1, USD)); !errors.Is(err, ErrCurrencyMismatch) {
		t.Fatalf("JPY+USD: err = %v, want ErrCurrencyMismatch", err)
	}
	if _, err := Yen(math.MaxInt64).Add(Yen(1)); !errors.Is(err, ErrOverflow) {
		t.Fatalf("max+1: err = %v, want ErrOverflow", err)
	}
	if _, err := Yen(math.MinInt64).Sub(Yen(1)); !errors.Is(err, ErrOverflow) {
		t.Fatalf("min-1: err = %v, want ErrOverflow", err)
	}
	if _, err := Yen(math.MaxInt64 / 2).Mul(3); !errors.Is(err, ErrOverflow) {
		t.Fatalf("mul: err = %v, want ErrOverflow", err)
	}
	got, err := Sum(JPY, Yen(100_000), Yen(300_000), Yen(1_400_000), Yen(100_000))
	if err != nil || got != Yen(1_900_000) {
		t.Fatalf("Sum = %v, %v; want ¥1,900,000", got, err)
	}
	d, _ := Yen(3_000_000).Sub(Yen(1_900_000))
	if d != Yen(1_100_000) {
		t.Fatalf("Sub = %v", d)
	}
}

func TestParseCurrency(t *testing.T) {
	for _, s := range []string{"jpy", " USD ", "Krw"} {
		if _, err := ParseCurrency(s); err != nil {
			t.Errorf("ParseCurrency(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "XXX", "yen", "US"} {
		if _, err := ParseCurrency(s); !errors.Is(err, ErrUnknownCurrency) {
			t.Errorf("ParseCurrency(%q) err = %v, want ErrUnknownCurrency", s, err)
		}
	}
}

func TestJSONRoundTripAndStrictDecoding(t *testing.T) {
	b, _ := json.Marshal(Yen(3_000_000))
	if string(b) != `{"amount":3000000,"currency":"JPY"}` {
		t.Fatalf("marshal = %s", b)
	}
	var m Money
	if err := json.Unmarshal([]byte(`{"amount":1234,"currency":"usd"}`), &m); err != nil || m != New(1234, USD) {
		t.Fatalf("unmarshal = %v, %v", m, err)
	}
	for _, bad := range []string{`{"amount":12.5,"currency":"JPY"}`, `{"amount":1,"currency":"XYZ"}`, `{"amount":"1","currency":"JPY"}`, `{"amount":1e3,"currency":"JPY"}`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("unmarshal %s: want error", bad)
		}
	}
}

func TestConvertRoundsToTheTargetMinorUnit(t *testing.T) {
	usd, _ := ParseRate(USD, JPY, "150.25")
	krw, _ := ParseRate(JPY, KRW, "9.1234")
	eur, _ := ParseRate(EUR, JPY, "162.5")
	cases := []struct {
		rate Rate
		in   Money
		want Money
	}{
		// ¥3,000,000 / 150.25 = 19966.722... USD -> 1996672 cents
		{usd, Yen(3_000_000), New(1_996_672, USD)},
		// ¥1 / 150.25 = 0.00665 USD -> 1 cent (0.665 cents rounds up)
		{usd, Yen(1), New(1, USD)},
		// $100.00 * 150.25 = ¥15,025
		{usd, New(10_000, USD), Yen(15_025)},
		// ¥3,000,000 * 9.1234 = ₩27,370,200 exactly; zero-decimal on both sides
		{krw, Yen(3_000_000), New(27_370_200, KRW)},
		// ¥1,625 / 162.5 = €10.00
		{eur, Yen(1_625), New(1_000, EUR)},
		// half away from zero: ¥0.5 equivalent -> ¥1, and negative mirrors
		{krw, New(-5, KRW), Yen(-1)},
	}
	for _, c := range cases {
		got, err := c.rate.Convert(c.in)
		if err != nil || got != c.want {
			t.Errorf("%s/%s %s: Convert(%v) = %v, %v; want %v", c.rate.Base, c.rate.Quote, c.rate.Price(), c.in, got, err, c.want)
		}
	}
	if _, err := usd.Convert(New(1, KRW)); !errors.Is(err, ErrCurrencyMismatch) {
		t.Fatalf("foreign currency: err = %v", err)
	}
}

func TestParseRateRejectsNonPositiveAndExotic(t *testing.T) {
	for _, p := range []string{"", "0", "-1", "1e3", "abc", "1/3", "+2"} {
		if _, err := ParseRate(USD, JPY, p); !errors.Is(err, ErrBadRate) {
			t.Errorf("ParseRate(%q) err = %v, want ErrBadRate", p, err)
		}
	}
}

// FuzzConvertRoundTrip: converting JPY to a display currency and back never
// drifts by more than what one minor unit of the display currency is worth.
func FuzzConvertRoundTrip(f *testing.F) {
	f.Add(int64(3_000_000), "150.25")
	f.Add(int64(1), "0.0001")
	f.Add(int64(-999_999_999), "1333.333333")
	f.Fuzz(func(t *testing.T, yen int64, price string) {
		if yen > 1e15 || yen < -1e15 {
			return
		}
		r, err := ParseRate(USD, JPY, price)
		if err != nil {
			return
		}
		usd, err := r.Convert(Yen(yen))
		if err != nil {
			return
		}
		back, err := r.Convert(usd)
		if err != nil {
			return
		}
		// one cent is worth price/100 yen; allow that plus rounding of the way back.
		cent, _ := r.Convert(New(1, USD))
		diff := back.Amount - yen
		if diff < 0 {
			diff = -diff
		}
		if diff > cent.Amount+1 {
			t.Fatalf("¥%d -> %v -> %v drifts by %d (> %d)", yen, usd, back, diff, cent.Amount+1)
		}
	})
}

func FuzzUnmarshalNeverPanics(f *testing.F) {
	f.Add([]byte(`{"amount":1,"currency":"JPY"}`))
	f.Add([]byte(`{"amount":99999999999999999999,"currency":"USD"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Money
		if json.Unmarshal(b, &m) == nil && !m.Currency.Valid() {
			t.Fatalf("accepted invalid currency %q", m.Currency)
		}
	})
}
