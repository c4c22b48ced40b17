package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

// ClinicFunds is, for each booking of a clinic with money in the ledger
// before asOf, what the booking's accounts hold, and whether a dispute
// holds its settlement.
func (s *Store) ClinicFunds(ctx context.Context, db pgdb.Querier, clinicID string, asOf time.Time) ([]domain.BookingFunds, error) {
	rows, err := db.Query(ctx, `
		SELECT t.booking_id::text, e.currency,
		       COALESCE(-sum(e.amount) FILTER (WHERE e.account LIKE '%:deposit_received' OR e.account LIKE '%:balance_received'), 0),
		       COALESCE(sum(e.amount) FILTER (WHERE e.account LIKE '%:refunded'), 0),
		       COALESCE(sum(e.amount) FILTER (WHERE e.account LIKE '%:disputed'), 0),
		       COALESCE(sum(e.amount) FILTER (WHERE e.account LIKE '%:settled'), 0),
		       EXISTS (SELECT 1 FROM disputes d WHERE d.booking_id = t.booking_id AND d.status IN ('open', 'lost'))
		FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id AND e.account LIKE 'booking:%'
		WHERE t.clinic_id = $1 AND t.booking_id IS NOT NULL AND t.occurred_at < $2
		GROUP BY t.booking_id, e.currency ORDER BY t.booking_id`, clinicID, asOf)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.BookingFunds, error) {
		var f domain.BookingFunds
		var c money.Currency
		var received, refunded, disputed, settled int64
		err := r.Scan(&f.BookingID, &c, &received, &refunded, &disputed, &settled, &f.Held)
		f.Received, f.Refunded, f.Disputed, f.Settled = money.New(received, c), money.New(refunded, c), money.New(disputed, c), money.New(settled, c)
		return f, err
	})
}

// CommissionRate is a clinic's commission in basis points; ok is false
// when none was set.
func (s *Store) CommissionRate(ctx context.Context, db pgdb.Querier, clinicID string) (rate int, ok bool, err error) {
	err = db.QueryRow(ctx, `SELECT rate_bp FROM clinic_commissions WHERE clinic_id = $1`, clinicID).Scan(&rate)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return rate, err == nil, err
}

// SetCommissionRate sets a clinic's commission.
func (s *Store) SetCommissionRate(ctx context.Context, db pgdb.Querier, clinicID string, rateBP int, at time.Time, by string) error {
	_, err := db.Exec(ctx, `INSERT INTO clinic_commissions (clinic_id, rate_bp, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (clinic_id) DO UPDATE SET rate_bp = EXCLUDED.rate_bp, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
		clinicID, rateBP, at, by)
	return err
}

// Settlement is a closed statement.
type Settlement struct {
	ClinicID string
	Period   string
	RateBP   int
	ClosedAt time.Time
	ClosedBy string
}

// ClosedSettlement reads a closed statement, ErrNotFound when it is open.
func (s *Store) ClosedSettlement(ctx context.Context, db pgdb.Querier, clinicID, period string) (Settlement, error) {
	var st Settlement
	err := db.QueryRow(ctx, `SELECT clinic_id, period, rate_bp, closed_at, closed_by FROM settlements WHERE clinic_id = $1 AND period = $2`,
		clinicID, period).Scan(&st.ClinicID, &st.Period, &st.RateBP, &st.ClosedAt, &st.ClosedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, ErrNotFound
	}
	return st, err
}

// InsertSettlement records a closed statement; false when it already was.
func (s *Store) InsertSettlement(ctx context.Context, db pgdb.Querier, st Settlement) (bool, error) {
	tag, err := db.Exec(ctx, `INSERT INTO settlements (clinic_id, period, rate_bp, closed_at, closed_by) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, st.ClinicID, st.Period, st.RateBP, st.ClosedAt, st.ClosedBy)
	return tag.RowsAffected() == 1, err
}

// SettlementLines reads what a closed statement released, per booking.
func (s *Store) SettlementLines(ctx context.Context, db pgdb.Querier, clinicID, period string) (map[string][3]int64, error) {
	rows, err := db.Query(ctx, `
		SELECT t.booking_id::text,
		       COALESCE(sum(e.amount) FILTER (WHERE e.account LIKE 'booking:%:settled'), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE e.account LIKE 'platform:commission:%'), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE e.account LIKE 'clinic:%:owed'), 0)
		FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
		WHERE t.kind = 'settlement' AND t.clinic_id = $1 AND t.source LIKE 'settlement:' || $2 || ':%'
		GROUP BY t.booking_id`, clinicID, period)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][3]int64{}
	for rows.Next() {
		var id string
		var v [3]int64
		if err := rows.Scan(&id, &v[0], &v[1], &v[2]); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}
