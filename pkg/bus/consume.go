package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/telemetry"
)

// ConsumerSpec describes a durable pull consumer.
type ConsumerSpec struct {
	Stream string
	// Durable names the consumer; keep it stable, its position is stored.
	Durable  string
	Subjects []string
	// MaxDeliver, when set, bounds attempts before JetStream dead-letters
	// the message. By default attempts are bounded by RetryFor instead: a
	// dependency that is down for a while (Postgres restarting, Stripe
	// degraded) must not send good events to the dead letters.
	MaxDeliver int
	// RetryFor is how long a message that fails for a transient reason is
	// retried, counted from its first delivery, before it is dead-lettered
	// (default 24 h). A permanent failure is dead-lettered at once.
	RetryFor time.Duration
	// Backoff is the wait before each redelivery after a failed attempt;
	// the last entry repeats (default 1s, 5s, 15s, 30s, 1m, 5m: capped).
	Backoff []time.Duration
	// AckWait is how long JetStream waits for an acknowledgement or a
	// heartbeat before it assumes the consumer died and redelivers (default
	// 30s). A handler still working sends a heartbeat every AckWait/3, so a
	// slow Stripe call is not delivered twice at once.
	AckWait time.Duration
}

func (s *ConsumerSpec) defaults() {
	if s.MaxDeliver == 0 {
		s.MaxDeliver = -1 // unlimited: RetryFor decides
	}
	if s.RetryFor == 0 {
		s.RetryFor = 24 * time.Hour
	}
	if len(s.Backoff) == 0 {
		s.Backoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute}
	}
	if s.AckWait == 0 {
		s.AckWait = 30 * time.Second
	}
}

// Consumer runs a Handler over a durable consumer.
type Consumer struct {
	spec    ConsumerSpec
	handler Handler
	log     *slog.Logger
	cons    jetstream.Consumer
	cc      jetstream.ConsumeContext
}

// NewConsumer creates or updates the durable consumer and prepares handler
// with the standard middlewares: panic recovery, tracing (continuing the
// producer's trace) and logging, outermost first.
func NewConsumer(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, h Handler, tp trace.TracerProvider, log *slog.Logger) (*Consumer, error) {
	spec.defaults()
	cfg := jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		Description:    "saisei " + spec.Durable,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		MaxDeliver:     spec.MaxDeliver,
		MaxAckPending:  1000,
		FilterSubjects: spec.Subjects,
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	log = log.With("consumer", spec.Durable)
	handler := Chain(h, Tracing(tp, spec.Durable), Logging(log), Recover())
	return &Consumer{spec: spec, handler: handler, log: log, cons: cons}, nil
}

// Start begins consuming; Stop ends it.
func (c *Consumer) Start(ctx context.Context) error {
	// In-flight handlers finish on shutdown: Stop drains, it does not cancel.
	base := context.WithoutCancel(ctx)
	cc, err := c.cons.Consume(func(msg jetstream.Msg) { c.process(base, msg) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Debug("consume", "err", err)
		}))
	if err != nil {
		return err
	}
	c.cc = cc
	return nil
}

// Stop stops fetching and waits for the message in hand to finish.
func (c *Consumer) Stop() {
	if c.cc != nil {
		c.cc.Drain()
		<-c.cc.Closed()
	}
}

func (c *Consumer) process(ctx context.Context, raw jetstream.Msg) {
	m := Message{Subject: raw.Subject(), Data: raw.Data(), Header: raw.Headers(), Delivery: 1}
	if m.Header != nil {
		m.ID = m.Header.Get(HeaderEventID)
		m.Type = m.Header.Get(HeaderEventType)
		m.OccurredAt, _ = time.Parse(time.RFC3339Nano, m.Header.Get(HeaderOccurredAt))
	}
	var stored time.Time
	if md, err := raw.Metadata(); err == nil {
		m.Delivery, stored = md.NumDelivered, md.Timestamp
	}
	if m.ID == "" {
		_ = raw.TermWithReason("missing " + HeaderEventID)
		return
	}
	err := c.handle(ctx, raw, m)
	switch {
	case err == nil:
		// The effects are committed; wait a bounded time for the server to
		// confirm the ack (if it never does, redelivery meets the inbox).
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := raw.DoubleAck(actx); err != nil {
			c.log.Warn("ack failed; the message will be redelivered and deduplicated", "event_id", m.ID, "err", err)
		}
	case IsPermanent(err):
		_ = raw.TermWithReason(truncate(err.Error(), 200))
	case !stored.IsZero() && time.Since(stored) > c.spec.RetryFor:
		// A transient failure that outlasted every retry: a person looks.
		_ = raw.TermWithReason(truncate("retried for "+c.spec.RetryFor.String()+": "+err.Error(), 200))
	default:
		_ = raw.NakWithDelay(c.backoff(m.Delivery))
	}
}

// handle runs the handler, telling JetStream every AckWait/3 that the
// message is still being worked on, so a slow attempt is not redelivered to
// another replica while it runs.
func (c *Consumer) handle(ctx context.Context, raw jetstream.Msg, m Message) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(c.spec.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = raw.InProgress()
			}
		}
	}()
	return c.handler(WithMessage(ctx, m), m)
}

func (c *Consumer) backoff(delivery uint64) time.Duration {
	i := int(delivery) - 1
	if i >= len(c.spec.Backoff) {
		i = len(c.spec.Backoff) - 1
	}
	if i < 0 {
		i = 0
	}
	return c.spec.Backoff[i]
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Tracing continues the producer's trace from the message headers and
// records the handling as a consumer span.
func Tracing(tp trace.TracerProvider, consumer string) Middleware {
	tracer := tp.Tracer("github.com/saisei-health/platform/pkg/bus")
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			ctx = telemetry.Propagator.Extract(ctx, propagation.HeaderCarrier(http.Header(m.Header)))
			ctx, span := tracer.Start(ctx, m.Subject+" process", trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.destination.name", m.Subject),
					attribute.String("messaging.consumer.group.name", consumer),
					attribute.String("messaging.message.id", m.ID),
					attribute.Int64("messaging.nats.delivery", int64(m.Delivery)),
				))
			defer span.End()
			err := next(ctx, m)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}

// Logging logs failures; a failure on a late attempt is an error, earlier
// ones are warnings because redelivery usually fixes them.
func Logging(log *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) error {
			err := next(ctx, m)
			if err != nil {
				level := slog.LevelWarn
				if IsPermanent(err) || m.Delivery >= 3 {
					level = slog.LevelError
				}
				log.Log(ctx, level, "event handling failed", "subject", m.Subject, "event_id", m.ID,
					"delivery", m.Delivery, "permanent", IsPermanent(err), "err", err)
			}
			return err
		}
	}
}

// Recover turns a handler panic into a permanent failure: the message goes
// to the dead-letter stream instead of crashing the service in a loop.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m Message) (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = Permanent(fmt.Errorf("panic handling %s: %v\n%s", m.ID, p, debug.Stack()))
				}
			}()
			return next(ctx, m)
		}
	}
}

// Subscriber registers durable consumers; servicehost.Host is one. Services'
// transport packages take it to attach their handlers.
type Subscriber interface {
	Consume(ctx context.Context, spec ConsumerSpec, h Handler) error
}
