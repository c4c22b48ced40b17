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
	// Batch, when set, is handed the messages that wait together (up to
	// MaxBatch, in order) in one call, so their effects can share one
	// database transaction; a message that arrives alone still goes to
	// the Handler. inbox.Subscribe sets it.
	Batch BatchHandler
	// MaxBatch bounds a batch (default 32).
	MaxBatch int
}

// BatchHandler handles msgs together and returns one error per message
// (nil: handled), which decides each message's fate as a Handler's error
// does. each runs h for one message under the consumer's middlewares
// (recovery, the message's own trace, logging) with WithMessage, so every
// message keeps its span and its log line. ctx carries a span of the batch
// itself, linked to each message's.
type BatchHandler func(ctx context.Context, msgs []Message, each func(ctx context.Context, m Message, h Handler) error) []error

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
	if s.MaxBatch == 0 {
		s.MaxBatch = 32
	}
}

// Consumer runs a Handler over a durable consumer.
type Consumer struct {
	spec       ConsumerSpec
	handler    Handler
	middleware []Middleware
	tracer     trace.Tracer
	log        *slog.Logger
	cons       jetstream.Consumer
	cc         jetstream.ConsumeContext
	// queue and batched are the batch mode's hand-over from JetStream's
	// callback to the goroutine that gathers batches, and its end.
	queue   chan jetstream.Msg
	batched chan struct{}
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
	mws := []Middleware{Tracing(tp, spec.Durable), Logging(log), Recover()}
	return &Consumer{spec: spec, handler: Chain(h, mws...), middleware: mws, log: log, cons: cons,
		tracer: tp.Tracer("github.com/saisei-health/platform/pkg/bus")}, nil
}

// Start begins consuming; Stop ends it.
func (c *Consumer) Start(ctx context.Context) error {
	// In-flight handlers finish on shutdown: Stop drains, it does not cancel.
	base := context.WithoutCancel(ctx)
	deliver := func(msg jetstream.Msg) { c.process(base, msg) }
	if c.spec.Batch != nil {
		// JetStream's callback hands each message over (waiting while a
		// batch is full); one goroutine takes whatever waits, in order.
		c.queue, c.batched = make(chan jetstream.Msg, c.spec.MaxBatch), make(chan struct{})
		deliver = func(msg jetstream.Msg) { c.queue <- msg }
		go c.gather(base)
	}
	cc, err := c.cons.Consume(deliver,
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Debug("consume", "err", err)
		}))
	if err != nil {
		if c.queue != nil {
			close(c.queue)
			<-c.batched
		}
		return err
	}
	c.cc = cc
	return nil
}

// Stop stops fetching and waits for the messages in hand to finish.
func (c *Consumer) Stop() {
	if c.cc != nil {
		c.cc.Drain()
		<-c.cc.Closed()
		if c.queue != nil {
			close(c.queue)
			<-c.batched
		}
	}
}

// gather takes the messages that wait, up to MaxBatch, and handles them:
// one alone as process does, several together through spec.Batch.
func (c *Consumer) gather(ctx context.Context) {
	defer close(c.batched)
	for first := range c.queue {
		batch := []jetstream.Msg{first}
	more:
		for len(batch) < c.spec.MaxBatch {
			select {
			case raw, ok := <-c.queue:
				if !ok {
					break more
				}
				batch = append(batch, raw)
			default:
				break more
			}
		}
		if len(batch) == 1 {
			c.process(ctx, batch[0])
			continue
		}
		c.processBatch(ctx, batch)
	}
}

// message reads raw's headers and delivery metadata; ok is false (and the
// message dead-lettered) when it has no event id.
func message(raw jetstream.Msg) (m Message, stored time.Time, ok bool) {
	m = Message{Subject: raw.Subject(), Data: raw.Data(), Header: raw.Headers(), Delivery: 1}
	if m.Header != nil {
		m.ID = m.Header.Get(HeaderEventID)
		m.Type = m.Header.Get(HeaderEventType)
		m.OccurredAt, _ = time.Parse(time.RFC3339Nano, m.Header.Get(HeaderOccurredAt))
	}
	if md, err := raw.Metadata(); err == nil {
		m.Delivery, stored = md.NumDelivered, md.Timestamp
	}
	if m.ID == "" {
		_ = raw.TermWithReason("missing " + HeaderEventID)
		return m, stored, false
	}
	return m, stored, true
}

func (c *Consumer) process(ctx context.Context, raw jetstream.Msg) {
	m, stored, ok := message(raw)
	if !ok {
		return
	}
	stop := c.heartbeat(raw)
	err := c.handler(WithMessage(ctx, m), m)
	stop()
	if err == nil {
		// The effects are committed. The acknowledgement is not awaited:
		// one lost on the way means a redelivery, which the inbox (or the
		// handler's own inbox check) absorbs, and waiting for the server's
		// confirmation cost a round trip per message.
		if err := raw.Ack(); err != nil {
			c.log.Warn("ack failed; the message will be redelivered and deduplicated", "event_id", m.ID, "err", err)
		}
		return
	}
	c.settleFailure(raw, m, stored, err)
}

// processBatch hands several messages to spec.Batch at once and settles
// each by its own result.
func (c *Consumer) processBatch(ctx context.Context, batch []jetstream.Msg) {
	raws := make([]jetstream.Msg, 0, len(batch))
	msgs := make([]Message, 0, len(batch))
	stored := make([]time.Time, 0, len(batch))
	links := make([]trace.Link, 0, len(batch))
	for _, raw := range batch {
		m, at, ok := message(raw)
		if !ok {
			continue
		}
		raws, msgs, stored = append(raws, raw), append(msgs, m), append(stored, at)
		mctx := telemetry.Propagator.Extract(ctx, propagation.HeaderCarrier(http.Header(m.Header)))
		links = append(links, trace.Link{SpanContext: trace.SpanContextFromContext(mctx)})
	}
	if len(msgs) == 0 {
		return
	}
	stop := c.heartbeat(raws...)
	bctx, span := c.tracer.Start(ctx, c.spec.Durable+" process batch", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.consumer.group.name", c.spec.Durable),
			attribute.Int("messaging.batch.message_count", len(msgs)),
		))
	errs := c.spec.Batch(bctx, msgs, func(ctx context.Context, m Message, h Handler) error {
		// Each message's handler runs in its own trace, not the batch's.
		ctx = trace.ContextWithSpan(ctx, trace.SpanFromContext(context.Background()))
		return Chain(h, c.middleware...)(WithMessage(ctx, m), m)
	})
	span.End()
	stop()
	for i, raw := range raws {
		if errs[i] != nil {
			c.settleFailure(raw, msgs[i], stored[i], errs[i])
			continue
		}
		// Committed: acknowledged as process does.
		if err := raw.Ack(); err != nil {
			c.log.Warn("ack failed; the message will be redelivered and deduplicated", "event_id", msgs[i].ID, "err", err)
		}
	}
}

// settleFailure decides a failed message's fate: dead-lettered when the
// failure is permanent or has outlasted RetryFor, redelivered after the
// backoff otherwise.
func (c *Consumer) settleFailure(raw jetstream.Msg, m Message, stored time.Time, err error) {
	switch {
	case IsPermanent(err):
		_ = raw.TermWithReason(truncate(err.Error(), 200))
	case !stored.IsZero() && time.Since(stored) > c.spec.RetryFor:
		// A transient failure that outlasted every retry: a person looks.
		_ = raw.TermWithReason(truncate("retried for "+c.spec.RetryFor.String()+": "+err.Error(), 200))
	default:
		_ = raw.NakWithDelay(c.backoff(m.Delivery))
	}
}

// heartbeat tells JetStream every AckWait/3 that the messages are still
// being worked on, so a slow attempt is not redelivered to another replica
// while it runs, until stop is called.
func (c *Consumer) heartbeat(raws ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(c.spec.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, raw := range raws {
					_ = raw.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
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
