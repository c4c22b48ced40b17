package outbox_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/subject"
)

// An event too large for NATS (a patient name of a million characters made
// it into a booking once) is parked with its reason, and every event after
// it is still published: one bad row never stalls the pipeline.
func TestAnUnpublishableEventIsParkedAndTheRestGoOn(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(metricnoop.NewMeterProvider()) })

	pool := outboxDB(t)
	nc, js, err := bus.Connect(devtest.NATS(t), "relay-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	relay := outbox.NewRelay(pool, bus.NewPublisher(js, noop.NewTracerProvider()), "booking", slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go relay.Run(runCtx)

	huge := &bookingv1.BookingCreated{Booking: &bookingv1.Booking{Id: "b-huge", Patient: &commonv1.Patient{Name: strings.Repeat("A", 1_100_000)}}}
	events := []bus.Event{
		{ID: "before", Subject: subject.Booking("c1", subject.Created), Message: &bookingv1.BookingCreated{Booking: &bookingv1.Booking{Id: "b1"}}},
		{ID: "huge", Subject: subject.Booking("c1", subject.Created), Message: huge},
		{ID: "after", Subject: subject.Booking("c1", subject.Created), Message: &bookingv1.BookingCreated{Booking: &bookingv1.Booking{Id: "b2"}}},
	}
	for _, e := range events {
		if err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Enqueue(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
	}

	devtest.OutboxDrained(t, pool, "booking")
	stream, err := js.Stream(ctx, bus.StreamBooking)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := uint64(1); ; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		ids = append(ids, m.Header.Get(bus.HeaderEventID))
	}
	if strings.Join(ids, ",") != "before,after" {
		t.Fatalf("published %v, want before and after, in order, without the huge one", ids)
	}
	var reason string
	if err := pool.QueryRow(ctx, `SELECT park_reason FROM outbox WHERE event_id = 'huge' AND parked_at IS NOT NULL AND published_at IS NULL`).Scan(&reason); err != nil {
		t.Fatalf("the huge event is not parked: %v", err)
	}
	if !strings.Contains(reason, "maximum payload") {
		t.Fatalf("park reason %q does not say why", reason)
	}
	b, err := relay.Backlog(ctx)
	if err != nil || b.Unpublished != 0 || b.Parked != 1 {
		t.Fatalf("backlog %+v, %v; want nothing waiting and one parked", b, err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				got[m.Name] = float64(d.DataPoints[0].Value)
			case metricdata.Gauge[int64]:
				got[m.Name] = float64(d.DataPoints[0].Value)
			case metricdata.Gauge[float64]:
				got[m.Name] = d.DataPoints[0].Value
			}
		}
	}
	if got["saisei.outbox.parked"] != 1 || got["saisei.outbox.unpublished"] != 0 || got["saisei.outbox.oldest_unpublished_age"] != 0 {
		t.Fatalf("metrics %v", got)
	}
}
