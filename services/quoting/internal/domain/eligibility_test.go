package domain

import (
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
)

func years(n int) *int { return &n }

func codes(e Eligibility) []string {
	var out []string
	for _, r := range e.Reasons {
		out = append(out, r.Code)
	}
	return out
}

func subacuteSCI() Treatment {
	t := adiposeStroke()
	t.Conditions = []string{"spinal_cord_injury"}
	t.Eligibility = Rules{RequiresConfirmedDiagnosis: true, MinCancerFreeYears: 5, OrganDisease: "exclude",
		ExcludesSeveredCord: true, InjuryWindow: &InjuryWindow{MinDays: 31, MaxMonths: 6}}
	return t
}

func TestEligibilityRules(t *testing.T) {
	today := date("2026-11-25")
	injured := func(s string) *time.Time { d := date(s); return &d }
	sci := func(edit func(*Screening)) *Screening {
		s := fit()
		s.InjuryDate, s.CordSevered = injured("2026-09-01"), no()
		edit(s)
		return s
	}
	cases := []struct {
		name      string
		treatment Treatment
		screening *Screening
		status    string
		codes     []string
	}{
		{"no answers", adiposeStroke(), nil, NeedsReview, []string{"screening_missing"}},
		{"fit", adiposeStroke(), fit(), Eligible, nil},
		{"never had cancer", adiposeStroke(), fit(), Eligible, nil},
		{"cancer-free exactly 5 years", adiposeStroke(), func() *Screening { s := fit(); s.CancerFreeYears = years(5); return s }(), Eligible, nil},
		{"cancer 4 years ago", adiposeStroke(), func() *Screening { s := fit(); s.CancerFreeYears = years(4); return s }(), Ineligible, []string{"recent_cancer"}},
		{"unconfirmed diagnosis", adiposeStroke(), func() *Screening { s := fit(); s.DiagnosisConfirmed = no(); return s }(), NeedsReview, []string{"diagnosis_unconfirmed"}},
		{"organ disease, review", adiposeStroke(), func() *Screening { s := fit(); s.SevereOrganDisease = yes(); return s }(), NeedsReview, []string{"severe_organ_disease"}},
		{"organ disease, exclude", subacuteSCI(), sci(func(s *Screening) { s.SevereOrganDisease = yes() }), Ineligible, []string{"severe_organ_disease"}},
		{"cannot travel", adiposeStroke(), func() *Screening { s := fit(); s.CanTravel = no(); return s }(), Ineligible, []string{"cannot_travel"}},
		{"severed cord", subacuteSCI(), sci(func(s *Screening) { s.CordSevered = yes() }), Ineligible, []string{"cord_severed"}},
		// Window 31 days – 6 months; today 2026-11-25.
		{"day 30 after injury", subacuteSCI(), sci(func(s *Screening) { s.InjuryDate = injured("2026-10-26") }), Ineligible, []string{"injury_too_recent"}},
		{"day 31 after injury", subacuteSCI(), sci(func(s *Screening) { s.InjuryDate = injured("2026-10-25") }), Eligible, nil},
		{"exactly 6 months", subacuteSCI(), sci(func(s *Screening) { s.InjuryDate = injured("2026-05-25") }), Eligible, nil},
		{"6 months and a day", subacuteSCI(), sci(func(s *Screening) { s.InjuryDate = injured("2026-05-24") }), Ineligible, []string{"injury_too_old"}},
		{"several reasons", subacuteSCI(), sci(func(s *Screening) { s.CordSevered = yes(); s.DiagnosisConfirmed = no(); s.CancerFreeYears = years(1) }),
			Ineligible, []string{"recent_cancer", "diagnosis_unconfirmed", "cord_severed"}},
		{"chronic injury without a window", func() Treatment { t := subacuteSCI(); t.Eligibility.InjuryWindow = nil; return t }(),
			sci(func(s *Screening) { s.InjuryDate = injured("2020-01-01") }), Eligible, nil},
		{"acute injury without a window", func() Treatment { t := subacuteSCI(); t.Eligibility.InjuryWindow = nil; return t }(),
			sci(func(s *Screening) { s.InjuryDate = injured("2026-11-15") }), NeedsReview, []string{"acute_injury"}},
	}
	for _, c := range cases {
		e := Screen(c.treatment, c.screening, today)
		if e.Status != c.status || !equal(codes(e), c.codes) {
			t.Errorf("%s: %s %v, want %s %v", c.name, e.Status, codes(e), c.status, c.codes)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPhaseBoundaries(t *testing.T) {
	injury := date("2026-01-01")
	for day, want := range map[string]string{"2026-01-15": "acute", "2026-01-16": "subacute", "2026-07-01": "subacute", "2026-07-02": "chronic"} {
		if got := Phase(injury, date(day)); got != want {
			t.Errorf("%s: %s, want %s", day, got, want)
		}
	}
}

func TestScreeningMustBeCompleteForTheTreatment(t *testing.T) {
	s := &Screening{DiagnosisConfirmed: yes()}
	future := date("2027-01-01")
	s.InjuryDate = &future
	got := s.Validate(subacuteSCI(), date("2026-11-25"))
	var fs []string
	for _, f := range got {
		fs = append(fs, f.Field)
	}
	want := []string{"screening.severe_organ_disease", "screening.can_travel", "screening.cord_severed", "screening.injury_date"}
	if !equal(fs, want) {
		t.Fatalf("fields %v, want %v", fs, want)
	}
	if _, err := Issue("q", subacuteSCI(), Request{DoseCells: 100_000_000, Currency: money.JPY, Patient: patient, Screening: &Screening{}}, fx.Default(), issuedAt); len(fields(err)) != 5 {
		t.Fatalf("issue with an empty questionnaire: %v", err)
	}
}

func TestIneligibleQuotesCarryNoBookableStatus(t *testing.T) {
	s := fit()
	s.CancerFreeYears = years(2)
	q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Screening: s})
	if q.Status != StatusIneligible || q.Bookable(issuedAt) != ErrQuoteIneligible {
		t.Fatalf("status %s bookable %v", q.Status, q.Bookable(issuedAt))
	}
	review := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000})
	if review.Status != StatusIssued || review.Bookable(issuedAt) != ErrNeedsReview {
		t.Fatalf("needs review: %s %v", review.Status, review.Bookable(issuedAt))
	}
}
