// Package store keeps payment plans, payments and received Stripe events.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

// ErrNotFound is returned for an unknown booking or payment.
var ErrNotFound = errors.New("not found")

// Store reads and writes payment's tables.
type Store struct{}

// New returns a Store.
func New() *Store { return &Store{} }

// InsertPlan stores a plan unless one exists for the booking; it returns
// the stored plan either way.
func (s *Store) InsertPlan(ctx context.Context, db pgdb.Querier, p domain.Plan) (domain.Plan, error) {
	_, err := db.Exec(ctx, `
		INSERT INTO payment_plans (booking_id, clinic_id, currency, deposit_due, balance_due, patient_name, patient_email, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (booking_id) DO NOTHING`,
		p.BookingID, p.ClinicID, p.Deposit.Currency, p.Deposit.Amount, p.Balance.Amount, p.PatientName, p.PatientEmail, p.CreatedAt)
	if err != nil {
		return p, err
	}
	return s.Plan(ctx, db, p.BookingID, true)
}

// Plan reads a booking's plan.
func (s *Store) Plan(ctx context.Context, db pgdb.Querier, bookingID string, forUpdate bool) (domain.Plan, error) {
	sql := `SELECT booking_id, clinic_id, currency, deposit_due, balance_due, customer_id, patient_name, patient_email,
		created_at, balance_cancelled_at, closed_at FROM payment_plans WHERE booking_id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var p domain.Plan
	var currency money.Currency
	var deposit, balance int64
	err := db.QueryRow(ctx, sql, bookingID).Scan(&p.BookingID, &p.ClinicID, &currency, &deposit, &balance,
		&p.CustomerID, &p.PatientName, &p.PatientEmail, &p.CreatedAt, &p.BalanceCancelledAt, &p.ClosedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	p.Deposit, p.Balance = money.New(deposit, currency), money.New(balance, currency)
	return p, err
}

// CancelBalance marks the balance as no longer owed.
func (s *Store) CancelBalance(ctx context.Context, db pgdb.Querier, bookingID string, at time.Time) (bool, error) {
	tag, err := db.Exec(ctx, `UPDATE payment_plans SET balance_cancelled_at = $2 WHERE booking_id = $1 AND balance_cancelled_at IS NULL`, bookingID, at)
	return tag.RowsAffected() == 1, err
}

// RestoreBalance makes a cancelled balance owed again (a free re-culture
// after a failed QC), unless the plan is closed.
func (s *Store) RestoreBalance(ctx context.Context, db pgdb.Querier, bookingID string) error {
	_, err := db.Exec(ctx, `UPDATE payment_plans SET balance_cancelled_at = NULL WHERE booking_id = $1 AND closed_at IS NULL`, bookingID)
	return err
}

// ClosePlan marks a booking's plan closed (and its balance cancelled), once.
func (s *Store) ClosePlan(ctx context.Context, db pgdb.Querier, bookingID string, at time.Time) error {
	_, err := db.Exec(ctx, `UPDATE payment_plans SET closed_at = COALESCE(closed_at, $2),
		balance_cancelled_at = COALESCE(balance_cancelled_at, $2) WHERE booking_id = $1`, bookingID, at)
	return err
}

// SetCustomer records the Stripe customer of a booking.
func (s *Store) SetCustomer(ctx context.Context, db pgdb.Querier, bookingID, customerID string) error {
	_, err := db.Exec(ctx, `UPDATE payment_plans SET customer_id = $2 WHERE booking_id = $1`, bookingID, customerID)
	return err
}

const paymentColumns = `id, booking_id, clinic_id, stage, amount, currency, status, COALESCE(payment_intent_id, ''),
	client_secret, customer_id, payment_method_id, amount_received, failure_code, failure_message, last_event_at,
	succeeded_at, trace, created_at, updated_at, charge_id, method, transfer`

func scanPayment(row pgx.Row) (domain.Payment, error) {
	var p domain.Payment
	var amount, received int64
	var currency money.Currency
	var lastEvent *time.Time
	var trace []byte
	err := row.Scan(&p.ID, &p.BookingID, &p.ClinicID, &p.Stage, &amount, &currency, &p.Status, &p.PaymentIntentID,
		&p.ClientSecret, &p.CustomerID, &p.PaymentMethodID, &received, &p.FailureCode, &p.FailureMessage, &lastEvent,
		&p.SucceededAt, &trace, &p.CreatedAt, &p.UpdatedAt, &p.ChargeID, &p.Method, &p.Transfer)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, err
	}
	p.Amount, p.AmountReceived = money.New(amount, currency), money.New(received, currency)
	if lastEvent != nil {
		p.LastEventAt = *lastEvent
	}
	return p, json.Unmarshal(trace, &p.Trace)
}

// InsertPayment stores p unless the booking already has a payment of that
// stage; it returns the stored payment either way.
func (s *Store) InsertPayment(ctx context.Context, db pgdb.Querier, p domain.Payment) (domain.Payment, error) {
	trace, err := json.Marshal(p.Trace)
	if err != nil {
		return p, err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO payments (id, booking_id, clinic_id, stage, amount, currency, status, customer_id,
			payment_method_id, trace, created_at, updated_at, method)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) ON CONFLICT (booking_id, stage) DO NOTHING`,
		p.ID, p.BookingID, p.ClinicID, p.Stage, p.Amount.Amount, p.Amount.Currency, p.Status, p.CustomerID,
		p.PaymentMethodID, trace, p.CreatedAt, methodOf(p))
	if err != nil {
		return p, err
	}
	return s.PaymentByStage(ctx, db, p.BookingID, p.Stage, true)
}

func methodOf(p domain.Payment) domain.DepositMethod {
	if p.Method == "" {
		return domain.ByCard
	}
	return p.Method
}

// PaymentByStage reads a booking's payment of one stage.
func (s *Store) PaymentByStage(ctx context.Context, db pgdb.Querier, bookingID string, stage domain.Stage, forUpdate bool) (domain.Payment, error) {
	sql := `SELECT ` + paymentColumns + ` FROM payments WHERE booking_id = $1 AND stage = $2`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	return scanPayment(db.QueryRow(ctx, sql, bookingID, stage))
}

// PaymentByIntent finds the payment of a PaymentIntent.
func (s *Store) PaymentByIntent(ctx context.Context, db pgdb.Querier, intentID string, forUpdate bool) (domain.Payment, error) {
	sql := `SELECT ` + paymentColumns + ` FROM payments WHERE payment_intent_id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	return scanPayment(db.QueryRow(ctx, sql, intentID))
}

// PaymentByID reads one payment.
func (s *Store) PaymentByID(ctx context.Context, db pgdb.Querier, id string, forUpdate bool) (domain.Payment, error) {
	sql := `SELECT ` + paymentColumns + ` FROM payments WHERE id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	return scanPayment(db.QueryRow(ctx, sql, id))
}

// Payments lists a booking's payments, deposit first.
func (s *Store) Payments(ctx context.Context, db pgdb.Querier, bookingID string) ([]domain.Payment, error) {
	rows, err := db.Query(ctx, `SELECT `+paymentColumns+` FROM payments WHERE booking_id = $1 ORDER BY created_at, stage`, bookingID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Payment, error) { return scanPayment(r) })
}

// UpdatePayment writes the mutable state of p.
func (s *Store) UpdatePayment(ctx context.Context, db pgdb.Querier, p domain.Payment) error {
	var intent *string
	if p.PaymentIntentID != "" {
		intent = &p.PaymentIntentID
	}
	var lastEvent *time.Time
	if !p.LastEventAt.IsZero() {
		lastEvent = &p.LastEventAt
	}
	_, err := db.Exec(ctx, `
		UPDATE payments SET status = $2, payment_intent_id = $3, client_secret = $4, customer_id = $5,
			payment_method_id = $6, amount_received = $7, failure_code = $8, failure_message = $9,
			last_event_at = $10, succeeded_at = $11, updated_at = $12, charge_id = $13, transfer = $14
		WHERE id = $1`,
		p.ID, p.Status, intent, p.ClientSecret, p.CustomerID, p.PaymentMethodID, p.AmountReceived.Amount,
		p.FailureCode, p.FailureMessage, lastEvent, p.SucceededAt, p.UpdatedAt, p.ChargeID, p.Transfer)
	return err
}

// RecordEvent stores a Stripe event; false means it was already received.
func (s *Store) RecordEvent(ctx context.Context, db pgdb.Querier, id, typ, intentID string, created time.Time, outcome string, payload []byte) (bool, error) {
	tag, err := db.Exec(ctx, `
		INSERT INTO stripe_events (id, type, payment_intent_id, created_at, outcome, payload)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, id, typ, intentID, created, outcome, payload)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// SetEventOutcome records what an event did.
func (s *Store) SetEventOutcome(ctx context.Context, db pgdb.Querier, id, outcome string) error {
	_, err := db.Exec(ctx, `UPDATE stripe_events SET outcome = $2 WHERE id = $1`, id, outcome)
	return err
}
