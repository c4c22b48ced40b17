// Package service holds quoting's use cases behind the Service interface,
// and the event handlers that keep its read model and quotes current.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/quoting/internal/contract"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/store"
)

// Errors the transport maps to problem types (with the domain's).
var (
	ErrQuoteNotFound = errors.New("quote not found")
	// ErrTreatmentStopped: the catalog says, at acceptance, that the
	// treatment may no longer be booked.
	ErrTreatmentStopped = errors.New("treatment is not bookable")
	ErrUnavailable      = errors.New("a service quoting depends on is unavailable")
)

// LiveTreatment is what the catalog says of a treatment right now.
type LiveTreatment struct {
	ID         string
	Bookable   bool
	PlanNumber string
	PlanStatus string
}

// Catalog answers whether a treatment may be booked right now.
type Catalog interface {
	Treatment(ctx context.Context, id string) (LiveTreatment, error)
}

// IssueRequest asks for a quote.
type IssueRequest struct {
	// PatientSubject is the caller: the quote's owner.
	PatientSubject string
	// Unreadable are fields the transport could not read (an extra counted
	// in the wrong unit, a malformed date); they are reported together with
	// everything else that is wrong, and no quote is issued.
	Unreadable  []validation.FieldError
	TreatmentID string
	DoseCells   int64
	Currency    string
	Patient     domain.Patient
	Extras      []domain.ExtraRequest
	Screening   *domain.Screening
}

// Service is what quoting offers over HTTP.
type Service interface {
	IssueQuote(ctx context.Context, req IssueRequest) (domain.Quote, error)
	GetQuote(ctx context.Context, caller identity.Principal, id string) (domain.Quote, error)
	ReviseQuote(ctx context.Context, caller identity.Principal, id string, r domain.Revision) (domain.Quote, error)
	AcceptQuote(ctx context.Context, a Acceptance) (domain.Quote, error)
	AuditLog(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
}

// Quoting implements Service and the event handlers.
type Quoting struct {
	pool    *pgxpool.Pool
	store   *store.Store
	catalog Catalog
	rates   fx.Table
	now     func() time.Time
}

// New returns the quoting service.
func New(pool *pgxpool.Pool, s *store.Store, catalog Catalog, rates fx.Table, now func() time.Time) *Quoting {
	return &Quoting{pool: pool, store: s, catalog: catalog, rates: rates, now: now}
}

func (s *Quoting) treatment(ctx context.Context, db pgdb.Querier, id string) (domain.Treatment, error) {
	t, err := s.store.Treatment(ctx, db, id)
	if errors.Is(err, store.ErrNotFound) {
		return t, validation.FieldError{Field: "treatment_id", Message: fmt.Sprintf("no treatment %q in the catalog", id)}
	}
	return t, err
}

// IssueQuote prices the treatment from the catalog read model, screens the
// patient, and stores the quote with its QuoteIssued event.
func (s *Quoting) IssueQuote(ctx context.Context, req IssueRequest) (domain.Quote, error) {
	var v validation.Validator
	v.Add(req.Unreadable...)
	v.Check(req.TreatmentID != "", "treatment_id", "is required")
	// An unknown currency is the domain's to report, with the rest.
	currency, _ := money.ParseCurrency(req.Currency)
	var t domain.Treatment
	var err error
	if req.TreatmentID != "" {
		t, err = s.treatment(ctx, s.pool, req.TreatmentID)
		if fields := validation.Fields(err); len(fields) > 0 {
			v.Add(fields...)
		} else if err != nil {
			return domain.Quote{}, err
		}
	}
	if t.ID == "" {
		// Without the treatment only the patient and currency can be checked too.
		v.Add(req.Patient.Validate()...)
		v.Check(currency != "", "currency", "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD")
		return domain.Quote{}, v.Err()
	}
	q, err := domain.Issue(uuid.Must(uuid.NewV7()).String(), t,
		domain.Request{DoseCells: req.DoseCells, Currency: currency, Patient: req.Patient, Extras: req.Extras, Screening: req.Screening},
		s.rates, s.now())
	q.PatientSubject = req.PatientSubject
	if fields := validation.Fields(err); len(fields) > 0 || v.Err() != nil {
		v.Add(fields...)
		if err := v.Err(); err != nil {
			return domain.Quote{}, err
		}
	}
	if err != nil {
		return domain.Quote{}, err
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.InsertQuote(ctx, tx, q); err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, contract.QuoteIssued(q))
	})
	return q, err
}

// GetQuote returns a quote with its status as of now.
func (s *Quoting) GetQuote(ctx context.Context, caller identity.Principal, id string) (domain.Quote, error) {
	if uuid.Validate(id) != nil {
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
	}
	q, err := s.store.Quote(ctx, s.pool, id, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !visibleTo(q, caller)) {
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
	} else if err != nil {
		return domain.Quote{}, err
	}
	if err := s.audit(ctx, s.pool, caller, "read", q); err != nil {
		return domain.Quote{}, err
	}
	q.Status = q.EffectiveStatus(s.now())
	return q, nil
}

// audit records that caller, other than the patient themself, read q's
// health information (screening and eligibility).
func (s *Quoting) audit(ctx context.Context, db pgdb.Querier, caller identity.Principal, action string, q domain.Quote) error {
	if caller.Role == identity.Patient && caller.Subject == q.PatientSubject {
		return nil
	}
	return s.store.Audit(ctx, db, store.AuditEntry{Subject: caller.Subject, Role: string(caller.Role), ClinicID: caller.ClinicID,
		Action: action, Record: "quote:" + q.ID})
}

// AuditLog reads the audit log, for operators.
func (s *Quoting) AuditLog(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	return s.store.AuditLog(ctx, s.pool, f)
}

// visibleTo says whether caller may see q: its patient, and its clinic's
// staff. Anyone else is told it does not exist, so ids are not confirmed.
func visibleTo(q domain.Quote, caller identity.Principal) bool {
	switch caller.Role {
	case identity.Patient:
		return q.PatientSubject != "" && q.PatientSubject == caller.Subject
	case identity.Clinic:
		return q.ClinicID == caller.ClinicID
	}
	return false
}

// ReviseQuote is a clinic's revision after reviewing the records: a new
// version, priced again, that the patient must accept instead.
func (s *Quoting) ReviseQuote(ctx context.Context, caller identity.Principal, id string, r domain.Revision) (domain.Quote, error) {
	if uuid.Validate(id) != nil {
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
	}
	var next domain.Quote
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q, err := s.store.Quote(ctx, tx, id, true)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (caller.Role != identity.Clinic || !visibleTo(q, caller))) {
			// Only the quote's own clinic revises it.
			return fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
		} else if err != nil {
			return err
		}
		t, err := s.treatment(ctx, tx, q.TreatmentID)
		if err != nil {
			return err
		}
		if err := s.audit(ctx, tx, caller, "revise", q); err != nil {
			return err
		}
		if next, err = q.Revise(uuid.Must(uuid.NewV7()).String(), t, r, s.rates, s.now()); err != nil {
			return err
		}
		if err := s.store.InsertQuote(ctx, tx, next); err != nil {
			return err
		}
		if err := s.store.SaveStatus(ctx, tx, q); err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, contract.QuoteIssued(next))
	})
	return next, err
}

// ReleaseExpired gives back the quote of a booking that expired unpaid, in
// the inbox transaction.
func (s *Quoting) ReleaseExpired(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingExpired) error {
	b := e.GetBooking()
	q, err := s.store.Quote(ctx, tx, b.GetQuoteId(), true)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("booking %s names unknown quote %s", b.GetId(), b.GetQuoteId()))
	}
	if err != nil {
		return err
	}
	if !q.Release(b.GetId()) {
		return nil
	}
	return s.store.SaveStatus(ctx, tx, q)
}

// ApplyTreatmentChanged updates the catalog read model. When the snapshot
// says the plan no longer allows the therapy, the treatment's open quotes
// are withdrawn: nobody can book them any more.
func (s *Quoting) ApplyTreatmentChanged(ctx context.Context, tx pgx.Tx, e *catalogv1.TreatmentChanged) error {
	t, err := contract.Treatment(e)
	if err != nil {
		return bus.Permanent(err)
	}
	changed, err := s.store.SaveTreatment(ctx, tx, t)
	if err != nil || !changed || t.Bookable(tokyo.Date(s.now())) {
		return err
	}
	open, err := s.store.OpenQuotesOf(ctx, tx, t.ID)
	if err != nil {
		return err
	}
	for _, q := range open {
		if !q.Withdraw() {
			continue
		}
		if err := s.store.SaveStatus(ctx, tx, q); err != nil {
			return err
		}
		if err := outbox.Enqueue(ctx, tx, contract.QuoteWithdrawn(q, t)); err != nil {
			return err
		}
	}
	return nil
}

// Acceptance is booking's request to take a quote.
type Acceptance struct {
	QuoteID   string
	BookingID string
	// PatientSubject is the patient booking: only the quote's own.
	PatientSubject string
	// IdempotencyKey is the booking request's Idempotency-Key: the same key
	// accepting again gets the first acceptance back.
	IdempotencyKey string
}

// AcceptQuote is the one place that decides whether a quote can be booked:
// booking calls it, synchronously, before it stores the booking, and passes
// on the problem it answers with. The quote must be bookable as of now, and
// its treatment bookable in the catalog right now (a plan suspended a moment
// ago stops bookings at once). Retried with the same key it answers with the
// quote as first accepted, its booking id included.
func (s *Quoting) AcceptQuote(ctx context.Context, a Acceptance) (domain.Quote, error) {
	switch {
	case uuid.Validate(a.QuoteID) != nil:
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, a.QuoteID)
	case uuid.Validate(a.BookingID) != nil:
		return domain.Quote{}, validation.FieldError{Field: "booking_id", Message: "must be a booking id"}
	case a.IdempotencyKey == "" || len(a.IdempotencyKey) > 255:
		return domain.Quote{}, validation.FieldError{Field: "idempotency_key", Message: "must be 1 to 255 characters"}
	}
	q, err := s.store.Quote(ctx, s.pool, a.QuoteID, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (q.PatientSubject == "" || q.PatientSubject != a.PatientSubject)) {
		// Another patient's quote is, to this patient, no quote at all.
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, a.QuoteID)
	} else if err != nil {
		return q, err
	}
	if q.Status == domain.StatusAccepted && q.AcceptanceKey == a.IdempotencyKey {
		return q, nil
	}
	if err := q.Bookable(s.now()); err != nil {
		return q, err
	}
	live, err := s.catalog.Treatment(ctx, q.TreatmentID)
	if err != nil {
		return q, fmt.Errorf("%w: catalog: %v", ErrUnavailable, err)
	}
	if !live.Bookable {
		return q, fmt.Errorf("%w: %s is offered under plan %s, which is %s", ErrTreatmentStopped, live.ID, live.PlanNumber, live.PlanStatus)
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// Locked and judged again: a revision or withdrawal may have landed
		// while the catalog answered.
		if q, err = s.store.Quote(ctx, tx, a.QuoteID, true); err != nil {
			return err
		}
		changed, err := q.Accept(a.BookingID, a.IdempotencyKey, s.now())
		if err != nil || !changed {
			return err
		}
		if err := s.store.SaveStatus(ctx, tx, q); err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, contract.QuoteAccepted(q))
	})
	return q, err
}
