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

const refundColumns = `id, booking_id, clinic_id, payment_id, stage, cause, amount, currency, status,
	COALESCE(stripe_refund_id, ''), payment_intent_id, failure_reason, last_event_at, succeeded_at, trace, created_at, updated_at`

func scanRefund(row pgx.Row) (domain.Refund, error) {
	var r domain.Refund
	var amount int64
	var currency money.Currency
	var lastEvent *time.Time
	var trace []byte
	err := row.Scan(&r.ID, &r.BookingID, &r.ClinicID, &r.PaymentID, &r.Stage, &r.Cause, &amount, &currency, &r.Status,
		&r.StripeRefundID, &r.PaymentIntentID, &r.FailureReason, &lastEvent, &r.SucceededAt, &trace, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	r.Amount = money.New(amount, currency)
	if lastEvent != nil {
		r.LastEventAt = *lastEvent
	}
	return r, json.Unmarshal(trace, &r.Trace)
}

// InsertRefund stores r unless its cause already refunds its payment.
func (s *Store) InsertRefund(ctx context.Context, db pgdb.Querier, r domain.Refund) error {
	trace, err := json.Marshal(r.Trace)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO refunds (id, booking_id, clinic_id, payment_id, stage, cause, amount, currency, status,
			payment_intent_id, trace, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) ON CONFLICT (cause, payment_id) DO NOTHING`,
		r.ID, r.BookingID, r.ClinicID, r.PaymentID, r.Stage, r.Cause, r.Amount.Amount, r.Amount.Currency, r.Status,
		r.PaymentIntentID, trace, r.CreatedAt)
	return err
}

// RefundsOf lists a booking's refunds, oldest first.
func (s *Store) RefundsOf(ctx context.Context, db pgdb.Querier, bookingID string) ([]domain.Refund, error) {
	rows, err := db.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE booking_id = $1 ORDER BY created_at, id`, bookingID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Refund, error) { return scanRefund(r) })
}

// RefundsByCause lists the refunds one cause asked for.
func (s *Store) RefundsByCause(ctx context.Context, db pgdb.Querier, cause string) ([]domain.Refund, error) {
	rows, err := db.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE cause = $1 ORDER BY stage DESC, id`, cause)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Refund, error) { return scanRefund(r) })
}

// RefundByID reads one refund, locked when forUpdate.
func (s *Store) RefundByID(ctx context.Context, db pgdb.Querier, id string, forUpdate bool) (domain.Refund, error) {
	sql := `SELECT ` + refundColumns + ` FROM refunds WHERE id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	return scanRefund(db.QueryRow(ctx, sql, id))
}

// RefundByStripeID finds the refund Stripe knows as id.
func (s *Store) RefundByStripeID(ctx context.Context, db pgdb.Querier, id string, forUpdate bool) (domain.Refund, error) {
	sql := `SELECT ` + refundColumns + ` FROM refunds WHERE stripe_refund_id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	return scanRefund(db.QueryRow(ctx, sql, id))
}

// UpdateRefund writes the mutable state of r.
func (s *Store) UpdateRefund(ctx context.Context, db pgdb.Querier, r domain.Refund) error {
	var stripeID *string
	if r.StripeRefundID != "" {
		stripeID = &r.StripeRefundID
	}
	var lastEvent *time.Time
	if !r.LastEventAt.IsZero() {
		lastEvent = &r.LastEventAt
	}
	_, err := db.Exec(ctx, `
		UPDATE refunds SET status = $2, stripe_refund_id = $3, failure_reason = $4, last_event_at = $5,
			succeeded_at = $6, updated_at = $7
		WHERE id = $1`, r.ID, r.Status, stripeID, r.FailureReason, lastEvent, r.SucceededAt, r.UpdatedAt)
	return err
}

// RefundedByPayment sums, per payment of a booking, what refunds took or
// may still take (every refund not failed or canceled).
func (s *Store) RefundedByPayment(ctx context.Context, db pgdb.Querier, bookingID string) (map[string]money.Money, error) {
	rows, err := db.Query(ctx, `SELECT payment_id::text, currency, sum(amount) FROM refunds
		WHERE booking_id = $1 AND status NOT IN ('failed', 'canceled') GROUP BY payment_id, currency`, bookingID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]money.Money{}
	for rows.Next() {
		var id string
		var currency money.Currency
		var sum int64
		if err := rows.Scan(&id, &currency, &sum); err != nil {
			return nil, err
		}
		out[id] = money.New(sum, currency)
	}
	return out, rows.Err()
}

// StaleRefunds lists refunds still creating that no consumer is sending:
// late payments' refunds (cause late:…), which only the sweeper sends, and
// any recorded before olderThan, whose call was never made or answered.
func (s *Store) StaleRefunds(ctx context.Context, db pgdb.Querier, olderThan time.Time, limit int) ([]domain.Refund, error) {
	rows, err := db.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE status = 'creating'
		AND (cause LIKE 'late:%' OR created_at < $1) ORDER BY created_at LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Refund, error) { return scanRefund(r) })
}
