package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"net/http"

	"github.com/saisei-health/platform/pkg/telemetry"
)

// Envelope is an event ready to publish: what the outbox stores.
type Envelope struct {
	ID         string
	Subject    string
	Type       string
	Data       []byte
	OccurredAt time.Time
}

// Publisher publishes envelopes to JetStream inside the caller's trace.
type Publisher struct {
	js     jetstream.JetStream
	tracer trace.Tracer
}

// NewPublisher returns a Publisher tracing with tp.
func NewPublisher(js jetstream.JetStream, tp trace.TracerProvider) *Publisher {
	return &Publisher{js: js, tracer: tp.Tracer("github.com/saisei-health/platform/pkg/bus")}
}

// NewMsg is e as a NATS message with the platform's headers: the event id,
// its type (what consumers dispatch on), when it occurred, and the trace
// context of ctx.
func NewMsg(ctx context.Context, e Envelope) *nats.Msg {
	msg := nats.NewMsg(e.Subject)
	msg.Data = e.Data
	msg.Header.Set(HeaderEventID, e.ID)
	msg.Header.Set(HeaderEventType, e.Type)
	msg.Header.Set(HeaderOccurredAt, e.OccurredAt.UTC().Format(time.RFC3339Nano))
	telemetry.Propagator.Inject(ctx, propagation.HeaderCarrier(http.Header(msg.Header)))
	return msg
}

// Publish sends e and waits for JetStream's acknowledgement. Nats-Msg-Id is
// the event id, so publishing the same event twice stores it once.
func (p *Publisher) Publish(ctx context.Context, e Envelope) error {
	ctx, span := p.tracer.Start(ctx, e.Subject+" publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", e.Subject),
			attribute.String("messaging.message.id", e.ID),
			attribute.String("saisei.event.type", e.Type),
		))
	defer span.End()
	ack, err := p.js.PublishMsg(ctx, NewMsg(ctx, e), jetstream.WithMsgID(e.ID))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return fmt.Errorf("bus: publish %s %s: %w", e.Subject, e.ID, err)
	}
	span.SetAttributes(attribute.Int64("messaging.nats.stream_sequence", int64(ack.Sequence)), attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
	return nil
}

// IsUnpublishable reports whether err means the message can never be
// published as it is: larger than the server accepts, or refused by the
// stream for its size. Anything else (no connection, no stream yet, a
// timeout) may pass on a retry.
func IsUnpublishable(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}
