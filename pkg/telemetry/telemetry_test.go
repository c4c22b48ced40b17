package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestContinueTraceParentsOnStoredContextAndLinksTheTrigger(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, err := NewProvider(context.Background(), "test", WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)))
	if err != nil {
		t.Fatal(err)
	}
	tracer := tp.Tracer("t")

	bookingCtx, booking := tracer.Start(context.Background(), "create booking")
	stored := Inject(bookingCtx)
	booking.End()

	webhookCtx, webhook := tracer.Start(context.Background(), "POST /v1/webhooks/stripe")
	_, cont := ContinueTrace(webhookCtx, tracer, stored, "payment_intent.succeeded")
	cont.End()
	webhook.End()

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	got := byName["payment_intent.succeeded"]
	if got.SpanContext.TraceID() != byName["create booking"].SpanContext.TraceID() {
		t.Fatalf("continued span is in trace %s, want the booking's %s", got.SpanContext.TraceID(), byName["create booking"].SpanContext.TraceID())
	}
	if got.Parent.SpanID() != byName["create booking"].SpanContext.SpanID() {
		t.Fatalf("parent = %s, want the stored span", got.Parent.SpanID())
	}
	if len(got.Links) != 1 || got.Links[0].SpanContext.SpanID() != byName["POST /v1/webhooks/stripe"].SpanContext.SpanID() {
		t.Fatalf("links = %+v, want the webhook request span", got.Links)
	}

	// Nothing stored: the span just continues the current context.
	_, plain := ContinueTrace(webhookCtx, tracer, nil, "plain")
	plain.End()
	if plainTrace := exp.GetSpans()[len(exp.GetSpans())-1].SpanContext.TraceID(); plainTrace != trace.SpanContextFromContext(webhookCtx).TraceID() {
		t.Fatalf("without a stored context the span left the current trace")
	}
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	tp, _ := NewProvider(context.Background(), "test")
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	var buf bytes.Buffer
	NewLogger("booking", &buf).InfoContext(ctx, "hello")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["trace_id"] != span.SpanContext().TraceID().String() || rec["service"] != "booking" {
		t.Fatalf("record = %v", rec)
	}
}

func TestWithNoExporterSpansAreNotRecordedButTraceIDsStillFlow(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	tp, err := NewProvider(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tp.Tracer("t").Start(context.Background(), "POST /v1/bookings")
	defer root.End()
	if root.IsRecording() || !root.SpanContext().IsValid() {
		t.Fatalf("root: recording %v, valid %v; want a valid span nobody records", root.IsRecording(), root.SpanContext().IsValid())
	}
	// Across a hop (the outbox row, a NATS header) the trace id goes on.
	_, child := tp.Tracer("t").Start(Extract(context.Background(), Inject(ctx)), "booking.v1 process")
	defer child.End()
	if child.IsRecording() || child.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("child: recording %v, trace %s, want %s", child.IsRecording(), child.SpanContext().TraceID(), root.SpanContext().TraceID())
	}

	// A sampler asked for is the SDK's to apply.
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	tp, err = NewProvider(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, s := tp.Tracer("t").Start(context.Background(), "x"); !s.IsRecording() {
		t.Fatal("OTEL_TRACES_SAMPLER=always_on did not record")
	}
}
