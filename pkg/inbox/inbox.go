// Package inbox makes event handling exactly-once in effect: a handler's
// database changes commit together with a record of the event id, and an
// event already recorded is acknowledged without running the handler again.
package inbox

import (
	"context"
	"embed"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

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

// Seen reports whether consumer already handled eventID. A handler with an
// external effect (a card charge) checks it before acting, and claims the
// event with Claim in the transaction that records the effect's result.
func Seen(ctx context.Context, db pgdb.Querier, consumer, eventID string) (bool, error) {
	var seen bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2)`, consumer, eventID).Scan(&seen)
	return seen, err
}

// Route is one event type a consumer handles inside the inbox transaction.
type Route struct {
	typ    string
	handle func(ctx context.Context, tx pgx.Tx, m bus.Message) error
}

// On declares the handler of events of type E: it gets the decoded event
// and the transaction its writes commit in, with the inbox row.
func On[T any, E interface {
	*T
	proto.Message
}](h func(ctx context.Context, tx pgx.Tx, e E) error) Route {
	return Route{typ: bus.TypeName(E(new(T))), handle: func(ctx context.Context, tx pgx.Tx, m bus.Message) error {
		e := E(new(T))
		if err := m.Decode(e); err != nil {
			return err
		}
		return h(ctx, tx, e)
	}}
}

// Subscribe registers one durable consumer whose routes each run at most
// once per event: the inbox row (named after spec.Durable) and the route's
// writes commit or roll back together. Events of types no route names are
// acknowledged without a transaction.
//
// Events that wait together (a queue under load) share one transaction:
// their inbox rows are claimed by one statement and their routes run in
// order, so a burst costs one commit instead of one per event. If any of
// them fails, the transaction rolls back and each is handled again in a
// transaction of its own, so one bad event never holds back the others.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, spec bus.ConsumerSpec, routes ...Route) error {
	byType := make(map[string]Route, len(routes))
	once := make([]bus.Route, len(routes))
	for i, r := range routes {
		byType[r.typ] = r
		once[i] = bus.NewRoute(r.typ, func(ctx context.Context, m bus.Message) error {
			return pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
				fresh, err := Claim(ctx, tx, spec.Durable, m.ID)
				if err != nil || !fresh {
					return err
				}
				return r.handle(ctx, tx, m)
			})
		})
	}
	alone := bus.Dispatch(once...)
	spec.Batch = func(ctx context.Context, msgs []bus.Message, each func(context.Context, bus.Message, bus.Handler) error) []error {
		errs := make([]error, len(msgs))
		var routed []int
		for i, m := range msgs {
			if _, ok := byType[m.Type]; ok {
				routed = append(routed, i)
			} else {
				errs[i] = each(ctx, m, alone) // acknowledged untouched, or dead-lettered without a type
			}
		}
		if len(routed) == 0 {
			return errs
		}
		ids := make([]string, len(routed))
		for j, i := range routed {
			ids[j] = msgs[i].ID
		}
		err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
			fresh, err := claimAll(ctx, tx, spec.Durable, ids)
			if err != nil {
				return err
			}
			for _, i := range routed {
				m := msgs[i]
				if !fresh[m.ID] {
					continue // handled before, or twice in this batch
				}
				delete(fresh, m.ID)
				r := byType[m.Type]
				if err := each(ctx, m, func(ctx context.Context, m bus.Message) error { return r.handle(ctx, tx, m) }); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			for _, i := range routed {
				errs[i] = each(ctx, msgs[i], alone)
			}
		}
		return errs
	}
	return sub.Consume(ctx, spec, alone)
}

// claimAll records that consumer handled each of ids, in tx, and returns
// the ids it recorded now (those not recorded before).
func claimAll(ctx context.Context, tx pgx.Tx, consumer string, ids []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `
		INSERT INTO inbox (consumer, event_id) SELECT $1, id FROM unnest($2::text[]) AS id
		ON CONFLICT DO NOTHING RETURNING event_id`, consumer, ids)
	if err != nil {
		return nil, err
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	fresh := make(map[string]bool, len(claimed))
	for _, id := range claimed {
		fresh[id] = true
	}
	return fresh, nil
}

// pruneBatch is how many rows one prune statement deletes.
const pruneBatch = 10_000

// Prune deletes the records of events handled before cutoff and returns
// how many. A record must outlive every way its event can arrive again:
// redelivery (bounded by a consumer's RetryFor, a day) and a dead letter's
// replay, possible while the stream keeps the message (90 days). The
// search reads the whole table, so it runs rarely (servicehost: daily).
func Prune(ctx context.Context, db pgdb.Querier, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := db.Exec(ctx, `DELETE FROM inbox WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM inbox WHERE processed_at < $1 LIMIT $2))`, cutoff, pruneBatch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}
