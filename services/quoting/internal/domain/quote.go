package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
)

// Status is where a quote is in its lifecycle.
type Status string

// Quote statuses. An issued quote past its validity reads as expired.
const (
	StatusIssued     Status = "issued"
	StatusAccepted   Status = "accepted"
	StatusExpired    Status = "expired"
	StatusSuperseded Status = "superseded"
	StatusWithdrawn  Status = "withdrawn"
	StatusIneligible Status = "ineligible"
)

// ValidityDays is how long a quote stays valid: through the end of the
// fourteenth Japanese calendar day after it was issued.
const ValidityDays = 14

// Languages patients can read their quote and emails in.
var Languages = []string{"en", "ko", "ja", "zh"}

// Errors a caller can test for.
var (
	ErrNotBookable      = errors.New("treatment is not bookable")
	ErrQuoteExpired     = errors.New("quote has expired")
	ErrQuoteSuperseded  = errors.New("quote was superseded by a revision")
	ErrQuoteWithdrawn   = errors.New("quote was withdrawn")
	ErrQuoteIneligible  = errors.New("patient is not eligible")
	ErrNeedsReview      = errors.New("quote awaits a clinician's review")
	ErrAlreadyAccepted  = errors.New("quote is already booked")
	ErrQuoteNotBookable = errors.New("quote cannot be booked")
	ErrNotRevisable     = errors.New("quote cannot be revised")
)

// Patient the quote is for.
type Patient struct {
	Name     string
	Email    string
	Country  string
	Language string
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// Bounds of the free text a quote carries.
const (
	MaxNameLength  = 200
	MaxEmailLength = validation.MaxEmailLength
	MaxNoteLength  = 2000
	MaxReasons     = 20
	MaxReasonCode  = 64
	MaxReasonText  = 1000
)

// Validate checks the patient's contact details.
// Names and addresses travel into emails, Stripe (which takes a name of at
// most 256 characters) and every booking event, so they are bounded here.
func (p Patient) Validate() []validation.FieldError {
	var v validation.Validator
	if strings.TrimSpace(p.Name) == "" {
		v.Check(false, "patient.name", "is required")
	} else {
		v.Text("patient.name", p.Name, MaxNameLength, false)
	}
	v.Email("patient.email", p.Email)
	errs := validation.Fields(v.Err())
	if !countryCode.MatchString(p.Country) {
		errs = append(errs, validation.FieldError{Field: "patient.country", Message: "must be an ISO 3166-1 alpha-2 code such as KR or US"})
	}
	if !slices.Contains(Languages, p.Language) {
		errs = append(errs, validation.FieldError{Field: "patient.language", Message: "must be one of en, ko, ja, zh"})
	}
	return errs
}

// Quote is an itemized price for one treatment at one dose.
type Quote struct {
	ID                string
	Version           int
	Status            Status
	Supersedes        string
	SupersededBy      string
	TreatmentID       string
	TreatmentName     string
	TreatmentRevision int64
	ClinicID          string
	ClinicName        string
	DoseCells         int64
	Visits            int
	RequiresHarvest   bool
	Patient           Patient
	// PatientSubject is the patient's identity at the issuer: the owner.
	PatientSubject string
	Extras         []ExtraRequest
	Screening      *Screening
	Eligibility    Eligibility
	Lines          []Line
	// Cancellation is what a cancellation keeps, fixed with the price.
	Cancellation CancellationTerms
	Subtotal     money.Money
	Tax          money.Money
	Total        money.Money
	Deposit      money.Money
	Balance      money.Money
	FX           FX
	DisplayTotal money.Money
	IssuedAt     time.Time
	ValidUntil   time.Time
	BookingID    string
	// AcceptanceKey is the Idempotency-Key of the booking request that
	// accepted the quote.
	AcceptanceKey string
	Note          string
}

// Request is what a patient asks a quote for.
type Request struct {
	DoseCells int64
	Currency  money.Currency
	Patient   Patient
	Extras    []ExtraRequest
	Screening *Screening
}

// Issue builds version 1 of a quote for t at now. Every field that is
// wrong is reported at once (patient, screening, dose, currency, extras),
// so the patient fixes them in one round trip.
func Issue(id string, t Treatment, req Request, rates fx.Table, now time.Time) (Quote, error) {
	today := tokyo.Date(now)
	var v validation.Validator
	v.Add(req.Patient.Validate()...)
	if req.Screening != nil {
		v.Add(req.Screening.Validate(t, today)...)
	}
	if !t.Bookable(today) {
		if err := v.Err(); err != nil {
			return Quote{}, err
		}
		return Quote{}, notBookable(t)
	}
	q := Quote{ID: id, Version: 1, Patient: req.Patient, Screening: req.Screening}
	err := q.price(t, req.DoseCells, req.Currency, req.Extras, rates, now)
	v.Add(validation.Fields(err)...)
	if fields := v.Err(); fields != nil {
		return Quote{}, fields
	}
	if err != nil {
		return Quote{}, err
	}
	q.Eligibility = Screen(t, req.Screening, today)
	if q.Eligibility.Status == Ineligible {
		q.Status = StatusIneligible
	}
	return q, nil
}

func notBookable(t Treatment) error {
	if t.Trial {
		return fmt.Errorf("%w: %s is a clinical trial, listed for information and never sold", ErrNotBookable, t.ID)
	}
	return fmt.Errorf("%w: %s is offered under plan %s (%s, class %s, valid %s to %s)", ErrNotBookable, t.ID, t.PlanNumber,
		t.PlanStatus, t.RiskClass, t.PlanValidFrom.Format(time.DateOnly), t.PlanValidUntil.Format(time.DateOnly))
}

// Revision is a clinic's change to a quote after reviewing the records.
type Revision struct {
	DoseCells *int64
	Extras    *[]ExtraRequest
	// Eligibility, when set, is the clinician's decision; it replaces the
	// questionnaire's outcome.
	Eligibility *Eligibility
	Note        string
}

// Revise creates the next version of q. The new version is priced again
// from the current catalog at today's rate; q becomes superseded and the
// patient must book the new one.
func (q *Quote) Revise(newID string, t Treatment, r Revision, rates fx.Table, now time.Time) (Quote, error) {
	switch status := q.EffectiveStatus(now); status {
	case StatusIssued, StatusIneligible:
	default:
		return Quote{}, fmt.Errorf("%w: quote %s is %s", ErrNotRevisable, q.ID, status)
	}
	if !t.Bookable(tokyo.Date(now)) {
		return Quote{}, notBookable(t)
	}
	next := Quote{ID: newID, Version: q.Version + 1, Supersedes: q.ID, Patient: q.Patient, PatientSubject: q.PatientSubject,
		Screening: q.Screening, Note: r.Note}
	dose, extras := q.DoseCells, q.Extras
	if r.DoseCells != nil {
		dose = *r.DoseCells
	}
	if r.Extras != nil {
		extras = *r.Extras
	}
	if err := next.price(t, dose, q.FX.Currency, extras, rates, now); err != nil {
		return Quote{}, err
	}
	next.Eligibility = Screen(t, q.Screening, tokyo.Date(now))
	if r.Eligibility != nil {
		next.Eligibility = *r.Eligibility
	}
	if next.Eligibility.Status == Ineligible {
		next.Status = StatusIneligible
	}
	q.Status, q.SupersededBy = StatusSuperseded, newID
	return next, nil
}

// EffectiveStatus is the status as of now: an issued quote past its
// validity is expired even before anything records it.
func (q Quote) EffectiveStatus(now time.Time) Status {
	// ValidUntil is the last second of the day (23:59:59 in Tokyo); the
	// quote holds through all of that second.
	if (q.Status == StatusIssued || q.Status == StatusIneligible) && now.Truncate(time.Second).After(q.ValidUntil) {
		return StatusExpired
	}
	return q.Status
}

// Bookable says why the quote cannot be booked now, or nil.
func (q Quote) Bookable(now time.Time) error {
	switch q.EffectiveStatus(now) {
	case StatusIssued:
	case StatusAccepted:
		return ErrAlreadyAccepted
	case StatusExpired:
		return fmt.Errorf("%w: it was valid until %s", ErrQuoteExpired, q.ValidUntil.Format(time.RFC3339))
	case StatusSuperseded:
		return fmt.Errorf("%w: book version %d, quote %s", ErrQuoteSuperseded, q.Version+1, q.SupersededBy)
	case StatusWithdrawn:
		return fmt.Errorf("%w: the treatment's plan is no longer active", ErrQuoteWithdrawn)
	case StatusIneligible:
		return ErrQuoteIneligible
	default:
		return fmt.Errorf("%w: quote %s is %s", ErrQuoteNotBookable, q.ID, q.Status)
	}
	if q.Eligibility.Status == NeedsReview {
		return ErrNeedsReview
	}
	return nil
}

// Accept marks the quote taken by bookingID at now, for the booking
// request identified by key (the client's Idempotency-Key). Accepting again
// with the same key is a no-op (changed is false) that leaves the first
// booking id in place: a booking retried after a crash gets the booking id
// it was first given. Another key finds the quote already booked.
func (q *Quote) Accept(bookingID, key string, now time.Time) (changed bool, err error) {
	if q.Status == StatusAccepted {
		if q.AcceptanceKey == key {
			return false, nil
		}
		return false, fmt.Errorf("%w: quote %s belongs to booking %s", ErrAlreadyAccepted, q.ID, q.BookingID)
	}
	if err := q.Bookable(now); err != nil {
		return false, err
	}
	q.Status, q.BookingID, q.AcceptanceKey = StatusAccepted, bookingID, key
	return true, nil
}

// Release gives back a quote whose booking expired unpaid: the patient may
// book it again while it is valid. Only the booking that took it releases
// it; changed is false for any other (or a second release).
func (q *Quote) Release(bookingID string) (changed bool) {
	if q.Status != StatusAccepted || q.BookingID != bookingID {
		return false
	}
	q.Status, q.BookingID, q.AcceptanceKey = StatusIssued, "", ""
	return true
}

// Withdraw marks an open quote withdrawn because its plan stopped.
func (q *Quote) Withdraw() bool {
	if q.Status != StatusIssued && q.Status != StatusIneligible {
		return false
	}
	q.Status = StatusWithdrawn
	return true
}
