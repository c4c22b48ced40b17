package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

// InsertBalanceLine stores an imported balance transaction; false when it
// was imported before.
func (s *Store) InsertBalanceLine(ctx context.Context, db pgdb.Querier, l domain.BalanceLine) (bool, error) {
	tag, err := db.Exec(ctx, `INSERT INTO stripe_balance_transactions (id, type, reporting_category, source, amount, fee, net,
		currency, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
		l.ID, l.Type, l.Category, l.Source, l.Amount.Amount, l.Fee.Amount, l.Net.Amount, l.Amount.Currency, l.Created)
	return tag.RowsAffected() == 1, err
}

// ImportedUpTo is the creation time of the newest balance transaction
// imported; zero before the first import.
func (s *Store) ImportedUpTo(ctx context.Context, db pgdb.Querier) (time.Time, error) {
	var at time.Time
	err := db.QueryRow(ctx, `SELECT last_created FROM stripe_import_state WHERE what = 'balance_transactions'`).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return at, err
}

// SetImportedUpTo moves the import mark forward (never back).
func (s *Store) SetImportedUpTo(ctx context.Context, db pgdb.Querier, at time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO stripe_import_state (what, last_created) VALUES ('balance_transactions', $1)
		ON CONFLICT (what) DO UPDATE SET last_created = GREATEST(stripe_import_state.last_created, EXCLUDED.last_created)`, at)
	return err
}
