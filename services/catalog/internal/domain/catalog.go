// Package domain holds the catalog's rules: what a clinic, a provision plan
// and a treatment are, when a treatment may be booked, and what it costs.
// No I/O here.
package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Cities where the platform's clinics are.
var Cities = []string{"tokyo", "osaka", "kyoto"}

// Conditions the catalog covers.
var Conditions = []string{"stroke", "spinal_cord_injury", "parkinsons", "knee_osteoarthritis"}

// CellSources a treatment may use.
var CellSources = []string{"adipose", "bone_marrow", "umbilical_cord", "dental_pulp", "muse", "nk_cells", "exosome"}

// Routes of administration.
var Routes = []string{"iv", "intrathecal", "intranasal", "intra_articular", "direct_injection"}

// RiskClasses under the Act on the Safety of Regenerative Medicine.
var RiskClasses = []string{"I", "II", "III"}

// PlanStatuses of a provision plan.
var PlanStatuses = []string{"active", "suspended", "withdrawn"}

var slug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$`)

// ValidID reports whether s can be an id: it becomes a NATS subject token.
func ValidID(s string) bool { return slug.MatchString(s) }

// Clinic is a licensed medical institution.
type Clinic struct {
	ID               string
	Name             string
	NameJA           string
	City             string
	MHLWRegistration string
	Languages        []string
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

// Lawful reports whether the plan lets the clinic offer the therapy on day.
func (p Plan) Lawful(day time.Time) bool {
	return p.Status == "active" && !day.Before(p.ValidFrom) && day.Before(p.ValidUntil.AddDate(0, 0, 1))
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

// Treatment is a bookable protocol at one clinic under one plan.
type Treatment struct {
	ID             string
	ClinicID       string
	PlanNumber     string
	Name           string
	Condition      string
	Description    string
	CellSource     string
	Autologous     bool
	Routes         []string
	Sessions       int
	CultureDaysMin int
	CultureDaysMax int
	Prices         PriceList
	DoseOptions    []DoseOption
	Revision       int64
}

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

// Total is the whole protocol's price at a dose: consultation, harvest,
// culture, quality testing and every administration session.
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

// Bookable reports whether the treatment may be booked on day: only while
// its plan is lawful, and never for class I (trials only).
func (l Listing) Bookable(day time.Time) bool {
	return l.Plan.RiskClass != "I" && l.Plan.Lawful(day)
}

// Validate checks a clinic's fields.
func (c Clinic) Validate() error {
	var errs []error
	check(&errs, ValidID(c.ID), "id", "must be a lower-case slug (a-z, 0-9, -)")
	check(&errs, c.Name != "", "name", "is required")
	check(&errs, slices.Contains(Cities, c.City), "city", "must be one of tokyo, osaka, kyoto")
	check(&errs, c.MHLWRegistration != "", "mhlw_registration", "is required")
	return errors.Join(errs...)
}

// Validate checks a plan's fields.
func (p Plan) Validate() error {
	var errs []error
	check(&errs, planNumber.MatchString(p.Number), "number", "must look like PB1234567 (P, class letter A/B/C, 7 digits)")
	check(&errs, slices.Contains(RiskClasses, p.RiskClass), "risk_class", "must be I, II or III")
	if planNumber.MatchString(p.Number) {
		check(&errs, classLetter[p.Number[1]] == p.RiskClass, "risk_class", "does not match the plan number's class letter")
	}
	check(&errs, slices.Contains(PlanStatuses, p.Status), "status", "must be active, suspended or withdrawn")
	check(&errs, !p.ValidUntil.Before(p.ValidFrom), "valid_until", "must not be before valid_from")
	check(&errs, p.CPCName != "", "cpc.name", "is required")
	return errors.Join(errs...)
}

// Validate checks a treatment's fields and prices.
func (t Treatment) Validate() error {
	var errs []error
	check(&errs, ValidID(t.ID), "id", "must be a lower-case slug (a-z, 0-9, -)")
	check(&errs, t.Name != "", "name", "is required")
	check(&errs, slices.Contains(Conditions, t.Condition), "condition", "is not a known condition")
	check(&errs, slices.Contains(CellSources, t.CellSource), "cell_source", "is not a known cell source")
	check(&errs, len(t.Routes) > 0, "routes", "needs at least one route")
	for _, r := range t.Routes {
		check(&errs, slices.Contains(Routes, r), "routes", fmt.Sprintf("%q is not a known route", r))
	}
	check(&errs, t.Sessions >= 1 && t.Sessions <= 12, "sessions", "must be 1 to 12")
	check(&errs, t.CultureDaysMin >= 0 && t.CultureDaysMax >= t.CultureDaysMin, "culture_days", "min must be ≥ 0 and ≤ max")
	for name, m := range map[string]money.Money{
		"prices.consultation": t.Prices.Consultation, "prices.harvest": t.Prices.Harvest,
		"prices.quality_testing": t.Prices.QualityTesting, "prices.administration_per_session": t.Prices.AdministrationPerSession,
	} {
		check(&errs, m.Currency == money.JPY && !m.IsNegative(), name, "must be a non-negative JPY amount")
	}
	check(&errs, t.Prices.AdministrationPerSession.IsPositive(), "prices.administration_per_session", "must be positive")
	check(&errs, len(t.DoseOptions) > 0, "dose_options", "needs at least one dose")
	seen := map[int64]bool{}
	for _, d := range t.DoseOptions {
		check(&errs, d.Cells > 0 && !seen[d.Cells], "dose_options", "cells must be positive and distinct")
		check(&errs, d.Culture.Currency == money.JPY && d.Culture.IsPositive(), "dose_options", "culture must be a positive JPY amount")
		seen[d.Cells] = true
	}
	return errors.Join(errs...)
}

// FieldError is a validation failure of one field.
type FieldError struct{ Field, Message string }

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

func check(errs *[]error, ok bool, field, msg string) {
	if !ok {
		*errs = append(*errs, FieldError{field, msg})
	}
}
