package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
)

// ImportOverlap is how far before the newest imported balance transaction
// the next import starts again: Stripe may list one created a moment
// earlier after it. Re-reading is free (each id is stored once).
const ImportOverlap = time.Hour

// importBatch is how many balance transactions one database transaction stores.
const importBatch = 500

// ImportBalance imports Stripe's balance transactions created since the
// last import (less ImportOverlap), each once, and posts what they add to
// the ledger: Stripe's fee on each charge, each payout to the bank. It
// reports how many were new.
func (s *Payments) ImportBalance(ctx context.Context) (int, error) {
	since, err := s.store.ImportedUpTo(ctx, s.pool)
	if err != nil {
		return 0, err
	}
	if !since.IsZero() {
		since = since.Add(-ImportOverlap)
	}
	var lines []domain.BalanceLine
	if err := s.stripe.BalanceLines(ctx, since, func(l domain.BalanceLine) error {
		lines = append(lines, l)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("%w: balance transactions: %v", ErrStripe, err)
	}
	slices.Reverse(lines) // oldest first
	n := 0
	for start := 0; start < len(lines); start += importBatch {
		batch := lines[start:min(start+importBatch, len(lines))]
		err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			newest := time.Time{}
			for _, l := range batch {
				fresh, err := s.store.InsertBalanceLine(ctx, tx, l)
				if err != nil {
					return err
				}
				if l.Created.After(newest) {
					newest = l.Created
				}
				if !fresh {
					continue
				}
				n++
				if t := domain.BookBalanceLine(l); t != nil {
					if _, err := s.store.PostLedger(ctx, tx, *t); err != nil {
						return fmt.Errorf("balance transaction %s: %w", l.ID, err)
					}
				}
			}
			return s.store.SetImportedUpTo(ctx, tx, newest)
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// KeepImporting imports Stripe's balance every interval until ctx ends.
func (s *Payments) KeepImporting(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.ImportBalance(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "could not import Stripe's balance transactions", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "imported Stripe's balance transactions", "count", n)
		}
	}
}

// Reconciliation is what finance checks for a period: what moved per day
// and per booking, Stripe's own grouping by reporting category, and every
// place where the ledger and Stripe disagree.
type Reconciliation struct {
	From, To   time.Time
	Days       []store.DayMoney
	Bookings   []store.BookingMoney
	Categories []store.CategoryMoney
	Mismatches []store.Mismatch
}

// MaxReconciliationSpan bounds a report.
const MaxReconciliationSpan = 366 * 24 * time.Hour

// Reconcile builds the report for [from, to).
func (s *Payments) Reconcile(ctx context.Context, from, to time.Time) (Reconciliation, error) {
	var v validation.Validator
	v.Check(!from.IsZero(), "from", "is required")
	v.Check(!to.IsZero(), "to", "is required")
	v.Check(from.IsZero() || to.IsZero() || from.Before(to), "to", "must be after from")
	v.Check(to.Sub(from) <= MaxReconciliationSpan, "to", "must be at most a year after from")
	if err := v.Err(); err != nil {
		return Reconciliation{}, err
	}
	r := Reconciliation{From: from, To: to}
	var err error
	if r.Days, err = s.store.DaysMoney(ctx, s.pool, from, to); err != nil {
		return r, err
	}
	if r.Bookings, err = s.store.BookingsMoney(ctx, s.pool, from, to); err != nil {
		return r, err
	}
	if r.Categories, err = s.store.Categories(ctx, s.pool, from, to); err != nil {
		return r, err
	}
	r.Mismatches, err = s.store.Mismatches(ctx, s.pool, from, to)
	return r, err
}
