// Package service holds booking's use cases: taking a quote, the clinic's
// reports, and the reactions to payments. Each state change commits with its
// event through the outbox.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/booking/internal/contract"
	"github.com/saisei-health/platform/services/booking/internal/domain"
	"github.com/saisei-health/platform/services/booking/internal/store"
	"github.com/saisei-health/platform/services/booking/internal/upstream"
)

// Errors the transport maps to problem types. Why a quote cannot be booked
// is quoting's to say: its problem is passed on as it is.
var (
	ErrNotFound            = errors.New("booking not found")
	ErrQuoteAlreadyBooked  = errors.New("quote is already booked")
	ErrIdempotencyMismatch = errors.New("idempotency key was used for a different request")
	// ErrIdempotencyKeyRequired comes with a FieldError naming the header.
	ErrIdempotencyKeyRequired = errors.New("Idempotency-Key header is required")
	ErrUnavailable            = errors.New("a service booking depends on is unavailable")
)

// Quotes is quoting, as booking uses it: it accepts a quote for a booking,
// or says why it cannot be booked.
type Quotes interface {
	AcceptQuote(ctx context.Context, quoteID string, a upstream.Acceptance) (*upstream.Quote, error)
}

// Screenings is quoting read as the caller: a quote's health information,
// which quoting shows only to whom it may and audits.
type Screenings interface {
	Screening(ctx context.Context, quoteID, authorization string) (*upstream.Screening, error)
}

// Deposits is payment, as booking uses it.
type Deposits interface {
	CreateDeposit(ctx context.Context, req upstream.DepositRequest) (*upstream.Deposit, error)
	BalanceSession(ctx context.Context, bookingID string) (*upstream.BalanceSession, error)
}

// CreateRequest books a quote.
type CreateRequest struct {
	QuoteID        string
	IdempotencyKey string
	// PatientSubject is the caller, who owns the booking and the key.
	PatientSubject string
	// DepositMethod is card (the default) or bank_transfer.
	DepositMethod string
}

// Created is a booking with the deposit the patient now pays.
type Created struct {
	Booking  domain.Booking
	Deposit  upstream.Deposit
	Replayed bool
}

// Service is what booking offers over HTTP.
type Service interface {
	CreateBooking(ctx context.Context, req CreateRequest) (Created, error)
	GetBooking(ctx context.Context, caller identity.Principal, id string) (domain.Booking, []domain.Transition, error)
	ClinicBookings(ctx context.Context, caller identity.Principal, f store.ClinicFilter) ([]domain.Booking, error)
	ClinicBooking(ctx context.Context, caller identity.Principal, id, authorization string) (domain.Booking, []domain.Transition, *upstream.Screening, error)
	RecordHarvest(ctx context.Context, caller identity.Principal, id string, at time.Time) (domain.Booking, error)
	RecordCellsReady(ctx context.Context, caller identity.Principal, id string, r domain.QualityReport) (domain.Booking, error)
	RecordAdministration(ctx context.Context, caller identity.Principal, id string, at time.Time) (domain.Booking, error)
	CancelBooking(ctx context.Context, caller identity.Principal, id string) (domain.Booking, error)
	FindIneligible(ctx context.Context, caller identity.Principal, id, note string) (domain.Booking, error)
	PayBalance(ctx context.Context, caller identity.Principal, id string) (domain.Booking, upstream.BalanceSession, error)
	Reculture(ctx context.Context, caller identity.Principal, id string) (domain.Booking, error)
}

// Bookings implements Service and the payment event handlers.
type Bookings struct {
	pool       *pgxpool.Pool
	store      *store.Store
	quotes     Quotes
	deposits   Deposits
	screenings Screenings
	tracer     trace.Tracer
	now        func() time.Time
	// depositWindow is how long a booking waits for its deposit.
	depositWindow time.Duration
	// balanceGrace is how long a balance that needs the patient waits;
	// remindEvery how often the patient is reminded meanwhile.
	balanceGrace time.Duration
	remindEvery  time.Duration
}

// Defaults for a balance that needs the patient.
const (
	DefaultBalanceGrace = 72 * time.Hour
	DefaultRemindEvery  = 24 * time.Hour
)

// DefaultDepositWindow is how long a booking waits for its deposit.
const DefaultDepositWindow = 72 * time.Hour

// New returns the booking service.
func New(pool *pgxpool.Pool, s *store.Store, quotes Quotes, deposits Deposits, screenings Screenings, tp trace.TracerProvider, now func() time.Time) *Bookings {
	return &Bookings{pool: pool, store: s, quotes: quotes, deposits: deposits, screenings: screenings,
		tracer: tp.Tracer("github.com/saisei-health/platform/services/booking"), now: now, depositWindow: DefaultDepositWindow,
		balanceGrace: DefaultBalanceGrace, remindEvery: DefaultRemindEvery}
}

// WithBalanceGrace sets how long a balance that needs the patient waits.
func (s *Bookings) WithBalanceGrace(d time.Duration) *Bookings {
	if d > 0 {
		s.balanceGrace = d
	}
	return s
}

// WithDepositWindow sets how long new bookings wait for their deposit.
func (s *Bookings) WithDepositWindow(d time.Duration) *Bookings {
	if d > 0 {
		s.depositWindow = d
	}
	return s
}

// CreateBooking takes a quote. The Idempotency-Key makes it safe to retry:
// the same key answers with the same booking and the same deposit intent,
// and a failure after the booking was stored is finished by the retry.
func (s *Bookings) CreateBooking(ctx context.Context, req CreateRequest) (Created, error) {
	switch {
	case req.IdempotencyKey == "":
		return Created{}, fmt.Errorf("%w: %w", ErrIdempotencyKeyRequired,
			validation.FieldError{Field: "Idempotency-Key", Message: "header is required; send a unique key per booking attempt"})
	case len(req.IdempotencyKey) > 255:
		return Created{}, validation.FieldError{Field: "Idempotency-Key", Message: "must be at most 255 characters"}
	case req.QuoteID == "":
		return Created{}, validation.FieldError{Field: "quote_id", Message: "is required"}
	case uuid.Validate(req.QuoteID) != nil:
		return Created{}, validation.FieldError{Field: "quote_id", Message: "is not a quote id"}
	case req.PatientSubject == "":
		return Created{}, errors.New("booking: a booking needs its patient")
	case req.DepositMethod != "" && req.DepositMethod != "card" && req.DepositMethod != "bank_transfer":
		return Created{}, validation.FieldError{Field: "deposit_method", Message: "must be card or bank_transfer"}
	}
	if req.DepositMethod == "" {
		req.DepositMethod = "card"
	}
	if existing, err := s.store.ByIdempotencyKey(ctx, s.pool, req.PatientSubject, req.IdempotencyKey); err == nil {
		return s.replay(ctx, existing, req)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Created{}, err
	}

	// Quoting accepts the quote before the booking exists, so no revision
	// or withdrawal can land in between; the same key accepting again gets
	// the booking id it was first given, which a retry after a crash here
	// then stores.
	q, err := s.quotes.AcceptQuote(ctx, req.QuoteID, upstream.Acceptance{
		BookingID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: req.IdempotencyKey, PatientSubject: req.PatientSubject})
	var refused *httpkit.Problem
	switch {
	case errors.As(err, &refused) && refused.Status == http.StatusNotFound:
		return Created{}, validation.FieldError{Field: "quote_id", Message: fmt.Sprintf("no quote %q", req.QuoteID)}
	case errors.As(err, &refused) && refused.Status < http.StatusInternalServerError:
		return Created{}, refused // quoting's verdict, passed on
	case err != nil:
		return Created{}, fmt.Errorf("%w: quoting: %v", ErrUnavailable, err)
	case q.Deposit == nil || q.Balance == nil || uuid.Validate(q.BookingID) != nil:
		return Created{}, fmt.Errorf("quoting accepted quote %s without deposit, balance or booking id", q.ID)
	}
	now := s.now()
	b := domain.Booking{
		ID: q.BookingID, IdempotencyKey: req.IdempotencyKey, PatientSubject: req.PatientSubject, QuoteID: q.ID,
		TreatmentID: q.TreatmentID, TreatmentName: q.TreatmentName, ClinicID: q.ClinicID, ClinicName: q.ClinicName,
		DoseCells: q.DoseCells, RequiresHarvest: q.RequiresHarvest,
		Patient: domain.Patient{Name: q.Patient.Name, Email: q.Patient.Email, Country: q.Patient.Country, Language: q.Patient.Language},
		Status:  domain.AwaitingDeposit, Total: q.Total, Deposit: *q.Deposit, Balance: *q.Balance,
		Terms: termsOf(q), DepositDueAt: now.UTC().Add(s.depositWindow), DepositMethod: req.DepositMethod,
		Trace: telemetry.Inject(ctx), CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("booking.id", b.ID), attribute.String("clinic.id", b.ClinicID))
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.store.Insert(ctx, tx, b); err != nil {
			return err
		}
		ev, err := contract.Event(b)
		if err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, ev)
	})
	switch {
	case errors.Is(err, store.ErrDuplicateKey):
		// A concurrent request with the same key won the race.
		existing, err := s.store.ByIdempotencyKey(ctx, s.pool, req.PatientSubject, req.IdempotencyKey)
		if errors.Is(err, store.ErrNotFound) {
			// The id is another caller's booking: this request cannot have it.
			return Created{}, fmt.Errorf("%w: quote %s", ErrQuoteAlreadyBooked, q.ID)
		}
		if err != nil {
			return Created{}, err
		}
		return s.replay(ctx, existing, req)
	case errors.Is(err, store.ErrQuoteAlreadyTaken):
		return Created{}, fmt.Errorf("%w: quote %s", ErrQuoteAlreadyBooked, q.ID)
	case err != nil:
		return Created{}, err
	}
	return s.withDeposit(ctx, b, false)
}

// termsOf copies the quote's cancellation terms into the booking: they
// govern it whatever the clinic's policy becomes. A quote from before terms
// existed keeps nothing on cancellation.
func termsOf(q *upstream.Quote) domain.CancellationTerms {
	if t := q.CancellationTerms; t != nil {
		return domain.CancellationTerms{PolicyVersion: t.PolicyVersion, CancellationFee: t.CancellationFee,
			ConsultationFee: t.ConsultationFee, CultureCost: t.CultureCost}
	}
	zero := money.Zero(q.Total.Currency)
	return domain.CancellationTerms{CancellationFee: zero, ConsultationFee: zero, CultureCost: zero}
}

func (s *Bookings) replay(ctx context.Context, b domain.Booking, req CreateRequest) (Created, error) {
	if b.QuoteID != req.QuoteID {
		return Created{}, fmt.Errorf("%w: key %q booked quote %s", ErrIdempotencyMismatch, req.IdempotencyKey, b.QuoteID)
	}
	// A retry (found by the chaos run) must not start the payment in the
	// retry's own trace: the deposit call continues the booking's, so the
	// webhooks, notices and emails that follow stay in one trace.
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, b.Trace, "booking deposit")
	defer span.End()
	return s.withDeposit(ctx, b, true)
}

// withDeposit obtains the deposit intent. Payment keys it on the booking, so
// a retry gets the same intent; if payment is down the booking stays
// awaiting its deposit and the client's retry with the same key finishes it.
func (s *Bookings) withDeposit(ctx context.Context, b domain.Booking, replayed bool) (Created, error) {
	d, err := s.deposits.CreateDeposit(ctx, upstream.DepositRequest{
		BookingID: b.ID, ClinicID: b.ClinicID, Deposit: b.Deposit, Balance: b.Balance, DepositMethod: b.DepositMethod,
		Patient: upstream.Patient{Name: b.Patient.Name, Email: b.Patient.Email, Country: b.Patient.Country, Language: b.Patient.Language},
	})
	if err != nil {
		return Created{}, fmt.Errorf("%w: payment (booking %s is stored; retry with the same Idempotency-Key): %v", ErrUnavailable, b.ID, err)
	}
	return Created{Booking: b, Deposit: *d, Replayed: replayed}, nil
}

// GetBooking returns a booking and its history, to its patient or its
// clinic.
func (s *Bookings) GetBooking(ctx context.Context, caller identity.Principal, id string) (domain.Booking, []domain.Transition, error) {
	b, err := s.get(ctx, caller, id)
	if err != nil {
		return b, nil, err
	}
	history, err := s.store.Transitions(ctx, s.pool, id)
	return b, history, err
}

// get reads a booking caller may see; anyone else is told it does not
// exist, so booking ids (they are printed in emails) confirm nothing.
func (s *Bookings) get(ctx context.Context, caller identity.Principal, id string) (domain.Booking, error) {
	if uuid.Validate(id) != nil {
		return domain.Booking{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := s.store.Get(ctx, s.pool, id, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !visibleTo(b, caller)) {
		return domain.Booking{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return b, err
}

// visibleTo says whether caller may see b: its patient and its clinic.
func visibleTo(b domain.Booking, caller identity.Principal) bool {
	switch caller.Role {
	case identity.Patient:
		return b.PatientSubject != "" && b.PatientSubject == caller.Subject
	case identity.Clinic:
		return b.ClinicID == caller.ClinicID
	}
	return false
}

// ClinicBooking is one of the clinic's bookings with its history and the
// patient's screening, read from quoting with the clinic's own token
// (authorization), so quoting audits the read.
func (s *Bookings) ClinicBooking(ctx context.Context, caller identity.Principal, id, authorization string) (domain.Booking, []domain.Transition, *upstream.Screening, error) {
	b, history, err := s.GetBooking(ctx, caller, id)
	if err != nil {
		return b, nil, nil, err
	}
	sc, err := s.screenings.Screening(ctx, b.QuoteID, authorization)
	if err != nil {
		return b, nil, nil, fmt.Errorf("%w: quoting: %v", ErrUnavailable, err)
	}
	return b, history, sc, nil
}

// ClinicBookings lists the caller clinic's own bookings: the filter's
// clinic is always the caller's.
func (s *Bookings) ClinicBookings(ctx context.Context, caller identity.Principal, f store.ClinicFilter) ([]domain.Booking, error) {
	if caller.Role != identity.Clinic || caller.ClinicID == "" {
		return nil, fmt.Errorf("%w: only a clinic lists its bookings", ErrNotFound)
	}
	f.ClinicID = caller.ClinicID
	return s.store.ByClinic(ctx, s.pool, f)
}

// RecordHarvest files the clinic's report that cells were collected.
func (s *Bookings) RecordHarvest(ctx context.Context, caller identity.Principal, id string, at time.Time) (domain.Booking, error) {
	return s.clinicReport(ctx, caller, id, "harvest", func(b *domain.Booking) (domain.Transition, error) {
		return b.RecordHarvest(at)
	})
}

// RecordCellsReady files the certificate of analysis.
func (s *Bookings) RecordCellsReady(ctx context.Context, caller identity.Principal, id string, r domain.QualityReport) (domain.Booking, error) {
	return s.clinicReport(ctx, caller, id, "cells-ready", func(b *domain.Booking) (domain.Transition, error) {
		return b.RecordCellsReady(r)
	})
}

// RecordAdministration files the clinic's report that cells were given.
func (s *Bookings) RecordAdministration(ctx context.Context, caller identity.Principal, id string, at time.Time) (domain.Booking, error) {
	return s.clinicReport(ctx, caller, id, "administered", func(b *domain.Booking) (domain.Transition, error) {
		return b.RecordAdministration(at)
	})
}

// CancelBooking is the patient cancelling their booking: what is refunded
// follows the terms the booking was made under (domain.Booking.Cancel),
// and payment refunds it on the cancellation event.
func (s *Bookings) CancelBooking(ctx context.Context, caller identity.Principal, id string) (domain.Booking, error) {
	if caller.Role != identity.Patient {
		return domain.Booking{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s.change(ctx, caller, id, "cancel", func(b *domain.Booking) (domain.Transition, error) {
		_, t, err := b.Cancel(s.now().UTC())
		return t, err
	})
}

// PayBalance gives the booking's patient what their app needs to pay the
// balance on-session (authenticate it, or use another card), while the
// booking waits for it.
func (s *Bookings) PayBalance(ctx context.Context, caller identity.Principal, id string) (domain.Booking, upstream.BalanceSession, error) {
	if caller.Role != identity.Patient {
		return domain.Booking{}, upstream.BalanceSession{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := s.get(ctx, caller, id)
	if err != nil {
		return b, upstream.BalanceSession{}, err
	}
	if b.Status != domain.BalanceActionRequired {
		return b, upstream.BalanceSession{}, domain.TransitionError{Action: "pay the balance of", From: b.Status}
	}
	bs, err := s.deposits.BalanceSession(ctx, b.ID)
	var refused *httpkit.Problem
	switch {
	case errors.As(err, &refused) && refused.Status < http.StatusInternalServerError:
		return b, upstream.BalanceSession{}, refused
	case err != nil:
		return b, upstream.BalanceSession{}, fmt.Errorf("%w: payment: %v", ErrUnavailable, err)
	}
	return b, *bs, nil
}

// Reculture is the patient choosing a free second culture after the cells
// failed QC, instead of the refund. The return to culturing is announced
// by RecultureStarted (payment owes the balance again, the clinic cultures
// again), not by a status event.
func (s *Bookings) Reculture(ctx context.Context, caller identity.Principal, id string) (domain.Booking, error) {
	if caller.Role != identity.Patient {
		return domain.Booking{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := s.get(ctx, caller, id)
	if err != nil {
		return b, err
	}
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if b, err = s.store.Get(ctx, tx, id, true); err != nil {
			return err
		}
		at := s.now().UTC()
		t, err := b.Reculture(at)
		if err != nil {
			return err
		}
		if err := s.store.Update(ctx, tx, b, &t); err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, contract.Reculture(b, at))
	})
	return b, err
}

// FindIneligible is the clinic finding the patient ineligible at the
// consultation: the deposit is refunded less the consultation fee.
func (s *Bookings) FindIneligible(ctx context.Context, caller identity.Principal, id, note string) (domain.Booking, error) {
	return s.clinicReport(ctx, caller, id, "ineligible", func(b *domain.Booking) (domain.Transition, error) {
		_, t, err := b.FindIneligible(note, s.now().UTC())
		if errors.Is(err, domain.ErrNoteRequired) {
			return t, validation.FieldError{Field: "reason", Message: "is required: the patient is told why"}
		}
		return t, err
	})
}

// clinicReport applies a report of the booking's own clinic (any other
// caller finds no such booking) inside the booking's own trace: the
// clinic's request starts a fresh trace, which the work links to.
func (s *Bookings) clinicReport(ctx context.Context, caller identity.Principal, id, action string, apply func(*domain.Booking) (domain.Transition, error)) (domain.Booking, error) {
	if caller.Role != identity.Clinic {
		return domain.Booking{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s.change(ctx, caller, id, action, apply)
}

// change applies a change by the booking's patient or clinic (anyone else
// finds no such booking) under the booking's row lock, inside the
// booking's own trace: the request starts a fresh trace, which the work
// links to.
func (s *Bookings) change(ctx context.Context, caller identity.Principal, id, action string, apply func(*domain.Booking) (domain.Transition, error)) (domain.Booking, error) {
	b, err := s.get(ctx, caller, id)
	if err != nil {
		return b, err
	}
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, b.Trace, "booking "+action,
		trace.WithAttributes(attribute.String("booking.id", id)))
	defer span.End()
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if b, err = s.store.Get(ctx, tx, id, true); err != nil {
			return err
		}
		t, err := apply(&b)
		if err != nil {
			return err
		}
		return s.save(ctx, tx, b, &t)
	})
	return b, err
}

func (s *Bookings) save(ctx context.Context, tx pgx.Tx, b domain.Booking, t *domain.Transition) error {
	if err := s.store.Update(ctx, tx, b, t); err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	ev, err := contract.Event(b)
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx, ev)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimSpace(strings.ToValidUTF8(s[:n], ""))
}
