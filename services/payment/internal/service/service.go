// Package service holds payment's use cases: the deposit intent, Stripe's
// webhooks, the off-session balance charge, and the finance view.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/contract"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
	"github.com/saisei-health/platform/services/payment/internal/stripegw"
)

// Errors the transport maps to problem types.
var (
	ErrNotFound     = errors.New("no payments for booking")
	ErrPlanConflict = errors.New("booking already has a different payment plan")
	ErrStripe       = errors.New("stripe is unavailable")
)

// maxChargeJPY is Stripe's limit on one JPY payment: an amount above it is
// refused before a plan is stored, never sent to Stripe.
const maxChargeJPY = 99_999_999

// DepositRequest comes from booking when a patient books.
type DepositRequest struct {
	BookingID    string
	ClinicID     string
	Deposit      money.Money
	Balance      money.Money
	PatientName  string
	PatientEmail string
	// Method is how the deposit is paid: card (the default) or bank_transfer.
	Method domain.DepositMethod
}

// Stripe is the payment provider as payment uses it; stripegw.Gateway is
// the real one.
type Stripe interface {
	CreateCustomer(ctx context.Context, bookingID, name, email string) (string, error)
	CreateDepositIntent(ctx context.Context, pay domain.Payment) (stripegw.Intent, error)
	ChargeBalance(ctx context.Context, pay domain.Payment) (stripegw.Intent, error)
	FindIntent(ctx context.Context, paymentID string) (*stripegw.Intent, error)
	Refund(ctx context.Context, r domain.Refund) (domain.RefundState, error)
	RefundsOfCharge(ctx context.Context, chargeID string) ([]domain.RefundState, error)
	CancelIntent(ctx context.Context, bookingID string, stage domain.Stage, intentID string) error
	RetrieveIntent(ctx context.Context, id string) (stripegw.Intent, error)
	IntentOfCharge(ctx context.Context, chargeID string) (string, error)
	BalanceLines(ctx context.Context, since time.Time, fn func(domain.BalanceLine) error) error
	CashBalance(ctx context.Context, customerID string) (money.Money, error)
	RefundCashBalance(ctx context.Context, bookingID, customerID, email string, amount money.Money) (string, error)
	VerifyWebhook(payload []byte, signature string) (stripegw.Event, error)
}

// Payments implements payment's use cases.
type Payments struct {
	pool   *pgxpool.Pool
	store  *store.Store
	stripe Stripe
	tracer trace.Tracer
	now    func() time.Time
	log    *slog.Logger
	// refundsDue wakes KeepRefunding when a refund was queued.
	refundsDue chan struct{}
	// overpayment is what happens to money transferred beyond a payment.
	overpayment domain.OverpaymentPolicy
}

// WithOverpayment sets the overpayment policy (refund by default).
func (s *Payments) WithOverpayment(p domain.OverpaymentPolicy) *Payments {
	if p != "" {
		s.overpayment = p
	}
	return s
}

// New returns the payment service.
func New(pool *pgxpool.Pool, s *store.Store, stripe Stripe, tp trace.TracerProvider, now func() time.Time, log *slog.Logger) *Payments {
	return &Payments{pool: pool, store: s, stripe: stripe,
		tracer: tp.Tracer("github.com/saisei-health/platform/services/payment"), now: now, log: log,
		refundsDue: make(chan struct{}, 1), overpayment: domain.RefundOverpayment}
}

// CreateDeposit fixes the booking's payment plan and returns its deposit
// PaymentIntent, creating the Stripe customer and intent the first time.
// Calling it again for the same booking returns the same intent: the rows
// are keyed on the booking and the Stripe calls on deterministic
// idempotency keys, so a crash between steps is finished by the retry.
func (s *Payments) CreateDeposit(ctx context.Context, req DepositRequest) (domain.Payment, error) {
	if err := req.validate(); err != nil {
		return domain.Payment{}, err
	}
	now := s.now().UTC()
	var plan domain.Plan
	var pay domain.Payment
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		plan, err = s.store.InsertPlan(ctx, tx, domain.Plan{BookingID: req.BookingID, ClinicID: req.ClinicID,
			Deposit: req.Deposit, Balance: req.Balance, PatientName: req.PatientName, PatientEmail: req.PatientEmail, CreatedAt: now})
		if err != nil {
			return err
		}
		if plan.Deposit != req.Deposit || plan.Balance != req.Balance || plan.ClinicID != req.ClinicID {
			return fmt.Errorf("%w: %s owes deposit %s and balance %s", ErrPlanConflict, plan.BookingID, plan.Deposit, plan.Balance)
		}
		pay, err = s.store.InsertPayment(ctx, tx, domain.Payment{
			ID: uuid.Must(uuid.NewV7()).String(), BookingID: req.BookingID, ClinicID: req.ClinicID,
			Stage: domain.Deposit, Amount: req.Deposit, Status: domain.Creating, Method: req.Method,
			Trace: telemetry.Inject(ctx), CreatedAt: now,
		})
		return err
	})
	if err != nil || pay.PaymentIntentID != "" {
		return pay, err
	}
	if plan.CustomerID == "" {
		if plan.CustomerID, err = s.stripe.CreateCustomer(ctx, plan.BookingID, plan.PatientName, plan.PatientEmail); err != nil {
			return pay, fmt.Errorf("%w: create customer: %v", ErrStripe, err)
		}
		if err := s.store.SetCustomer(ctx, s.pool, plan.BookingID, plan.CustomerID); err != nil {
			return pay, err
		}
	}
	pay.CustomerID = plan.CustomerID
	intent, err := s.stripe.CreateDepositIntent(ctx, pay)
	if err != nil {
		return pay, fmt.Errorf("%w: create deposit intent: %v", ErrStripe, err)
	}
	// The final write cannot undo what a webhook decided meanwhile (Stripe
	// may report the payment before this call's answer arrives): under the
	// row's lock, a payment still being created becomes requires_payment;
	// one a webhook moved on keeps its state and only gains the client
	// secret.
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		current, err := s.store.PaymentByID(ctx, tx, pay.ID, true)
		if err != nil {
			return err
		}
		if current.Status == domain.Creating {
			pay.PaymentIntentID, pay.ClientSecret = intent.ID, intent.ClientSecret
			// A new intent waits for the patient (their card, or their bank
			// transfer); what happens next comes by webhook.
			pay.Status, pay.UpdatedAt = domain.RequiresPayment, s.now().UTC()
			if intent.State.Status == domain.IntentAwaitingTransfer {
				pay.Status, pay.Transfer = domain.AwaitingTransfer, intent.State.Transfer
			}
		} else {
			pay = current
			pay.ClientSecret = intent.ClientSecret
			if pay.PaymentIntentID == "" {
				pay.PaymentIntentID = intent.ID
			}
		}
		return s.store.UpdatePayment(ctx, tx, pay)
	})
	return pay, err
}

func (r DepositRequest) validate() error {
	switch {
	case uuid.Validate(r.BookingID) != nil:
		return validation.FieldError{Field: "booking_id", Message: "must be a booking id"}
	case r.ClinicID == "":
		return validation.FieldError{Field: "clinic_id", Message: "is required"}
	case r.Deposit.Amount > maxChargeJPY:
		return validation.FieldError{Field: "deposit", Message: fmt.Sprintf("must be at most ¥%d, the most one card payment takes", maxChargeJPY)}
	case r.Balance.Amount > maxChargeJPY:
		return validation.FieldError{Field: "balance", Message: fmt.Sprintf("must be at most ¥%d, the most one card payment takes", maxChargeJPY)}
	case r.Deposit.Currency != money.JPY || !r.Deposit.IsPositive():
		return validation.FieldError{Field: "deposit", Message: "must be a positive JPY amount"}
	case r.Balance.Currency != money.JPY || r.Balance.IsNegative():
		return validation.FieldError{Field: "balance", Message: "must be a JPY amount, zero when paid in full with the deposit"}
	case r.PatientEmail == "":
		return validation.FieldError{Field: "patient.email", Message: "is required"}
	case r.Method != "" && r.Method != domain.ByCard && r.Method != domain.ByBankTransfer:
		return validation.FieldError{Field: "deposit_method", Message: "must be card or bank_transfer"}
	}
	// Sent to Stripe with the customer: bounded as quoting bounds them.
	var v validation.Validator
	v.Text("patient.name", r.PatientName, 200, false)
	v.Text("patient.email", r.PatientEmail, 254, false)
	return v.Err()
}

// PaymentsOf lists a booking's payments, and the disputes on them.
func (s *Payments) PaymentsOf(ctx context.Context, bookingID string) ([]domain.Payment, []domain.Dispute, error) {
	if uuid.Validate(bookingID) != nil {
		return nil, nil, validation.FieldError{Field: "booking_id", Message: "must be a booking id"}
	}
	pays, err := s.store.Payments(ctx, s.pool, bookingID)
	if err != nil {
		return nil, nil, err
	}
	disputes, err := s.store.DisputesOf(ctx, s.pool, bookingID)
	return pays, disputes, err
}

// Finance is what finance reconciles for one booking.
type Finance struct {
	Plan     domain.Plan
	Payments []domain.Payment
	Disputes []domain.Dispute
}

// FinanceOf returns a booking's plan and payments.
func (s *Payments) FinanceOf(ctx context.Context, bookingID string) (Finance, error) {
	if uuid.Validate(bookingID) != nil {
		return Finance{}, fmt.Errorf("%w: %q", ErrNotFound, bookingID)
	}
	plan, err := s.store.Plan(ctx, s.pool, bookingID, false)
	if errors.Is(err, store.ErrNotFound) {
		return Finance{}, fmt.Errorf("%w: %q", ErrNotFound, bookingID)
	}
	if err != nil {
		return Finance{}, err
	}
	pays, err := s.store.Payments(ctx, s.pool, bookingID)
	if err != nil {
		return Finance{}, err
	}
	disputes, err := s.store.DisputesOf(ctx, s.pool, bookingID)
	return Finance{Plan: plan, Payments: pays, Disputes: disputes}, err
}

// apply moves a payment to an intent state and queues the events it calls for.
func (s *Payments) apply(ctx context.Context, tx pgx.Tx, p *domain.Payment, st domain.IntentState) (domain.Outcome, error) {
	out, err := p.Apply(st)
	if err != nil {
		return out, err
	}
	if err := s.store.UpdatePayment(ctx, tx, *p); err != nil {
		return out, err
	}
	if err := s.book(ctx, tx, *p, out); err != nil {
		return out, err
	}
	return out, outbox.Enqueue(ctx, tx, contract.ForOutcome(*p, out)...)
}

// book posts what an applied intent state did to the money: a payment that
// just succeeded is received, once per charge; if its booking had already
// ended, its refund is queued.
func (s *Payments) book(ctx context.Context, tx pgx.Tx, p domain.Payment, out domain.Outcome) error {
	if out != domain.BecameSucceeded {
		return nil
	}
	if _, err := s.store.PostLedger(ctx, tx, domain.Received(p, p.ChargeID)); err != nil {
		return err
	}
	return s.refundLate(ctx, tx, p)
}
