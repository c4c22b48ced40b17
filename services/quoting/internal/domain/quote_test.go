package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

func adiposeStroke() Treatment {
	return Treatment{
		ID: "ginza-adipose-msc-stroke", Name: "Adipose MSC for stroke", ClinicID: "tokyo-ginza", ClinicName: "Ginza",
		PlanNumber: "PB3230045", RiskClass: "II", PlanStatus: "active",
		PlanValidFrom: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), PlanValidUntil: time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC),
		CellSource: "adipose", Autologous: true, Routes: []string{"iv"}, Sessions: 1,
		Consultation: money.Yen(100_000), Harvest: money.Yen(300_000), QualityTesting: money.Yen(100_000),
		AdministrationPerSession: money.Yen(1_100_000),
		Doses:                    []Dose{{100_000_000, money.Yen(1_400_000)}, {200_000_000, money.Yen(2_400_000)}},
	}
}

var patient = Patient{Name: "Kim Min-jun", Email: "minjun@example.kr", Country: "KR", Language: "ko"}

// 2026-11-25 10:00 JST
var issuedAt = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

func TestIssueItemizesAndSplitsDepositFromBalance(t *testing.T) {
	q, err := Issue("q1", adiposeStroke(), Request{DoseCells: 100_000_000, Currency: money.USD, Patient: patient}, DefaultRates(), DefaultDepositPolicy, issuedAt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{LineConsultation: 100_000, LineHarvest: 300_000, LineCellCulture: 1_400_000, LineQualityTesting: 100_000, LineAdministration: 1_100_000}
	if len(q.Lines) != len(want) {
		t.Fatalf("lines = %+v", q.Lines)
	}
	for _, l := range q.Lines {
		if l.Amount != money.Yen(want[l.Code]) {
			t.Errorf("line %s = %v, want ¥%d", l.Code, l.Amount, want[l.Code])
		}
	}
	if q.Total != money.Yen(3_000_000) || q.Deposit != money.Yen(1_900_000) || q.Balance != money.Yen(1_100_000) {
		t.Fatalf("total/deposit/balance = %v/%v/%v", q.Total, q.Deposit, q.Balance)
	}
	// ¥3,000,000 / 151.20 = 19,841.2698… USD → US$19,841.27
	if q.DisplayTotal != money.New(1_984_127, money.USD) || q.FX.Price != "151.20" {
		t.Fatalf("display = %v at %s", q.DisplayTotal, q.FX.Price)
	}
	if !strings.Contains(q.Lines[2].Description, "100 million adipose-derived MSCs") {
		t.Errorf("culture line = %q", q.Lines[2].Description)
	}
	// Valid through 2026-12-09 23:59:59 JST.
	if want := time.Date(2026, 12, 9, 14, 59, 59, 0, time.UTC); !q.ValidUntil.Equal(want) {
		t.Fatalf("valid until %v, want %v", q.ValidUntil, want)
	}
}

func TestDisplayTotalsToTheUnitInZeroDecimalCurrencies(t *testing.T) {
	for _, c := range []struct {
		currency money.Currency
		want     money.Money
	}{
		{money.JPY, money.Yen(3_000_000)},
		{money.KRW, money.New(27_840_000, money.KRW)}, // 3,000,000 × 9.28
		{money.EUR, money.New(1_830_943, money.EUR)},  // 3,000,000 / 163.85 = 18,309.43
	} {
		q, err := Issue("q", adiposeStroke(), Request{DoseCells: 100_000_000, Currency: c.currency, Patient: patient}, DefaultRates(), DefaultDepositPolicy, issuedAt)
		if err != nil {
			t.Fatal(err)
		}
		if q.DisplayTotal != c.want {
			t.Errorf("%s display total = %v, want %v", c.currency, q.DisplayTotal, c.want)
		}
	}
}

func TestIssueRefusals(t *testing.T) {
	tr := adiposeStroke()
	ok := Request{DoseCells: 100_000_000, Currency: money.USD, Patient: patient}
	fieldOf := func(err error) string {
		var fe FieldError
		if errors.As(err, &fe) {
			return fe.Field
		}
		return ""
	}
	bad := ok
	bad.DoseCells = 50_000_000
	if _, err := Issue("q", tr, bad, DefaultRates(), DefaultDepositPolicy, issuedAt); fieldOf(err) != "dose_cells" {
		t.Errorf("unknown dose: %v", err)
	}
	bad = ok
	bad.Patient.Email = "not an email"
	if _, err := Issue("q", tr, bad, DefaultRates(), DefaultDepositPolicy, issuedAt); fieldOf(err) != "patient.email" {
		t.Errorf("bad email: %v", err)
	}
	suspended := tr
	suspended.PlanStatus = "suspended"
	if _, err := Issue("q", suspended, ok, DefaultRates(), DefaultDepositPolicy, issuedAt); !errors.Is(err, ErrNotBookable) {
		t.Errorf("suspended plan: %v", err)
	}
	// Plan valid until 2027-03-31: on 2027-04-01 JST it is no longer bookable.
	if _, err := Issue("q", tr, ok, DefaultRates(), DefaultDepositPolicy, time.Date(2027, 3, 31, 15, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNotBookable) {
		t.Errorf("expired plan: %v", err)
	}
	if _, err := Issue("q", tr, ok, DefaultRates(), DepositPolicy{Covers: []string{LineConsultation, LineHarvest, LineCellCulture, LineQualityTesting, LineAdministration}}, issuedAt); err == nil {
		t.Errorf("a policy leaving no balance must be refused")
	}
}

func TestAcceptOnceAndNotAfterExpiry(t *testing.T) {
	q, _ := Issue("q", adiposeStroke(), Request{DoseCells: 100_000_000, Currency: money.JPY, Patient: patient}, DefaultRates(), DefaultDepositPolicy, issuedAt)
	expired := q
	if _, err := expired.Accept("b1", q.ValidUntil.Add(time.Second)); !errors.Is(err, ErrQuoteExpired) {
		t.Fatalf("accept after validity: %v", err)
	}
	if changed, err := q.Accept("b1", q.ValidUntil); err != nil || !changed {
		t.Fatalf("accept on the last second: %v %v", changed, err)
	}
	if changed, err := q.Accept("b1", q.ValidUntil); err != nil || changed {
		t.Fatalf("same booking again: %v %v", changed, err)
	}
	if _, err := q.Accept("b2", q.ValidUntil); !errors.Is(err, ErrAlreadyAccepted) {
		t.Fatalf("another booking: %v", err)
	}
}
