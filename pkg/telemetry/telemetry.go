// Package telemetry sets up OpenTelemetry tracing for a service and carries
// trace context across the places a booking's trace has to survive: HTTP,
// NATS headers, outbox rows, and the stored context a Stripe webhook or a
// clinic's later request continues.
package telemetry

import (
	"context"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the one propagator every hop uses: W3C traceparent/tracestate
// plus baggage. It is also installed as the global one for instrumentation
// libraries (otelhttp) that read the global.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{},
)

func init() { otel.SetTextMapPropagator(Propagator) }

// ProviderOption adjusts NewProvider.
type ProviderOption func(*providerConfig)

type providerConfig struct {
	processors []sdktrace.SpanProcessor
}

// WithSpanProcessor adds a processor, e.g. an in-memory exporter in tests.
func WithSpanProcessor(p sdktrace.SpanProcessor) ProviderOption {
	return func(c *providerConfig) { c.processors = append(c.processors, p) }
}

// NewProvider returns a TracerProvider whose spans carry service.name. When
// OTEL_EXPORTER_OTLP_ENDPOINT (or the traces-specific variable) is set, spans
// are batched to that OTLP/HTTP endpoint; the exporter reads the standard
// OTEL_EXPORTER_OTLP_* variables itself. The sampler is the SDK's, from
// OTEL_TRACES_SAMPLER and _ARG (default parentbased_always_on); with no
// exporter, no processor and no sampler asked for, no span is recorded.
func NewProvider(ctx context.Context, serviceName string, opts ...ProviderOption) (*sdktrace.TracerProvider, error) {
	cfg := providerConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(serviceName),
		attribute.String("service.namespace", "saisei"),
	))
	if err != nil {
		return nil, err
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	if exporting {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, err
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	for _, p := range cfg.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	if !exporting && len(cfg.processors) == 0 && os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		// Spans that no one receives are not recorded: the SDK would
		// otherwise build every span, attributes and all, for nothing
		// (a few per cent of each service's CPU under load). Trace ids
		// are still made and propagated, so logs keep their trace_id.
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	return sdktrace.NewTracerProvider(tpOpts...), nil
}

// Inject captures the trace context of ctx as a small string map, the form in
// which it is stored in outbox rows and payment records.
func Inject(ctx context.Context) map[string]string {
	carrier := propagation.MapCarrier{}
	Propagator.Inject(ctx, carrier)
	return carrier
}

// Extract returns ctx with the remote span context stored in carrier.
func Extract(ctx context.Context, carrier map[string]string) context.Context {
	if len(carrier) == 0 {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.MapCarrier(carrier))
}

// ContinueTrace starts a span that belongs to an earlier, stored trace (the
// booking's) rather than to the request that triggered it. A Stripe webhook
// or a clinic's report arrives in a fresh trace of its own; the work it causes
// belongs to the booking, so the new span's parent is the stored context and
// the triggering request is kept as a link. Without a stored context the span
// simply continues ctx.
func ContinueTrace(ctx context.Context, tracer trace.Tracer, stored map[string]string, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(Extract(context.Background(), stored))
	if !parent.IsValid() {
		return tracer.Start(ctx, name, opts...)
	}
	if current := trace.SpanContextFromContext(ctx); current.IsValid() && current.TraceID() != parent.TraceID() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: current}))
	}
	// Keep ctx's values and deadline, swap only the parent span.
	return tracer.Start(trace.ContextWithRemoteSpanContext(ctx, parent), name, opts...)
}

// NewMeterProvider returns the service's MeterProvider and installs it as
// the global one, which the platform's instruments (the outbox backlog)
// report through. When OTEL_EXPORTER_OTLP_ENDPOINT (or the metrics-specific
// variable) is set, metrics are pushed to that OTLP/HTTP endpoint every
// minute; otherwise they are kept in memory and go nowhere.
func NewMeterProvider(ctx context.Context, serviceName string) (*sdkmetric.MeterProvider, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(serviceName),
		attribute.String("service.namespace", "saisei"),
	))
	if err != nil {
		return nil, err
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	otel.SetMeterProvider(mp)
	return mp, nil
}
