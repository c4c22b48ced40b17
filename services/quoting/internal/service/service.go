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
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/quoting/internal/contract"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/store"
)

// ErrQuoteNotFound is returned for an unknown quote id.
var ErrQuoteNotFound = errors.New("quote not found")

// IssueRequest asks for a quote.
type IssueRequest struct {
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
	GetQuote(ctx context.Context, id string) (domain.Quote, error)
	ReviseQuote(ctx context.Context, id string, r domain.Revision) (domain.Quote, error)
}

// Quoting implements Service and the event handlers.
type Quoting struct {
	pool  *pgxpool.Pool
	store *store.Store
	rates fx.Table
	now   func() time.Time
}

// New returns the quoting service.
func New(pool *pgxpool.Pool, s *store.Store, rates fx.Table, now func() time.Time) *Quoting {
	return &Quoting{pool: pool, store: s, rates: rates, now: now}
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
	if req.TreatmentID == "" {
		return domain.Quote{}, validation.FieldError{Field: "treatment_id", Message: "is required"}
	}
	currency, err := money.ParseCurrency(req.Currency)
	if err != nil {
		return domain.Quote{}, validation.FieldError{Field: "currency", Message: "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD"}
	}
	t, err := s.treatment(ctx, s.pool, req.TreatmentID)
	if err != nil {
		return domain.Quote{}, err
	}
	q, err := domain.Issue(uuid.Must(uuid.NewV7()).String(), t,
		domain.Request{DoseCells: req.DoseCells, Currency: currency, Patient: req.Patient, Extras: req.Extras, Screening: req.Screening},
		s.rates, s.now())
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
func (s *Quoting) GetQuote(ctx context.Context, id string) (domain.Quote, error) {
	if uuid.Validate(id) != nil {
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
	}
	q, err := s.store.Quote(ctx, s.pool, id, false)
	if errors.Is(err, store.ErrNotFound) {
		return q, fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
	}
	q.Status = q.EffectiveStatus(s.now())
	return q, err
}

// ReviseQuote is a clinic's revision after reviewing the records: a new
// version, priced again, that the patient must accept instead.
func (s *Quoting) ReviseQuote(ctx context.Context, id string, r domain.Revision) (domain.Quote, error) {
	if uuid.Validate(id) != nil {
		return domain.Quote{}, fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
	}
	var next domain.Quote
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q, err := s.store.Quote(ctx, tx, id, true)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %q", ErrQuoteNotFound, id)
		} else if err != nil {
			return err
		}
		t, err := s.treatment(ctx, tx, q.TreatmentID)
		if err != nil {
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

// ApplyBookingCreated marks the booked quote accepted. Booking checked the
// quote when it took it; the acceptance is judged as of the booking's time,
// so a booking event delayed past the quote's validity still stands.
func (s *Quoting) ApplyBookingCreated(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingCreated) error {
	b := e.GetBooking()
	q, err := s.store.Quote(ctx, tx, b.GetQuoteId(), true)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("booking %s names unknown quote %s", b.GetId(), b.GetQuoteId()))
	}
	if err != nil {
		return err
	}
	changed, err := q.Accept(b.GetId(), b.GetCreatedAt().AsTime())
	if err != nil {
		// A booking raced a withdrawal or revision: a person reconciles it.
		return bus.Permanent(fmt.Errorf("booking %s: %w", b.GetId(), err))
	}
	if !changed {
		return nil
	}
	if err := s.store.SaveStatus(ctx, tx, q); err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx, contract.QuoteAccepted(q))
}
