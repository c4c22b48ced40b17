// Package outbox implements the transactional outbox: a service writes its
// events into its own database in the same transaction as the change they
// describe, and a relay publishes them to JetStream afterwards. A crash can
// delay an event but never lose it or publish one for a change that rolled
// back.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations creates the outbox table in the service's schema.
func Migrations() pgdb.Migrations {
	sub, _ := fs.Sub(migrations, "migrations")
	return pgdb.Migrations{Name: "outbox", FS: sub}
}

// NewID returns a fresh, time-ordered event id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Enqueue stores events in tx. The current trace context is stored with each
// so the relay publishes it inside the trace that caused it. An event whose
// id is already stored is skipped: re-running a decision is harmless.
func Enqueue(ctx context.Context, tx pgx.Tx, events ...bus.Event) error {
	trace, err := json.Marshal(telemetry.Inject(ctx))
	if err != nil {
		return err
	}
	for _, e := range events {
		if e.ID == "" {
			e.ID = NewID()
		}
		data, err := proto.Marshal(e.Message)
		if err != nil {
			return fmt.Errorf("outbox: marshal %s: %w", e.Subject, err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO outbox (event_id, subject, event_type, payload, trace, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (event_id) DO NOTHING`,
			e.ID, e.Subject, bus.TypeName(e.Message), data, trace, time.Now().UTC()); err != nil {
			return fmt.Errorf("outbox: enqueue %s: %w", e.Subject, err)
		}
	}
	return nil
}

// Pending counts events not yet published and not parked (for readiness
// and tests).
func Pending(ctx context.Context, db pgdb.Querier) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL`).Scan(&n)
	return n, err
}

// pruneBatch is how many rows one prune statement deletes, so a first
// prune of a large backlog does not hold one long transaction.
const pruneBatch = 10_000

// Prune deletes the rows published before cutoff and returns how many.
// Published rows serve no purpose past JetStream's duplicate window (an
// hour) but diagnosis; unpublished and parked rows are never deleted.
// Rows are found through the sequence, which grows with time: the first
// row created at or after cutoff bounds the search, so a prune with
// nothing to do reads one row.
func Prune(ctx context.Context, db pgdb.Querier, cutoff time.Time) (int64, error) {
	var bound int64
	err := db.QueryRow(ctx, `SELECT COALESCE((SELECT seq FROM outbox WHERE created_at >= $1 ORDER BY seq LIMIT 1),
		(SELECT max(seq) + 1 FROM outbox), 0)`, cutoff).Scan(&bound)
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM outbox WHERE seq IN (
			SELECT seq FROM outbox WHERE seq < $1 AND published_at IS NOT NULL AND published_at < $2
			ORDER BY seq LIMIT $3)`, bound, cutoff, pruneBatch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}
