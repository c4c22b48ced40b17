package outbox_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

// BenchmarkRelay measures how fast committed outbox rows reach JetStream
// with its acknowledgement, fsync on every write as in production: one
// operation is a batch of 100 events; events/s is reported.
func BenchmarkRelay(b *testing.B) {
	ctx := context.Background()
	pool := outboxDB(b)
	ns, err := devstack.StartNATS(b.TempDir(), devstack.NATSOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Shutdown()
	nc, js, err := bus.Connect(ns.ClientURL(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		b.Fatal(err)
	}
	relay := outbox.NewRelay(pool, bus.NewPublisher(js, noop.NewTracerProvider()), "booking", slog.New(slog.NewTextHandler(io.Discard, nil)))
	const batch = 100
	events := make([]bus.Event, batch)
	for i := range events {
		events[i] = bus.Event{Subject: "booking.v1.bench.created", Message: &commonv1.Money{Amount: 1_900_000, Currency: "JPY"}}
	}
	for b.Loop() {
		b.StopTimer()
		if err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Enqueue(ctx, tx, events...) }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n, err := relay.PublishBatch(ctx); err != nil || n != batch {
			b.Fatalf("published %d: %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
