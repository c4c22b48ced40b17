package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

type rig struct {
	pool  *pgxpool.Pool
	js    jetstream.JetStream
	relay *outbox.Relay
	tp    *sdktrace.TracerProvider
	spans *tracetest.InMemoryExporter
	log   *slog.Logger
	t     *testing.T
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	dsn := devtest.ServiceDSN(t, devtest.NewDatabase(t), "booking")
	pool, err := pgdb.Connect(ctx, dsn, "booking", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, "booking", outbox.Migrations(), inbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE effects (event_id text, amount bigint)`); err != nil {
		t.Fatal(err)
	}
	nc, js, err := bus.Connect(devtest.NATS(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewInMemoryExporter()
	tp, _ := telemetry.NewProvider(ctx, "test", telemetry.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(spans)))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	relay := outbox.NewRelay(pool, bus.NewPublisher(js, tp), "booking", log)
	relay.PollInterval = 50 * time.Millisecond
	return &rig{pool: pool, js: js, relay: relay, tp: tp, spans: spans, log: log, t: t}
}

func (r *rig) enqueue(t *testing.T, ctx context.Context, e bus.Event, commit bool) {
	t.Helper()
	errRollback := errors.New("rollback")
	err := pgdb.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, e); err != nil {
			return err
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if commit && err != nil {
		t.Fatal(err)
	}
}

// Consume makes the rig a bus.Subscriber whose consumers start at once.
func (r *rig) Consume(ctx context.Context, spec bus.ConsumerSpec, h bus.Handler) error {
	c, err := bus.NewConsumer(ctx, r.js, spec, h, r.tp, r.log)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	r.t.Cleanup(c.Stop)
	return nil
}

// consume runs h on a durable consumer through the inbox; each handled
// amount is recorded, so duplicates would show up as extra rows.
func (r *rig) consume(t *testing.T, spec bus.ConsumerSpec, h func(context.Context, pgx.Tx, *commonv1.Money) error) {
	t.Helper()
	if err := inbox.Subscribe(context.Background(), r, r.pool, spec, inbox.On(h)); err != nil {
		t.Fatal(err)
	}
}

func recordEffect(ctx context.Context, tx pgx.Tx, money *commonv1.Money) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ($1, $2)`, bus.MessageOf(ctx).ID, money.Amount)
	return err
}

func (r *rig) effects(t *testing.T) map[string]int {
	t.Helper()
	rows, _ := r.pool.Query(context.Background(), `SELECT event_id FROM effects`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, id := range ids {
		out[id]++
	}
	return out
}

func TestCommittedEventsArriveOnceInTheirTraceAndRolledBackOnesNever(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.relay.Run(ctx)
	r.consume(t, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "t-once", Subjects: []string{"booking.v1.>"}}, recordEffect)

	tctx, span := r.tp.Tracer("t").Start(ctx, "create booking")
	r.enqueue(t, tctx, bus.Event{ID: "rolled-back", Subject: "booking.v1.c1.created", Message: &commonv1.Money{Amount: 1}}, false)
	r.enqueue(t, tctx, bus.Event{ID: "committed", Subject: "booking.v1.c1.created", Message: &commonv1.Money{Amount: 1_900_000, Currency: "JPY"}}, true)
	span.End()

	devtest.Eventually(t, "the committed event", func() bool { return r.effects(t)["committed"] == 1 })

	// A relay that crashed after publishing but before marking re-publishes:
	// JetStream drops the duplicate and the inbox would catch what slipped by.
	if _, err := r.pool.Exec(ctx, `UPDATE outbox SET published_at = NULL`); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the re-publish", func() bool { n, _ := outbox.Pending(ctx, r.pool); return n == 0 })
	time.Sleep(200 * time.Millisecond)
	if got := r.effects(t); got["committed"] != 1 || got["rolled-back"] != 0 || len(got) != 1 {
		t.Fatalf("effects = %v, want committed exactly once", got)
	}

	traceID := span.SpanContext().TraceID()
	var sawPublish, sawProcess bool
	for _, s := range r.spans.GetSpans() {
		switch s.Name {
		case "booking.v1.c1.created publish":
			sawPublish = sawPublish || s.SpanContext.TraceID() == traceID
		case "booking.v1.c1.created process":
			sawProcess = sawProcess || s.SpanContext.TraceID() == traceID
		}
	}
	if !sawPublish || !sawProcess {
		t.Fatalf("publish in trace: %v, process in trace: %v; want both in the enqueuing trace", sawPublish, sawProcess)
	}
}

func TestRedeliveryAfterTransientFailureAppliesOnce(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.relay.Run(ctx)
	var attempts atomic.Int32
	r.consume(t, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "t-retry", Subjects: []string{"booking.v1.>"},
		Backoff: []time.Duration{50 * time.Millisecond}},
		func(ctx context.Context, tx pgx.Tx, m *commonv1.Money) error {
			if err := recordEffect(ctx, tx, m); err != nil {
				return err
			}
			if attempts.Add(1) == 1 {
				return errors.New("database hiccup") // rolls back the effect and the inbox row
			}
			return nil
		})
	r.enqueue(t, ctx, bus.Event{ID: "e1", Subject: "booking.v1.c1.confirmed", Message: &commonv1.Money{Amount: 5}}, true)
	devtest.Eventually(t, "the retried event", func() bool { return r.effects(t)["e1"] == 1 })
	if attempts.Load() != 2 {
		t.Fatalf("attempts = %d, want 2", attempts.Load())
	}
}

func TestPoisonAndExhaustedMessagesAreDeadLetteredAndReplayable(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.relay.Run(ctx)

	var mu sync.Mutex
	healthy := false
	r.consume(t, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: "t-dlq", Subjects: []string{"payment.v1.>"},
		MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}},
		func(ctx context.Context, tx pgx.Tx, m *commonv1.Money) error {
			mu.Lock()
			ok := healthy
			mu.Unlock()
			if bus.MessageOf(ctx).Subject == "payment.v1.c1.poison" {
				return bus.Permanent(errors.New("cannot ever handle this"))
			}
			if !ok {
				return errors.New("downstream unavailable")
			}
			return recordEffect(ctx, tx, m)
		})
	r.enqueue(t, ctx, bus.Event{ID: "poison", Subject: "payment.v1.c1.poison", Message: &commonv1.Money{Amount: 1}}, true)
	r.enqueue(t, ctx, bus.Event{ID: "exhausted", Subject: "payment.v1.c1.deposit.succeeded", Message: &commonv1.Money{Amount: 2}}, true)

	var dls []bus.DeadLetter
	devtest.Eventually(t, "two dead letters", func() bool {
		var err error
		dls, err = bus.DeadLetters(ctx, r.js)
		return err == nil && len(dls) == 2
	})
	reasons := map[string]bus.DeadLetter{}
	for _, d := range dls {
		reasons[d.EventID] = d
	}
	if d := reasons["poison"]; d.Reason != "terminated" || d.Consumer != "t-dlq" || d.Subject != "payment.v1.c1.poison" {
		t.Fatalf("poison dead letter = %+v", d)
	}
	if d := reasons["exhausted"]; d.Reason != "max_deliveries" || d.Deliveries != 2 || d.Type != "saisei.common.v1.Money" {
		t.Fatalf("exhausted dead letter = %+v", d)
	}

	mu.Lock()
	healthy = true
	mu.Unlock()
	if err := bus.Replay(ctx, r.js, reasons["exhausted"]); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the replayed event", func() bool { return r.effects(t)["exhausted"] == 1 })
	left, _ := bus.DeadLetters(ctx, r.js)
	if len(left) != 1 || left[0].EventID != "poison" {
		t.Fatalf("after replay the dead letters are %+v, want only the poison one", left)
	}
}

// A dependency down for longer than the old fixed budget (six attempts,
// about two minutes) sends nothing to the dead letters: transient failures
// are retried, with capped backoff, for RetryFor (a day by default; a
// second here), and the effect is applied once when the dependency is back.
func TestATransientOutageIsRetriedForRetryForAndAppliedOnce(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.relay.Run(ctx)
	var attempts atomic.Int32
	r.consume(t, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "t-outage", Subjects: []string{"booking.v1.>"},
		RetryFor: 10 * time.Second, Backoff: []time.Duration{10 * time.Millisecond}},
		func(ctx context.Context, tx pgx.Tx, m *commonv1.Money) error {
			if attempts.Add(1) <= 25 {
				return errors.New("postgres: the database system is starting up")
			}
			return recordEffect(ctx, tx, m)
		})
	r.enqueue(t, ctx, bus.Event{ID: "outage", Subject: "booking.v1.c1.confirmed", Message: &commonv1.Money{Amount: 7}}, true)
	devtest.Eventually(t, "the event after the outage", func() bool { return r.effects(t)["outage"] == 1 })
	if dls, err := bus.DeadLetters(ctx, r.js); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters after a transient outage: %+v %v", dls, err)
	}
	if n := attempts.Load(); n != 26 {
		t.Fatalf("%d attempts, want 26", n)
	}
}

// A failure that outlasts RetryFor is dead-lettered, saying so, for a
// person to replay.
func TestAFailureOutlastingRetryForIsDeadLettered(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.relay.Run(ctx)
	r.consume(t, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: "t-outlasted", Subjects: []string{"payment.v1.>"},
		RetryFor: 300 * time.Millisecond, Backoff: []time.Duration{20 * time.Millisecond}},
		func(context.Context, pgx.Tx, *commonv1.Money) error { return errors.New("stripe: 503") })
	r.enqueue(t, ctx, bus.Event{ID: "outlasted", Subject: "payment.v1.c1.balance.failed", Message: &commonv1.Money{Amount: 1}}, true)
	var dls []bus.DeadLetter
	devtest.Eventually(t, "the dead letter", func() bool {
		var err error
		dls, err = bus.DeadLetters(ctx, r.js)
		return err == nil && len(dls) == 1
	})
	if dls[0].EventID != "outlasted" || dls[0].Reason != "terminated" || dls[0].Consumer != "t-outlasted" {
		t.Fatalf("dead letter %+v", dls[0])
	}
}

// A handler slower than AckWait (a Stripe call taking its time) tells
// JetStream it is still working: the message is not handed to another
// attempt meanwhile, so the effect runs once.
func TestASlowHandlerIsNotRedeliveredWhileItWorks(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.relay.Run(ctx)
	var deliveries atomic.Int32
	spec := bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "t-slow", Subjects: []string{"booking.v1.>"}, AckWait: 300 * time.Millisecond}
	if err := r.Consume(ctx, spec, func(ctx context.Context, m bus.Message) error {
		deliveries.Add(1)       // every delivery, first or not
		time.Sleep(time.Second) // three AckWaits of work
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.enqueue(t, ctx, bus.Event{ID: "slow", Subject: "booking.v1.c1.cells_ready", Message: &commonv1.Money{Amount: 1}}, true)
	cons, err := r.js.Consumer(ctx, bus.StreamBooking, "t-slow")
	if err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the slow event acknowledged", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= 1 && ci.NumAckPending == 0
	})
	ci, _ := cons.Info(ctx)
	if n := deliveries.Load(); n != 1 || ci.NumRedelivered != 0 {
		t.Fatalf("delivered %d times (%d redelivered), want once", n, ci.NumRedelivered)
	}
}

// Events that wait together are handled in one transaction (one commit for
// a burst, one statement claiming their inbox rows); one that fails makes
// the others go one by one, so each good event is applied once and the bad
// one alone is dead-lettered.
func TestEventsWaitingTogetherShareATransactionAndOneBadEventHoldsNoneBack(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	attempts := map[string]int{}
	r.consume(t, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "t-batch", Subjects: []string{"booking.v1.>"},
		Backoff: []time.Duration{20 * time.Millisecond}},
		func(ctx context.Context, tx pgx.Tx, m *commonv1.Money) error {
			id := bus.MessageOf(ctx).ID
			mu.Lock()
			attempts[id]++
			mu.Unlock()
			if id == "bad" {
				return bus.Permanent(errors.New("a fact that contradicts the state"))
			}
			return recordEffect(ctx, tx, m)
		})

	// Forty events committed while the relay is stopped reach the consumer
	// as a burst.
	for i := range 40 {
		r.enqueue(t, ctx, bus.Event{ID: fmt.Sprintf("burst-%02d", i), Subject: "booking.v1.c1.confirmed", Message: &commonv1.Money{Amount: int64(i)}}, true)
	}
	go r.relay.Run(ctx)
	devtest.Eventually(t, "the burst", func() bool { return len(r.effects(t)) == 40 })
	// An inbox row's processed_at is its transaction's start: rows that
	// share one were claimed together.
	var transactions int
	if err := r.pool.QueryRow(ctx, `SELECT count(DISTINCT processed_at) FROM inbox WHERE consumer = 't-batch'`).Scan(&transactions); err != nil {
		t.Fatal(err)
	}
	t.Logf("40 events in %d transactions", transactions) // 3 when the machine is quiet
	if transactions >= 40 {
		t.Fatalf("40 waiting events took %d transactions, want some of them to share one", transactions)
	}

	// Ten more, published together, the fifth of which can never be applied.
	err := pgdb.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		for i := range 10 {
			id := fmt.Sprintf("after-%d", i)
			if i == 4 {
				id = "bad"
			}
			if err := outbox.Enqueue(ctx, tx, bus.Event{ID: id, Subject: "booking.v1.c1.confirmed", Message: &commonv1.Money{Amount: int64(i)}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the good ones and the dead letter", func() bool {
		dls, err := bus.DeadLetters(ctx, r.js)
		return err == nil && len(dls) == 1 && len(r.effects(t)) == 49
	})
	time.Sleep(100 * time.Millisecond)
	for id, n := range r.effects(t) {
		if n != 1 || id == "bad" {
			t.Fatalf("effect %s applied %d times", id, n)
		}
	}
	if dls, _ := bus.DeadLetters(ctx, r.js); dls[0].EventID != "bad" || dls[0].Reason != "terminated" {
		t.Fatalf("dead letter %+v, want the bad event", dls[0])
	}
	var bad int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM inbox WHERE consumer = 't-batch' AND event_id = 'bad'`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("the bad event's inbox row: %d, %v; want none (rolled back with it)", bad, err)
	}
}
