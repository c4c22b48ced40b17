// Package domain holds the catalog's rules: what a clinic, a provision plan
// and a treatment are, when a treatment may be booked, what it costs, and
// which patients it is for. No I/O here.
package domain

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
)

// Enumerations of the catalog.
var (
	Cities       = []string{"tokyo", "osaka", "kyoto"}
	Conditions   = []string{"stroke", "spinal_cord_injury", "parkinsons", "knee_osteoarthritis"}
	CellSources  = []string{"adipose", "bone_marrow", "umbilical_cord", "dental_pulp", "muse", "nk_cells", "exosome", "ips"}
	CellTypes    = []string{"msc", "nk_cells", "exosomes", "ips_dopaminergic_progenitors", "ips_neural_progenitors"}
	Routes       = []string{"iv", "intrathecal", "intranasal", "intra_articular", "direct_injection"}
	RiskClasses  = []string{"I", "II", "III"}
	PlanStatuses = []string{"active", "suspended", "withdrawn"}
	ClinicKinds  = []string{"clinic", "university_hospital"}
	TrialStatus  = []string{"recruiting", "active_not_recruiting", "completed", "suspended"}
	// LineCodes a deposit policy can cover.
	LineCodes = []string{"consultation", "harvest", "cell_culture", "quality_testing", "administration"}
)

// ExtraUnits says how each optional extra is counted.
var ExtraUnits = map[string]string{
	"rehabilitation":   "package",
	"cell_banking":     "year",
	"interpreter":      "day",
	"visa_guarantee":   "once",
	"airport_transfer": "trip",
	"hotel":            "night",
}

var slug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$`)

// ValidID reports whether s can be an id: it becomes a NATS subject token.
func ValidID(s string) bool { return slug.MatchString(s) }

// DepositPolicy says which quote lines a clinic takes as the deposit: what it
// spends before administration. FullWithoutCulture lets a clinic take the
// whole price up front for protocols with no culture stage.
type DepositPolicy struct {
	Covers             []string
	FullWithoutCulture bool
}

// DefaultDepositPolicy covers everything spent before administration.
var DefaultDepositPolicy = DepositPolicy{Covers: []string{"consultation", "harvest", "cell_culture", "quality_testing"}}

// CancellationPolicy is what a clinic keeps, beyond what the quote's lines
// say, when a patient cancels before the harvest: a fee, tax included.
// Version grows with every change (the store assigns it); a booking keeps
// the version it was made under.
type CancellationPolicy struct {
	Version         int
	CancellationFee money.Money
}

// DefaultCancellationPolicy is the platform's, for a clinic that set none.
var DefaultCancellationPolicy = CancellationPolicy{Version: 1, CancellationFee: money.Yen(100_000)}

// maxCancellationFee bounds the fee: no clinic's deposit is anywhere near.
const maxCancellationFee = 10_000_000

// Extra is an optional service a clinic sells with a treatment.
type Extra struct {
	Code    string
	Price   money.Money // per unit
	Unit    string
	Taxable bool
}

// Clinic is a licensed medical institution.
type Clinic struct {
	ID               string
	Names            Text
	Kind             string
	City             string
	MHLWRegistration string
	Languages        []string
	DepositPolicy    DepositPolicy
	Extras           []Extra
	// CancellationPolicy applies to bookings made from now on.
	CancellationPolicy CancellationPolicy
}

// Plan is a regenerative medicine provision plan notified to the MHLW. It
// is per therapy: the number is what a patient should ask to see.
type Plan struct {
	Number     string
	ClinicID   string
	RiskClass  string
	Therapy    string
	Committee  string
	CPCName    string
	CPCInHouse bool
	ValidFrom  time.Time
	ValidUntil time.Time
	Status     string
}

var planNumber = regexp.MustCompile(`^P[ABC][0-9]{7}$`)

// classLetter maps a plan number's letter to its risk class.
var classLetter = map[byte]string{'A': "I", 'B': "II", 'C': "III"}

// Lawful reports whether the plan lets the clinic offer the therapy on day
// (a Japanese calendar date).
func (p Plan) Lawful(day time.Time) bool {
	return p.Status == "active" && !day.Before(p.ValidFrom) && !day.After(p.ValidUntil)
}

// PriceList holds the dose-independent fees in JPY.
type PriceList struct {
	Consultation             money.Money
	Harvest                  money.Money
	QualityTesting           money.Money
	AdministrationPerSession money.Money
}

// DoseOption prices the culture of one dose.
type DoseOption struct {
	Cells   int64
	Culture money.Money
}

// InjuryWindow bounds the time since a spinal cord injury a protocol treats
// (Stemirac's conditional approval: 31 days to 6 months).
type InjuryWindow struct {
	MinDays   int
	MaxMonths int
}

// EligibilityRules are a treatment's screening criteria.
type EligibilityRules struct {
	RequiresConfirmedDiagnosis bool
	MinCancerFreeYears         int
	// OrganDisease is "review" (a clinician decides) or "exclude".
	OrganDisease        string
	ExcludesSeveredCord bool
	InjuryWindow        *InjuryWindow
}

// Trial marks a clinical trial: listed for information, never sold.
type Trial struct {
	Institution  string
	Status       string
	Phase        string
	RegistryID   string
	Participants int
}

// Treatment is a protocol at one clinic under one plan.
type Treatment struct {
	ID              string
	ClinicID        string
	PlanNumber      string
	Names           Text
	Descriptions    Text
	Conditions      []string
	CellType        string
	CellSource      string
	Autologous      bool
	Routes          []string
	Sessions        int
	CultureDaysMin  int
	CultureDaysMax  int
	Visits          int
	TypicalStayDays int
	FollowUpMonths  []int
	Included        []string
	Prices          PriceList
	DoseOptions     []DoseOption
	Eligibility     EligibilityRules
	Trial           *Trial
	Revision        int64
}

// Condition is the primary condition.
func (t Treatment) Condition() string {
	if len(t.Conditions) == 0 {
		return ""
	}
	return t.Conditions[0]
}

// HasCultureStage reports whether cells are cultured for this patient.
func (t Treatment) HasCultureStage() bool { return t.CultureDaysMax > 0 }

// ErrUnknownDose is returned for a dose the treatment does not offer.
var ErrUnknownDose = errors.New("dose not offered")

// Dose returns the option for cells.
func (t Treatment) Dose(cells int64) (DoseOption, error) {
	for _, d := range t.DoseOptions {
		if d.Cells == cells {
			return d, nil
		}
	}
	return DoseOption{}, fmt.Errorf("%w: %d cells", ErrUnknownDose, cells)
}

// Total is the whole protocol's price at a dose, before tax: consultation,
// harvest, culture, quality testing and every administration session.
func (t Treatment) Total(d DoseOption) (money.Money, error) {
	admin, err := t.Prices.AdministrationPerSession.Mul(int64(t.Sessions))
	if err != nil {
		return money.Money{}, err
	}
	return money.Sum(money.JPY, t.Prices.Consultation, t.Prices.Harvest, d.Culture, t.Prices.QualityTesting, admin)
}

// Listing is a treatment with the clinic and plan a patient needs to judge it.
type Listing struct {
	Treatment Treatment
	Clinic    Clinic
	Plan      Plan
}

// Bookable reports whether the treatment may be booked on day: never a
// trial or a class I therapy, and only while its plan is lawful.
func (l Listing) Bookable(day time.Time) bool {
	return l.Treatment.Trial == nil && l.Plan.RiskClass != "I" && l.Plan.Lawful(day)
}

func check(errs *[]error, ok bool, field, msg string) {
	if !ok {
		*errs = append(*errs, validation.FieldError{Field: field, Message: msg})
	}
}

// Bounds of the catalog's text and prices: they are shown to patients,
// copied into quotes and events, and a price must stay chargeable in one
// card payment (Stripe takes at most ¥99,999,999) even with its tax.
const (
	MaxNameLength        = 200
	MaxDescriptionLength = 5000
	MaxLabelLength       = 300
	MaxIncluded          = 30
	MaxPrice             = 50_000_000 // JPY, per price
)

// checkPlain bounds one free-text value (see validation.Validator.Text).
func checkPlain(errs *[]error, field, s string, max int, multiline bool) {
	var v validation.Validator
	v.Text(field, s, max, multiline)
	for _, fe := range validation.Fields(v.Err()) {
		*errs = append(*errs, fe)
	}
}

func checkText(errs *[]error, t Text, field string, max int, multiline bool) {
	check(errs, t["en"] != "", field+".en", "is required (English is the fallback)")
	for _, lang := range slices.Sorted(maps.Keys(t)) {
		check(errs, slices.Contains(Languages, lang), field, fmt.Sprintf("%q is not a catalog language (en, ko, ja, zh)", lang))
		checkPlain(errs, field+"."+lang, t[lang], max, multiline)
	}
}

func checkPrice(errs *[]error, field string, m money.Money) {
	check(errs, m.Amount <= MaxPrice, field, fmt.Sprintf("must be at most ¥%d", MaxPrice))
}

// Validate checks a clinic's fields.
func (c Clinic) Validate() error {
	var errs []error
	check(&errs, ValidID(c.ID), "id", "must be a lower-case slug (a-z, 0-9, -)")
	checkText(&errs, c.Names, "names", MaxNameLength, false)
	check(&errs, slices.Contains(ClinicKinds, c.Kind), "kind", "must be clinic or university_hospital")
	check(&errs, slices.Contains(Cities, c.City), "city", "must be one of tokyo, osaka, kyoto")
	check(&errs, c.MHLWRegistration != "", "mhlw_registration", "is required")
	checkPlain(&errs, "mhlw_registration", c.MHLWRegistration, 50, false)
	for _, l := range c.Languages {
		check(&errs, slices.Contains(Languages, l), "languages", fmt.Sprintf("%q is not one of en, ko, ja, zh", l))
	}
	for _, code := range c.DepositPolicy.Covers {
		check(&errs, slices.Contains(LineCodes, code), "deposit_policy.covers", fmt.Sprintf("%q is not a quote line code", code))
	}
	check(&errs, len(c.DepositPolicy.Covers) > 0, "deposit_policy.covers", "must cover at least one line")
	fee := c.CancellationPolicy.CancellationFee
	check(&errs, fee.Currency == money.JPY && !fee.IsNegative() && fee.Amount <= maxCancellationFee,
		"cancellation_policy.cancellation_fee", fmt.Sprintf("must be a JPY amount from 0 to %d", maxCancellationFee))
	check(&errs, !slices.Contains(c.DepositPolicy.Covers, "administration") || len(c.DepositPolicy.Covers) < len(LineCodes),
		"deposit_policy.covers", "cannot cover every line: the balance must fund administration")
	seen := map[string]bool{}
	for i, e := range c.Extras {
		field := fmt.Sprintf("extras[%d]", i)
		unit, known := ExtraUnits[e.Code]
		check(&errs, known, field+".code", "is not a known extra")
		check(&errs, !seen[e.Code], field+".code", "is listed twice")
		check(&errs, !known || e.Unit == unit, field+".unit", fmt.Sprintf("must be %q for %s", unit, e.Code))
		check(&errs, e.Price.Currency == money.JPY && e.Price.IsPositive(), field+".price", "must be a positive JPY amount")
		checkPrice(&errs, field+".price", e.Price)
		seen[e.Code] = true
	}
	return errors.Join(errs...)
}

// Extra returns the clinic's price for an extra.
func (c Clinic) Extra(code string) (Extra, bool) {
	for _, e := range c.Extras {
		if e.Code == code {
			return e, true
		}
	}
	return Extra{}, false
}

// Validate checks a plan's fields.
func (p Plan) Validate() error {
	var errs []error
	check(&errs, planNumber.MatchString(p.Number), "number", "must look like PB1234567 (P, class letter A/B/C, 7 digits)")
	check(&errs, slices.Contains(RiskClasses, p.RiskClass), "risk_class", "must be I, II or III")
	if planNumber.MatchString(p.Number) {
		check(&errs, classLetter[p.Number[1]] == p.RiskClass, "risk_class", "does not match the plan number's class letter")
	}
	check(&errs, p.Therapy != "", "therapy", "is required")
	check(&errs, p.Committee != "", "committee", "is required")
	checkPlain(&errs, "therapy", p.Therapy, MaxLabelLength, false)
	checkPlain(&errs, "committee", p.Committee, MaxLabelLength, false)
	checkPlain(&errs, "cpc.name", p.CPCName, MaxLabelLength, false)
	check(&errs, slices.Contains(PlanStatuses, p.Status), "status", "must be active, suspended or withdrawn")
	check(&errs, !p.ValidFrom.IsZero() && !p.ValidUntil.Before(p.ValidFrom), "valid_until", "must not be before valid_from")
	check(&errs, p.CPCName != "", "cpc.name", "is required")
	return errors.Join(errs...)
}

// Validate checks a treatment's fields and prices.
func (t Treatment) Validate() error {
	var errs []error
	check(&errs, ValidID(t.ID), "id", "must be a lower-case slug (a-z, 0-9, -)")
	checkText(&errs, t.Names, "names", MaxNameLength, false)
	checkText(&errs, t.Descriptions, "descriptions", MaxDescriptionLength, true)
	check(&errs, len(t.Included) <= MaxIncluded, "included", fmt.Sprintf("must list at most %d items", MaxIncluded))
	for i, item := range t.Included {
		checkPlain(&errs, fmt.Sprintf("included[%d]", i), item, MaxLabelLength, false)
	}
	check(&errs, len(t.Conditions) > 0, "conditions", "needs at least one condition")
	for _, c := range t.Conditions {
		check(&errs, slices.Contains(Conditions, c), "conditions", fmt.Sprintf("%q is not a known condition", c))
	}
	check(&errs, slices.Contains(CellTypes, t.CellType), "cell_type", "is not a known cell type")
	check(&errs, slices.Contains(CellSources, t.CellSource), "cell_source", "is not a known cell source")
	check(&errs, len(t.Routes) > 0, "routes", "needs at least one route")
	for _, r := range t.Routes {
		check(&errs, slices.Contains(Routes, r), "routes", fmt.Sprintf("%q is not a known route", r))
	}
	check(&errs, t.Sessions >= 1 && t.Sessions <= 12, "sessions", "must be 1 to 12")
	check(&errs, t.CultureDaysMin >= 0 && t.CultureDaysMax >= t.CultureDaysMin, "culture_days", "min must be ≥ 0 and ≤ max")
	check(&errs, t.Visits == 1 || t.Visits == 2, "visits", "must be 1 or 2")
	check(&errs, t.Visits == 2 || !(t.Autologous && t.HasCultureStage()), "visits",
		"an autologous cultured protocol takes two visits: harvest, then administration")
	check(&errs, t.TypicalStayDays >= 1 && t.TypicalStayDays <= 120, "typical_stay_days", "must be 1 to 120")
	for _, m := range t.FollowUpMonths {
		check(&errs, m >= 1 && m <= 60, "follow_up_months", "months must be 1 to 60")
	}
	r := t.Eligibility
	check(&errs, r.MinCancerFreeYears >= 0 && r.MinCancerFreeYears <= 10, "eligibility.min_cancer_free_years", "must be 0 to 10")
	check(&errs, r.OrganDisease == "review" || r.OrganDisease == "exclude", "eligibility.organ_disease", `must be "review" or "exclude"`)
	isSCI := slices.Contains(t.Conditions, "spinal_cord_injury")
	check(&errs, r.InjuryWindow == nil || isSCI, "eligibility.injury_window", "applies to spinal cord injury only")
	if w := r.InjuryWindow; w != nil {
		check(&errs, w.MinDays >= 0 && w.MaxMonths >= 1 && w.MinDays < w.MaxMonths*31, "eligibility.injury_window", "needs 0 ≤ min_days < max_months")
	}
	if t.Trial != nil {
		check(&errs, t.Trial.Institution != "", "trial.institution", "is required")
		checkPlain(&errs, "trial.institution", t.Trial.Institution, MaxLabelLength, false)
		check(&errs, slices.Contains(TrialStatus, t.Trial.Status), "trial.status", "is not a known trial status")
		check(&errs, len(t.DoseOptions) == 0, "dose_options", "a trial is not sold: no doses")
		return errors.Join(errs...)
	}
	for _, p := range []struct {
		name string
		m    money.Money
	}{
		{"prices.consultation", t.Prices.Consultation}, {"prices.harvest", t.Prices.Harvest},
		{"prices.quality_testing", t.Prices.QualityTesting}, {"prices.administration_per_session", t.Prices.AdministrationPerSession},
	} {
		check(&errs, p.m.Currency == money.JPY && !p.m.IsNegative(), p.name, "must be a non-negative JPY amount")
		checkPrice(&errs, p.name, p.m)
	}
	check(&errs, t.Prices.AdministrationPerSession.IsPositive(), "prices.administration_per_session", "must be positive")
	check(&errs, len(t.DoseOptions) > 0, "dose_options", "needs at least one dose")
	seen := map[int64]bool{}
	for _, d := range t.DoseOptions {
		check(&errs, d.Cells > 0 && !seen[d.Cells], "dose_options", "cells must be positive and distinct")
		check(&errs, d.Culture.Currency == money.JPY && d.Culture.IsPositive(), "dose_options", "culture must be a positive JPY amount")
		checkPrice(&errs, "dose_options", d.Culture)
		seen[d.Cells] = true
	}
	return errors.Join(errs...)
}
