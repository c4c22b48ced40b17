package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
)

func date(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }

func adiposeStroke() Treatment {
	return Treatment{
		ID: "ginza-adipose-msc-stroke", Name: "Adipose MSC for stroke", Conditions: []string{"stroke"},
		ClinicID: "tokyo-ginza", ClinicName: "Ginza", PlanNumber: "PB3230045", RiskClass: "II", PlanStatus: "active",
		PlanValidFrom: date("2024-04-01"), PlanValidUntil: date("2027-03-31"),
		CellSource: "adipose", Autologous: true, Routes: []string{"iv"}, Sessions: 1, CultureDaysMin: 21, CultureDaysMax: 35, Visits: 2,
		Consultation: money.Yen(100_000), Harvest: money.Yen(300_000), QualityTesting: money.Yen(100_000),
		AdministrationPerSession: money.Yen(1_100_000),
		Doses:                    []Dose{{100_000_000, money.Yen(1_400_000)}, {200_000_000, money.Yen(2_400_000)}},
		Eligibility:              Rules{RequiresConfirmedDiagnosis: true, MinCancerFreeYears: 5, OrganDisease: "review"},
		DepositPolicy:            DefaultDepositPolicy,
		Extras: []Extra{
			{"rehabilitation", money.Yen(350_000), "package", true}, {"hotel", money.Yen(28_000), "night", true},
			{"interpreter", money.Yen(45_000), "day", true}, {"visa_guarantee", money.Yen(55_000), "once", false},
		},
	}
}

var patient = Patient{Name: "Kim Min-jun", Email: "minjun@example.kr", Country: "KR", Language: "ko"}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func fit() *Screening {
	return &Screening{DiagnosisConfirmed: yes(), SevereOrganDisease: no(), CanTravel: yes()}
}

// 2026-11-25 10:00 JST
var issuedAt = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

func issue(t *testing.T, tr Treatment, req Request) Quote {
	t.Helper()
	if req.Patient.Name == "" {
		req.Patient = patient
	}
	if req.Currency == "" {
		req.Currency = money.JPY
	}
	q, err := Issue("q1", tr, req, fx.Default(), issuedAt)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func line(q Quote, code string) Line {
	for _, l := range q.Lines {
		if l.Code == code {
			return l
		}
	}
	return Line{}
}

func TestItemizedQuoteWithTaxAndDeposit(t *testing.T) {
	q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Currency: money.USD, Screening: fit()})
	want := map[string]int64{LineConsultation: 100_000, LineHarvest: 300_000, LineCellCulture: 1_400_000, LineQualityTesting: 100_000,
		LineAdministration: 1_100_000, LineConsumptionTax: 300_000}
	if len(q.Lines) != len(want) {
		t.Fatalf("lines = %+v", q.Lines)
	}
	for code, amount := range want {
		if got := line(q, code).Amount; got != money.Yen(amount) {
			t.Errorf("%s = %v, want ¥%d", code, got, amount)
		}
	}
	// Deposit: what is spent before administration, with its tax:
	// (100,000 + 300,000 + 1,400,000 + 100,000) × 1.10 = 2,090,000.
	if q.Subtotal != money.Yen(3_000_000) || q.Tax != money.Yen(300_000) || q.Total != money.Yen(3_300_000) ||
		q.Deposit != money.Yen(2_090_000) || q.Balance != money.Yen(1_210_000) {
		t.Fatalf("subtotal/tax/total/deposit/balance = %v/%v/%v/%v/%v", q.Subtotal, q.Tax, q.Total, q.Deposit, q.Balance)
	}
	if !line(q, LineCellCulture).InDeposit || line(q, LineAdministration).InDeposit {
		t.Fatal("deposit flags")
	}
	// ¥3,300,000 / 151.20 = 21,825.396… → US$21,825.40
	if q.DisplayTotal != money.New(2_182_540, money.USD) || q.FX.Price != "151.20" || q.Eligibility.Status != Eligible {
		t.Fatalf("display %v at %s, eligibility %v", q.DisplayTotal, q.FX.Price, q.Eligibility)
	}
	if want := time.Date(2026, 12, 9, 14, 59, 59, 0, time.UTC); !q.ValidUntil.Equal(want) {
		t.Fatalf("valid until %v, want %v", q.ValidUntil, want)
	}
}

func TestExtrasAreItemizedAndTaxedOnlyWhenTaxable(t *testing.T) {
	q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Screening: fit(), Extras: []ExtraRequest{
		{"rehabilitation", 1}, {"hotel", 7}, {"visa_guarantee", 1}}})
	if l := line(q, "hotel"); l.Quantity != 7 || l.UnitPrice != money.Yen(28_000) || l.Amount != money.Yen(196_000) || l.InDeposit {
		t.Fatalf("hotel line %+v", l)
	}
	// Taxable: 3,000,000 + 350,000 + 196,000; the visa guarantee (55,000) is not.
	if q.Tax != money.Yen(354_600) || q.Subtotal != money.Yen(3_601_000) || q.Total != money.Yen(3_955_600) {
		t.Fatalf("tax %v subtotal %v total %v", q.Tax, q.Subtotal, q.Total)
	}
	// Extras are paid with the balance (the administration visit).
	if q.Deposit != money.Yen(2_090_000) || q.Balance != money.Yen(1_865_600) {
		t.Fatalf("deposit %v balance %v", q.Deposit, q.Balance)
	}
	_, err := Issue("q", adiposeStroke(), Request{DoseCells: 100_000_000, Currency: money.JPY, Patient: patient, Extras: []ExtraRequest{
		{"hotel", 0}, {"spa", 1}, {"airport_transfer", 1}, {"interpreter", 61}}}, fx.Default(), issuedAt)
	got := fields(err)
	if strings.Join(got, ",") != "extras[0].nights,extras[1].code,extras[2].code,extras[3].days" {
		t.Fatalf("extras fields = %v (%v)", got, err)
	}
}

func TestTaxRoundsDownOnceOnTheTotal(t *testing.T) {
	tr := adiposeStroke()
	tr.Consultation = money.Yen(100_005) // taxable total ends in 5: 10% is x.5
	q := issue(t, tr, Request{DoseCells: 100_000_000, Screening: fit()})
	if q.Tax != money.Yen(300_000) || q.Total != money.Yen(3_300_005) {
		t.Fatalf("tax %v total %v", q.Tax, q.Total)
	}
	if q.Total != mustAdd(q.Deposit, q.Balance) {
		t.Fatal("total != deposit + balance")
	}
}

func mustAdd(a, b money.Money) money.Money { s, _ := a.Add(b); return s }

func TestDisplayTotalsToTheUnitInEveryCurrency(t *testing.T) {
	for _, c := range []struct {
		currency money.Currency
		want     money.Money
	}{
		{money.JPY, money.Yen(3_300_000)},
		{money.KRW, money.New(30_624_000, money.KRW)}, // 3,300,000 × 9.28, no minor unit
		{money.USD, money.New(2_182_540, money.USD)},  // / 151.20
		{money.EUR, money.New(2_014_037, money.EUR)},  // / 163.85 = 20,140.37
		{money.GBP, money.New(1_688_843, money.GBP)},  // / 195.40 = 16,888.43
		{money.AUD, money.New(3_329_970, money.AUD)},  // / 99.10 = 33,299.70
		{money.CNY, money.New(15_676_960, money.CNY)}, // / 21.05 = 156,769.60
		{money.TWD, money.New(69_915_254, money.TWD)}, // / 4.72 = 699,152.54
	} {
		q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Currency: c.currency, Screening: fit()})
		if q.DisplayTotal != c.want || q.Total != money.Yen(3_300_000) {
			t.Errorf("%s: display %v, want %v (total %v)", c.currency, q.DisplayTotal, c.want, q.Total)
		}
	}
}

func TestDepositPolicy(t *testing.T) {
	exosome := adiposeStroke()
	exosome.CellSource, exosome.Autologous, exosome.Harvest = "exosome", false, money.Yen(0)
	exosome.CultureDaysMin, exosome.CultureDaysMax, exosome.Visits = 0, 0, 1
	exosome.DepositPolicy = DepositPolicy{Covers: DefaultDepositPolicy.Covers, FullWithoutCulture: true}
	q := issue(t, exosome, Request{DoseCells: 100_000_000, Screening: fit()})
	if q.Deposit != q.Total || !q.Balance.IsZero() || q.RequiresHarvest {
		t.Fatalf("no culture stage, full up front: deposit %v balance %v harvest %v", q.Deposit, q.Balance, q.RequiresHarvest)
	}
	// The same clinic still splits protocols that have a culture stage.
	cultured := adiposeStroke()
	cultured.DepositPolicy.FullWithoutCulture = true
	if q := issue(t, cultured, Request{DoseCells: 100_000_000, Screening: fit()}); q.Balance != money.Yen(1_210_000) {
		t.Fatalf("cultured protocol balance %v", q.Balance)
	}
	// A clinic taking only the consultation and culture up front.
	lean := adiposeStroke()
	lean.DepositPolicy = DepositPolicy{Covers: []string{LineConsultation, LineCellCulture}}
	if q := issue(t, lean, Request{DoseCells: 100_000_000, Screening: fit()}); q.Deposit != money.Yen(1_650_000) {
		t.Fatalf("lean deposit %v, want (100,000 + 1,400,000) × 1.1", q.Deposit)
	}
	// A policy that leaves no balance on a cultured protocol is refused.
	greedy := adiposeStroke()
	greedy.DepositPolicy = DepositPolicy{Covers: []string{LineConsultation, LineHarvest, LineCellCulture, LineQualityTesting, LineAdministration}}
	if _, err := Issue("q", greedy, Request{DoseCells: 100_000_000, Currency: money.JPY, Patient: patient}, fx.Default(), issuedAt); err == nil {
		t.Fatal("a policy leaving no balance must be refused")
	}
}

func fields(err error) []string {
	var out []string
	if err == nil {
		return nil
	}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe validation.FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	walk(err)
	return out
}

func TestRefusals(t *testing.T) {
	tr := adiposeStroke()
	ok := Request{DoseCells: 100_000_000, Currency: money.USD, Patient: patient}
	bad := ok
	bad.DoseCells = 50_000_000
	if _, err := Issue("q", tr, bad, fx.Default(), issuedAt); strings.Join(fields(err), ",") != "dose_cells" {
		t.Errorf("unknown dose: %v", err)
	}
	bad = ok
	bad.Patient.Email = "not an email"
	bad.Patient.Country = "Korea"
	if _, err := Issue("q", tr, bad, fx.Default(), issuedAt); strings.Join(fields(err), ",") != "patient.email,patient.country" {
		t.Errorf("bad patient: %v", err)
	}
	for name, edit := range map[string]func(*Treatment){
		"suspended": func(t *Treatment) { t.PlanStatus = "suspended" },
		"withdrawn": func(t *Treatment) { t.PlanStatus = "withdrawn" },
		"class I":   func(t *Treatment) { t.RiskClass = "I" },
		"trial":     func(t *Treatment) { t.Trial = true },
	} {
		x := adiposeStroke()
		edit(&x)
		if _, err := Issue("q", x, ok, fx.Default(), issuedAt); !errors.Is(err, ErrNotBookable) {
			t.Errorf("%s plan: %v", name, err)
		}
	}
	// Plan valid until 2027-03-31: on 2027-04-01 JST (2027-03-31 15:00 UTC) it is not.
	if _, err := Issue("q", tr, ok, fx.Default(), time.Date(2027, 3, 31, 15, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNotBookable) {
		t.Errorf("expired plan: %v", err)
	}
	if _, err := Issue("q", tr, ok, fx.Default(), time.Date(2027, 3, 31, 14, 59, 0, 0, time.UTC)); err != nil {
		t.Errorf("last day of the plan: %v", err)
	}
}

// A deposit or balance one card payment cannot take is refused at the
// quote, never discovered at Stripe after the booking exists.
func TestAQuoteNoCardPaymentCouldPayIsRefused(t *testing.T) {
	tr := adiposeStroke()
	tr.Sessions, tr.AdministrationPerSession = 12, money.Yen(9_000_000) // ¥108,000,000 + tax in the balance
	_, err := Issue("q1", tr, Request{DoseCells: 100_000_000, Currency: money.JPY, Patient: patient, Screening: fit()}, fx.Default(), issuedAt)
	var fe validation.FieldError
	if !errors.As(err, &fe) || fe.Field != "dose_cells" || !strings.Contains(fe.Message, "99,999,999") && !strings.Contains(fe.Message, "99999999") {
		t.Fatalf("err = %v", err)
	}
	tr.AdministrationPerSession = money.Yen(7_000_000) // ¥84,000,000 + tax = ¥92,400,000: chargeable
	if _, err := Issue("q2", tr, Request{DoseCells: 100_000_000, Currency: money.JPY, Patient: patient, Screening: fit()}, fx.Default(), issuedAt); err != nil {
		t.Fatalf("a balance of ¥92,400,000: %v", err)
	}
}

// The quote fixes what a cancellation keeps: the clinic's fee before the
// harvest, the consultation (with its tax) for a patient found ineligible,
// and everything spent on the culture once it started.
func TestTheQuoteFixesItsCancellationTerms(t *testing.T) {
	tr := adiposeStroke()
	tr.CancellationPolicy = CancellationPolicy{Version: 3, CancellationFee: money.Yen(55_000)}
	q := issue(t, tr, Request{DoseCells: 100_000_000, Screening: fit()})
	want := CancellationTerms{PolicyVersion: 3, CancellationFee: money.Yen(55_000), ConsultationFee: money.Yen(110_000),
		CultureCost: money.Yen(2_090_000)} // (100,000 + 300,000 + 1,400,000 + 100,000) × 1.1
	if q.Cancellation != want {
		t.Fatalf("terms %+v, want %+v", q.Cancellation, want)
	}
	if q.Cancellation.CultureCost != q.Deposit {
		t.Fatalf("under the default deposit policy the culture cost is the deposit: %s vs %s", q.Cancellation.CultureCost, q.Deposit)
	}
}
