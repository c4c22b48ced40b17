package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/tokyo"
)

// Quote statuses.
const (
	StatusIssued   = "issued"
	StatusAccepted = "accepted"
	StatusExpired  = "expired"
)

// Line codes of an itemized quote.
const (
	LineConsultation   = "consultation"
	LineHarvest        = "harvest"
	LineCellCulture    = "cell_culture"
	LineQualityTesting = "quality_testing"
	LineAdministration = "administration"
)

// ValidityDays is how long a quote stays valid by default: through the end
// of the fourteenth Japanese calendar day after it was issued.
const ValidityDays = 14

// Languages patients can read their quote and emails in.
var Languages = []string{"en", "ko", "ja", "zh"}

// Errors a caller can test for.
var (
	ErrNotBookable     = errors.New("treatment is not bookable")
	ErrQuoteExpired    = errors.New("quote has expired")
	ErrAlreadyAccepted = errors.New("quote was accepted by another booking")
)

// FieldError is a request field the quote cannot be built from.
type FieldError struct{ Field, Message string }

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Patient the quote is for.
type Patient struct {
	Name     string
	Email    string
	Country  string
	Language string
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// Validate checks the patient's contact details.
func (p Patient) Validate() error {
	var errs []error
	if strings.TrimSpace(p.Name) == "" {
		errs = append(errs, FieldError{"patient.name", "is required"})
	}
	if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email {
		errs = append(errs, FieldError{"patient.email", "must be an email address like name@example.com"})
	}
	if !countryCode.MatchString(p.Country) {
		errs = append(errs, FieldError{"patient.country", "must be an ISO 3166-1 alpha-2 code such as KR or US"})
	}
	if !slices.Contains(Languages, p.Language) {
		errs = append(errs, FieldError{"patient.language", "must be one of en, ko, ja, zh"})
	}
	return errors.Join(errs...)
}

// Line is one item of a quote, in JPY.
type Line struct {
	Code        string      `json:"code"`
	Description string      `json:"description"`
	Amount      money.Money `json:"amount"`
}

// DepositPolicy says which lines are paid up front as the deposit: what the
// clinic spends before the cells are administered (consultation, harvest,
// culture, testing). The rest is the balance, charged once the cells pass QC.
type DepositPolicy struct {
	Covers []string
}

// DefaultDepositPolicy covers everything spent before administration.
var DefaultDepositPolicy = DepositPolicy{Covers: []string{LineConsultation, LineHarvest, LineCellCulture, LineQualityTesting}}

// Split divides lines into deposit and balance. Neither may be zero: a zero
// deposit would let culture start unpaid, a zero balance would charge
// administration before the cells exist.
func (p DepositPolicy) Split(lines []Line) (deposit, balance money.Money, err error) {
	deposit, balance = money.Zero(money.JPY), money.Zero(money.JPY)
	for _, l := range lines {
		if slices.Contains(p.Covers, l.Code) {
			deposit, err = deposit.Add(l.Amount)
		} else {
			balance, err = balance.Add(l.Amount)
		}
		if err != nil {
			return deposit, balance, err
		}
	}
	if !deposit.IsPositive() || !balance.IsPositive() {
		return deposit, balance, fmt.Errorf("deposit policy leaves deposit %s and balance %s; both must be positive", deposit, balance)
	}
	return deposit, balance, nil
}

// Quote is an itemized price for one treatment at one dose.
type Quote struct {
	ID                string
	Version           int
	Status            string
	TreatmentID       string
	TreatmentName     string
	TreatmentRevision int64
	ClinicID          string
	ClinicName        string
	DoseCells         int64
	Patient           Patient
	Lines             []Line
	Total             money.Money
	Deposit           money.Money
	Balance           money.Money
	FX                FX
	DisplayTotal      money.Money
	IssuedAt          time.Time
	ValidUntil        time.Time
	BookingID         string
}

// Request is what a patient asks a quote for.
type Request struct {
	DoseCells int64
	Currency  money.Currency
	Patient   Patient
}

// Issue builds a quote for t. now is the issuing instant; the quote is valid
// through the end of the Japanese day ValidityDays later.
func Issue(id string, t Treatment, req Request, rates Rates, policy DepositPolicy, now time.Time) (Quote, error) {
	if err := req.Patient.Validate(); err != nil {
		return Quote{}, err
	}
	if !t.Bookable(tokyo.Date(now)) {
		return Quote{}, fmt.Errorf("%w: %s is offered under plan %s (%s, valid %s to %s)", ErrNotBookable, t.ID,
			t.PlanNumber, t.PlanStatus, t.PlanValidFrom.Format(time.DateOnly), t.PlanValidUntil.Format(time.DateOnly))
	}
	dose, ok := t.Dose(req.DoseCells)
	if !ok {
		return Quote{}, FieldError{"dose_cells", fmt.Sprintf("must be one of %v", t.DoseCells())}
	}
	rate, err := rates.For(req.Currency)
	if err != nil {
		return Quote{}, FieldError{"currency", "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD"}
	}
	lines, err := itemize(t, dose)
	if err != nil {
		return Quote{}, err
	}
	total, err := money.Sum(money.JPY, amounts(lines)...)
	if err != nil {
		return Quote{}, err
	}
	deposit, balance, err := policy.Split(lines)
	if err != nil {
		return Quote{}, err
	}
	display, err := rate.Convert(total)
	if err != nil {
		return Quote{}, err
	}
	return Quote{
		ID: id, Version: 1, Status: StatusIssued,
		TreatmentID: t.ID, TreatmentName: t.Name, TreatmentRevision: t.Revision, ClinicID: t.ClinicID, ClinicName: t.ClinicName,
		DoseCells: dose.Cells, Patient: req.Patient, Lines: lines,
		Total: total, Deposit: deposit, Balance: balance,
		FX:           FX{Currency: req.Currency, Base: rate.Base, Quote: rate.Quote, Price: rate.Price(), AsOf: rates.AsOf},
		DisplayTotal: display,
		IssuedAt:     now.UTC(),
		ValidUntil:   tokyo.EndOfDay(tokyo.Date(now).AddDate(0, 0, ValidityDays)),
	}, nil
}

func amounts(lines []Line) []money.Money {
	out := make([]money.Money, len(lines))
	for i, l := range lines {
		out[i] = l.Amount
	}
	return out
}

var sourceNames = map[string]string{
	"adipose": "adipose-derived MSCs", "bone_marrow": "bone-marrow MSCs", "umbilical_cord": "umbilical-cord MSCs",
	"dental_pulp": "dental-pulp stem cells", "muse": "Muse cells", "nk_cells": "NK cells", "exosome": "exosomes",
}

var harvestNames = map[string]string{
	"adipose":     "Adipose tissue harvest (mini-liposuction under local anaesthesia)",
	"bone_marrow": "Bone-marrow aspiration from the hip",
	"dental_pulp": "Dental pulp collection",
	"nk_cells":    "Blood draw for NK cell culture",
}

func itemize(t Treatment, dose Dose) ([]Line, error) {
	lines := []Line{{LineConsultation, "Medical review of records and consultation, with interpreter", t.Consultation}}
	if t.Harvest.IsPositive() {
		name := harvestNames[t.CellSource]
		if name == "" {
			name = "Tissue harvest"
		}
		lines = append(lines, Line{LineHarvest, name, t.Harvest})
	}
	culture := "Cell culture in a GCTP cell processing center"
	if !t.Autologous {
		culture = "Preparation of banked donor cells"
	}
	lines = append(lines,
		Line{LineCellCulture, fmt.Sprintf("%s: %s %s", culture, cellCount(dose.Cells), sourceNames[t.CellSource]), dose.Culture},
		Line{LineQualityTesting, "Quality testing and certificate of analysis (sterility, endotoxin, cell count, viability)", t.QualityTesting},
	)
	admin, err := t.AdministrationPerSession.Mul(int64(t.Sessions))
	if err != nil {
		return nil, err
	}
	lines = append(lines, Line{LineAdministration,
		fmt.Sprintf("Administration (%s), %d session(s) of %s", strings.Join(t.Routes, ", "), t.Sessions, t.AdministrationPerSession.Format()), admin})
	return lines, nil
}

// cellCount renders 200000000 as "200 million".
func cellCount(n int64) string {
	switch {
	case n >= 1_000_000_000 && n%1_000_000_000 == 0:
		return fmt.Sprintf("%d billion", n/1_000_000_000)
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%d million", n/1_000_000)
	}
	return fmt.Sprintf("%d", n)
}

// EffectiveStatus is the status as of now: an issued quote past its
// validity is expired even before anything records it.
func (q Quote) EffectiveStatus(now time.Time) string {
	if q.Status == StatusIssued && now.After(q.ValidUntil) {
		return StatusExpired
	}
	return q.Status
}

// Accept marks the quote taken by bookingID. Accepting again for the same
// booking is a no-op (changed is false).
func (q *Quote) Accept(bookingID string, now time.Time) (changed bool, err error) {
	switch q.EffectiveStatus(now) {
	case StatusAccepted:
		if q.BookingID == bookingID {
			return false, nil
		}
		return false, ErrAlreadyAccepted
	case StatusExpired:
		return false, ErrQuoteExpired
	}
	q.Status, q.BookingID = StatusAccepted, bookingID
	return true, nil
}
