package outbox

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	// BatchSize rows are locked and published per transaction.
	BatchSize int
	// PollInterval is the fallback when a NOTIFY is missed.
	PollInterval time.Duration
}

// NewRelay returns a relay for the outbox in schema.
func NewRelay(pool *pgxpool.Pool, publisher *bus.Publisher, schema string, log *slog.Logger) *Relay {
	return &Relay{pool: pool, publisher: publisher, schema: schema, log: log, BatchSize: 100, PollInterval: time.Second}
}

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
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake.C():
		}
		for ctx.Err() == nil {
			n, err := r.PublishBatch(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.log.WarnContext(ctx, "outbox relay: publish failed; will retry", "err", err)
				}
				break
			}
			if n < r.BatchSize {
				break
			}
		}
	}
}

type row struct {
	seq     int64
	env     bus.Envelope
	carrier map[string]string
}

// PublishBatch publishes up to BatchSize pending rows and marks them; it
// stops at the first failure so order is kept. It returns how many it marked.
func (r *Relay) PublishBatch(ctx context.Context) (int, error) {
	published := 0
	err := pgdb.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT seq, event_id, subject, event_type, payload, trace, created_at
			FROM outbox WHERE published_at IS NULL
			ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, r.BatchSize)
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
		var done []int64
		var pubErr error
		for _, x := range batch {
			pctx := telemetry.Extract(ctx, x.carrier)
			if pubErr = r.publisher.Publish(pctx, x.env); pubErr != nil {
				break
			}
			done = append(done, x.seq)
		}
		if len(done) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE seq = ANY($1)`, done); err != nil {
				return err
			}
		}
		published = len(done)
		if pubErr != nil && len(done) == 0 {
			return pubErr
		}
		return nil
	})
	return published, err
}
