package bus

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Route is one event type a consumer handles and what handles it. A
// consumer dispatches on the event's type (the Saisei-Event-Type header),
// never on its subject, so a subject can be renamed without touching a
// handler and a handler is declared by the event it handles.
type Route struct {
	// Type is the protobuf full name of the event.
	Type   string
	handle Handler
}

// On routes events of type E to h, decoded. Use it for handlers that manage
// their own transactions (an external effect such as a card charge, which
// claims its inbox row only once the effect is recorded); most handlers
// want inbox.On instead.
func On[T any, E interface {
	*T
	proto.Message
}](h func(ctx context.Context, e E) error) Route {
	return Route{Type: TypeName(E(new(T))), handle: func(ctx context.Context, m Message) error {
		e := E(new(T))
		if err := m.Decode(e); err != nil {
			return err
		}
		return h(ctx, e)
	}}
}

// NewRoute routes events of type typ (a protobuf full name) to h, which
// decodes them itself; adapters such as inbox.On build on it.
func NewRoute(typ string, h Handler) Route { return Route{Type: typ, handle: h} }

// Dispatch is a Handler that runs the route of each message's type. Types no
// route names are acknowledged untouched (a consumer of a whole subject tree
// sees events it does not act on); a message without a type is dead-lettered,
// since nothing can say what it is. Two routes for one type is a wiring bug
// and panics at start.
func Dispatch(routes ...Route) Handler {
	byType := map[string]Handler{}
	for _, r := range routes {
		if _, dup := byType[r.Type]; dup {
			panic("bus: two routes for " + r.Type)
		}
		byType[r.Type] = r.handle
	}
	return func(ctx context.Context, m Message) error {
		if m.Type == "" {
			return Permanent(fmt.Errorf("bus: event %s on %s has no %s header", m.ID, m.Subject, HeaderEventType))
		}
		if h, ok := byType[m.Type]; ok {
			return h(ctx, m)
		}
		return nil
	}
}

type messageKey struct{}

// WithMessage returns ctx carrying m, for the handler it is delivered to.
func WithMessage(ctx context.Context, m Message) context.Context {
	return context.WithValue(ctx, messageKey{}, m)
}

// MessageOf is the message being handled: its id, subject and when it
// occurred, for handlers that need more than the decoded event.
func MessageOf(ctx context.Context) Message {
	m, _ := ctx.Value(messageKey{}).(Message)
	return m
}
