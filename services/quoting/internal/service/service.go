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
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
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
}

// Service is what quoting offers over HTTP.
type Service interface {
	IssueQuote(ctx context.Context, req IssueRequest) (domain.Quote, error)
	GetQuote(ctx context.Context, id string) (domain.Quote, error)
}

// Quoting implements Service and the event handlers.
type Quoting struct {
	pool   *pgxpool.Pool
	store  *store.Store
	rates  domain.Rates
	policy domain.DepositPolicy
	now    func() time.Time
}

// New returns the quoting service.
func New(pool *pgxpool.Pool, s *store.Store, rates domain.Rates, now func() time.Time) *Quoting {
	return &Quoting{pool: pool, store: s, rates: rates, policy: domain.DefaultDepositPolicy, now: now}
}

// IssueQuote prices the treatment from the catalog read model and stores
// the quote with its QuoteIssued event.
func (s *Quoting) IssueQuote(ctx context.Context, req IssueRequest) (domain.Quote, error) {
	if req.TreatmentID == "" {
		return domain.Quote{}, domain.FieldError{Field: "treatment_id", Message: "is required"}
	}
	currency, err := money.ParseCurrency(req.Currency)
	if err != nil {
		return domain.Quote{}, domain.FieldError{Field: "currency", Message: "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD"}
	}
	t, err := s.store.Treatment(ctx, s.pool, req.TreatmentID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.Quote{}, domain.FieldError{Field: "treatment_id", Message: fmt.Sprintf("no treatment %q in the catalog", req.TreatmentID)}
	}
	if err != nil {
		return domain.Quote{}, err
	}
	q, err := domain.Issue(uuid.Must(uuid.NewV7()).String(), t,
		domain.Request{DoseCells: req.DoseCells, Currency: currency, Patient: req.Patient}, s.rates, s.policy, s.now())
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

// ApplyTreatmentChanged updates the catalog read model.
func (s *Quoting) ApplyTreatmentChanged(ctx context.Context, tx pgx.Tx, m bus.Message) error {
	var e catalogv1.TreatmentChanged
	if err := m.Decode(&e); err != nil {
		return err
	}
	t, err := contract.Treatment(&e)
	if err != nil {
		return bus.Permanent(err)
	}
	return s.store.SaveTreatment(ctx, tx, t)
}

// ApplyBookingCreated marks the booked quote accepted. Booking checked the
// quote when it took it; if the quote has expired since (a booking event
// delayed past validity), the booking still stands: it was made in time.
func (s *Quoting) ApplyBookingCreated(ctx context.Context, tx pgx.Tx, m bus.Message) error {
	var e bookingv1.BookingCreated
	if err := m.Decode(&e); err != nil {
		return err
	}
	b := e.GetBooking()
	q, err := s.store.Quote(ctx, tx, b.GetQuoteId(), true)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("booking %s names unknown quote %s", b.GetId(), b.GetQuoteId()))
	}
	if err != nil {
		return err
	}
	bookedAt := b.GetCreatedAt().AsTime()
	changed, err := q.Accept(b.GetId(), bookedAt)
	if err != nil {
		return bus.Permanent(fmt.Errorf("booking %s: %w", b.GetId(), err))
	}
	if !changed {
		return nil
	}
	if err := s.store.SaveAcceptance(ctx, tx, q); err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx, contract.QuoteAccepted(q))
}
