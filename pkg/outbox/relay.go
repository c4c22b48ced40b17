package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
)

// Relay publishes committed outbox rows to JetStream in commit order.
type Relay struct {
	pool      *pgxpool.Pool
	publisher *bus.Publisher
	schema    string
	log       *slog.Logger
	parked    metric.Int64Counter
	// BatchSize rows are locked and published per transaction.
	BatchSize int
	// PollInterval is the fallback when a NOTIFY is missed (every row's
	// insert NOTIFYs, and a relay that (re)connects its LISTEN looks at
	// once), so it can be long: an idle platform does no work.
	PollInterval time.Duration
	// StaleAfter is how old the oldest unpublished row may grow before the
	// relay warns in the log (checked every StaleAfter, while the relay
	// has reason to think something waits: at start, and after a batch
	// failed or parked a row, until a check finds nothing stale).
	StaleAfter time.Duration
	// parkedOne is set when a batch parks a row, for the next check.
	parkedOne atomic.Bool
}

// NewRelay returns a relay for the outbox in schema. It reports, through
// the global OpenTelemetry MeterProvider, the rows it parked
// (saisei.outbox.parked), and the count and age of the rows still waiting
// (saisei.outbox.unpublished, saisei.outbox.oldest_unpublished_age).
func NewRelay(pool *pgxpool.Pool, publisher *bus.Publisher, schema string, log *slog.Logger) *Relay {
	r := &Relay{pool: pool, publisher: publisher, schema: schema, log: log, BatchSize: 100, PollInterval: 30 * time.Second,
		StaleAfter: 30 * time.Second}
	meter := otel.Meter("github.com/saisei-health/platform/pkg/outbox")
	attrs := metric.WithAttributes(attribute.String("schema", schema))
	r.parked, _ = meter.Int64Counter("saisei.outbox.parked", metric.WithUnit("{event}"),
		metric.WithDescription("events that could never be published and were set aside"))
	waiting, _ := meter.Int64ObservableGauge("saisei.outbox.unpublished", metric.WithUnit("{event}"),
		metric.WithDescription("events committed and not yet published"))
	age, _ := meter.Float64ObservableGauge("saisei.outbox.oldest_unpublished_age", metric.WithUnit("s"),
		metric.WithDescription("age of the oldest event committed and not yet published"))
	_, _ = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		b, err := r.Backlog(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(waiting, int64(b.Unpublished), attrs)
		o.ObserveFloat64(age, b.OldestAge.Seconds(), attrs)
		return nil
	}, waiting, age)
	return r
}

// Backlog is what waits in an outbox.
type Backlog struct {
	Unpublished int
	// OldestAge is how long the oldest unpublished row has waited (0 when
	// none waits).
	OldestAge time.Duration
	Parked    int
}

// Backlog reads the outbox's backlog.
func (r *Relay) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldest *time.Time
	err := r.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE parked_at IS NULL), min(created_at) FILTER (WHERE parked_at IS NULL),
			count(*) FILTER (WHERE parked_at IS NOT NULL)
		FROM outbox WHERE published_at IS NULL`).Scan(&b.Unpublished, &oldest, &b.Parked)
	if oldest != nil {
		b.OldestAge = max(time.Since(*oldest), 0)
	}
	return b, err
}

// retryAfterFailure is how soon a relay whose batch failed tries again.
const retryAfterFailure = 500 * time.Millisecond

// Run publishes until ctx is done. It wakes on the outbox trigger's NOTIFY
// and polls as a fallback. Rows are claimed with FOR UPDATE SKIP LOCKED, so
// several replicas can relay the same outbox without publishing a row twice
// at the same time; if a relay dies after publishing but before marking a
// row, the row is published again and JetStream drops it as a duplicate
// (Nats-Msg-Id = event id) or, past the duplicate window, the consumers'
// inboxes do.
func (r *Relay) Run(ctx context.Context) {
	wake := pgdb.NewWakeup(r.pool, r.schema+"_outbox", r.PollInterval, r.log)
	go wake.Run(ctx)
	stale := time.NewTicker(r.StaleAfter)
	defer stale.Stop()
	troubled := true // rows may wait from before this start
	for {
		select {
		case <-ctx.Done():
			return
		case <-stale.C:
			if troubled || r.parkedOne.Swap(false) {
				troubled = r.warnIfStale(ctx)
			}
			continue
		case <-wake.C():
		}
		for ctx.Err() == nil {
			n, err := r.PublishBatch(ctx)
			if err != nil {
				troubled = true
				if ctx.Err() == nil {
					r.log.WarnContext(ctx, "outbox relay: publish failed; will retry", "err", err)
				}
				// NATS or Postgres is down: try again soon, not at the
				// next fallback poll.
				wake.At(time.Now().Add(retryAfterFailure))
				break
			}
			if n < r.BatchSize {
				break
			}
		}
	}
}

// warnIfStale says in the log when events wait longer than StaleAfter, or
// when parked events wait for an operator; it reports whether anything
// still waits (so the relay keeps checking).
func (r *Relay) warnIfStale(ctx context.Context) bool {
	b, err := r.Backlog(ctx)
	if err != nil {
		return true
	}
	if b.OldestAge < r.StaleAfter && b.Parked == 0 {
		return b.Unpublished > 0
	}
	r.log.WarnContext(ctx, "outbox backlog", "unpublished", b.Unpublished, "oldest_age_s", int(b.OldestAge.Seconds()), "parked", b.Parked)
	return true
}

type row struct {
	seq     int64
	env     bus.Envelope
	carrier map[string]string
}

// PublishBatch publishes up to BatchSize pending rows and marks them; it
// stops at the first failure that a retry may cure, so order is kept. A row
// that can never be published as it is (bus.IsUnpublishable: too large,
// refused by the stream) is parked with its reason, logged and counted, and
// the rows after it go on: one bad event must not stop every later booking.
// It returns how many rows it marked published or parked.
//
// The rows are claimed and marked published by one statement, in a
// transaction that commits only after JetStream has acknowledged them:
// rows not published (a failure, and the rows after it) are unmarked in the
// same transaction, and if the relay dies first the transaction rolls back
// and nothing is marked. (A select, then an update, cost a statement more
// per batch.)
func (r *Relay) PublishBatch(ctx context.Context) (int, error) {
	published := 0
	err := pgdb.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE outbox SET published_at = now()
			WHERE seq IN (
				SELECT seq FROM outbox WHERE published_at IS NULL AND parked_at IS NULL
				ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
			RETURNING seq, event_id, subject, event_type, payload, trace, created_at`, r.BatchSize)
		if err != nil {
			return err
		}
		batch, err := pgx.CollectRows(rows, func(rs pgx.CollectableRow) (row, error) {
			var x row
			var trace []byte
			err := rs.Scan(&x.seq, &x.env.ID, &x.env.Subject, &x.env.Type, &x.env.Data, &trace, &x.env.OccurredAt)
			if err == nil {
				err = json.Unmarshal(trace, &x.carrier)
			}
			return x, err
		})
		if err != nil {
			return err
		}
		// RETURNING does not promise the subquery's order.
		slices.SortFunc(batch, func(a, b row) int { return cmp.Compare(a.seq, b.seq) })
		var notYet []int64
		var pubErr error
		parked := 0
		for i, x := range batch {
			pctx := telemetry.Extract(ctx, x.carrier)
			pubErr = r.publisher.Publish(pctx, x.env)
			if pubErr != nil && bus.IsUnpublishable(pubErr) {
				if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = NULL, parked_at = now(), park_reason = $2 WHERE seq = $1`,
					x.seq, truncate(pubErr.Error(), 500)); err != nil {
					return err
				}
				r.log.ErrorContext(pctx, "outbox: event parked, it can never be published as it is",
					"event_id", x.env.ID, "subject", x.env.Subject, "type", x.env.Type, "bytes", len(x.env.Data), "err", pubErr)
				r.parked.Add(ctx, 1, metric.WithAttributes(attribute.String("schema", r.schema)))
				parked++
				r.parkedOne.Store(true)
				pubErr = nil
				continue
			}
			if pubErr != nil {
				for _, y := range batch[i:] {
					notYet = append(notYet, y.seq)
				}
				break
			}
			published++
		}
		if len(notYet) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = NULL WHERE seq = ANY($1)`, notYet); err != nil {
				return err
			}
		}
		published += parked
		if pubErr != nil && published == 0 {
			return pubErr
		}
		return nil
	})
	if err != nil {
		published = 0
	}
	return published, err
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
