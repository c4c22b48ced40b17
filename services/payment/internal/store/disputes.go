package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

const disputeColumns = `id, booking_id, clinic_id, payment_id, charge_id, amount, currency, status, reason, fee, opened_at, closed_at, last_event_at`

func scanDispute(row pgx.Row) (domain.Dispute, error) {
	var d domain.Dispute
	var amount, fee int64
	var currency money.Currency
	err := row.Scan(&d.ID, &d.BookingID, &d.ClinicID, &d.PaymentID, &d.ChargeID, &amount, &currency, &d.Status, &d.Reason, &fee,
		&d.OpenedAt, &d.ClosedAt, &d.LastEventAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	d.Amount, d.Fee = money.New(amount, currency), money.New(fee, currency)
	return d, err
}

// InsertDispute records a dispute unless it is known; it returns the stored one, locked.
func (s *Store) InsertDispute(ctx context.Context, db pgdb.Querier, d domain.Dispute) (domain.Dispute, error) {
	_, err := db.Exec(ctx, `INSERT INTO disputes (id, booking_id, clinic_id, payment_id, charge_id, amount, currency, status, reason,
		opened_at, last_event_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (id) DO NOTHING`,
		d.ID, d.BookingID, d.ClinicID, d.PaymentID, d.ChargeID, d.Amount.Amount, d.Amount.Currency, d.Status, d.Reason, d.OpenedAt)
	if err != nil {
		return d, err
	}
	return scanDispute(db.QueryRow(ctx, `SELECT `+disputeColumns+` FROM disputes WHERE id = $1 FOR UPDATE`, d.ID))
}

// UpdateDispute writes the mutable state of d.
func (s *Store) UpdateDispute(ctx context.Context, db pgdb.Querier, d domain.Dispute) error {
	_, err := db.Exec(ctx, `UPDATE disputes SET status = $2, reason = $3, fee = $4, closed_at = $5, last_event_at = $6 WHERE id = $1`,
		d.ID, d.Status, d.Reason, d.Fee.Amount, d.ClosedAt, d.LastEventAt)
	return err
}

// DisputesOf lists a booking's disputes, oldest first.
func (s *Store) DisputesOf(ctx context.Context, db pgdb.Querier, bookingID string) ([]domain.Dispute, error) {
	rows, err := db.Query(ctx, `SELECT `+disputeColumns+` FROM disputes WHERE booking_id = $1 ORDER BY opened_at, id`, bookingID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Dispute, error) { return scanDispute(r) })
}

// Disputes lists disputes in a status ("" for all), newest first, at most limit.
func (s *Store) Disputes(ctx context.Context, db pgdb.Querier, status domain.DisputeStatus, limit int) ([]domain.Dispute, error) {
	rows, err := db.Query(ctx, `SELECT `+disputeColumns+` FROM disputes WHERE ($1 = '' OR status = $1) ORDER BY opened_at DESC, id
		LIMIT $2`, string(status), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Dispute, error) { return scanDispute(r) })
}

// PaymentByCharge finds the payment whose charge is chargeID.
func (s *Store) PaymentByCharge(ctx context.Context, db pgdb.Querier, chargeID string) (domain.Payment, error) {
	return scanPayment(db.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments WHERE charge_id = $1 AND charge_id <> ''`, chargeID))
}
