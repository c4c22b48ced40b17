// Package inbox makes event handling exactly-once in effect: a handler's
// database changes commit together with a record of the event id, and an
// event already recorded is acknowledged without running the handler again.
package inbox

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/pgdb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations creates the inbox table in the service's schema.
func Migrations() pgdb.Migrations {
	sub, _ := fs.Sub(migrations, "migrations")
	return pgdb.Migrations{Name: "inbox", FS: sub}
}

// Claim records that consumer handled eventID, in tx. It returns false when
// the event was already recorded (by an earlier delivery, or by a concurrent
// one that committed first: the insert waits for it on the primary key).
func Claim(ctx context.Context, tx pgx.Tx, consumer, eventID string) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, consumer, eventID)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// TxHandler handles one event inside the transaction that records it.
type TxHandler func(ctx context.Context, tx pgx.Tx, m bus.Message) error

// Once adapts h into a bus.Handler that runs at most once per event id for
// this consumer: the inbox row and h's writes commit or roll back together.
func Once(pool *pgxpool.Pool, consumer string, h TxHandler) bus.Handler {
	return func(ctx context.Context, m bus.Message) error {
		return pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
			fresh, err := Claim(ctx, tx, consumer, m.ID)
			if err != nil || !fresh {
				return err
			}
			return h(ctx, tx, m)
		})
	}
}
