// Package bus is how services exchange events over NATS JetStream: protobuf
// payloads, the event id as Nats-Msg-Id (so a re-publish is deduplicated),
// W3C trace context in message headers, durable pull consumers with bounded
// redelivery, and a dead-letter stream for what still fails.
//
// go-kit's NATS transport drops message headers, and with them the trace, so
// events go through this package rather than go-kit.
package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Header names carried by every event.
const (
	HeaderEventID    = "Saisei-Event-Id"
	HeaderEventType  = "Saisei-Event-Type"
	HeaderOccurredAt = "Saisei-Occurred-At"
)

// Event is one fact a service publishes.
type Event struct {
	// ID identifies the event everywhere: Nats-Msg-Id, inbox key, outbox key.
	// Deterministic ids (e.g. "notice:<booking>:confirmed") make a repeated
	// decision produce the same event, which then deduplicates.
	ID      string
	Subject string
	Message proto.Message
}

// TypeName is the protobuf full name used in the Saisei-Event-Type header.
func TypeName(m proto.Message) string { return string(m.ProtoReflect().Descriptor().FullName()) }

// Connect dials NATS with reconnects that never give up, and returns the
// JetStream context. opts add to the defaults, e.g. nats.UserCredentials.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Message is a received event.
type Message struct {
	ID         string
	Subject    string
	Type       string
	Data       []byte
	Header     nats.Header
	OccurredAt time.Time
	// Delivery counts attempts, starting at 1.
	Delivery uint64
}

// Decode unmarshals the payload into dst. A payload that does not decode
// will never decode, so the error is permanent.
func (m Message) Decode(dst proto.Message) error {
	if want := TypeName(dst); m.Type != "" && m.Type != want {
		return Permanent(fmt.Errorf("bus: event %s is %s, not %s", m.ID, m.Type, want))
	}
	if err := proto.Unmarshal(m.Data, dst); err != nil {
		return Permanent(fmt.Errorf("bus: decode %s: %w", m.ID, err))
	}
	return nil
}

// permanentError marks an error no retry can fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so the consumer terminates the message (it goes to the
// dead-letter stream) instead of redelivering it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Handler processes one message. Returning nil acknowledges it.
type Handler func(ctx context.Context, m Message) error

// Middleware wraps a Handler with a cross-cutting concern.
type Middleware func(Handler) Handler

// Chain applies middlewares so the first one is outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
