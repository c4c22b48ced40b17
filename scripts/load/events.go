package main

import (
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/saisei-health/platform/pkg/bus"
	_ "github.com/saisei-health/platform/pkg/events/bookingv1"      // registers the booking events
	_ "github.com/saisei-health/platform/pkg/events/notificationv1" // registers the clinic notices
	_ "github.com/saisei-health/platform/pkg/events/paymentv1"      // registers the payment events
)

// eventWatch hears the platform's booking events, clinic notices and
// balance requests as they are published (a plain NATS subscription as the
// operator), and tells each saga when the event it waits for arrived.
type eventWatch struct {
	nc   *nats.Conn
	mu   sync.Mutex
	arr  map[string]heard        // "<booking> <kind>" → when it arrived
	wait map[string][]chan heard // "<booking> <kind>" → waiting sagas
}

// heard is an event's arrival, with the payment intent it names (a
// balance request's, which the saga's Stripe webhook then reports on).
type heard struct {
	at       time.Time
	intentID string
}

func watchEvents(url, creds string) (*eventWatch, error) {
	nc, err := nats.Connect(url, nats.UserCredentials(creds), nats.Name("load"))
	if err != nil {
		return nil, err
	}
	w := &eventWatch{nc: nc, arr: map[string]heard{}, wait: map[string][]chan heard{}}
	for _, tree := range []string{"booking.v1.>", "clinic.v1.>", "payment.v1.*.balance.requested"} {
		if _, err := nc.Subscribe(tree, w.heard); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return w, nc.Flush()
}

func (w *eventWatch) close() { w.nc.Close() }

// heard files one event under "<booking id> <tree>.<last subject token>",
// e.g. "… booking.confirmed", "… clinic.confirmed" or "… payment.requested".
func (w *eventWatch) heard(m *nats.Msg) {
	h := heard{at: time.Now()}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(m.Header.Get(bus.HeaderEventType)))
	if err != nil {
		return
	}
	msg := mt.New()
	if proto.Unmarshal(m.Data, msg.Interface()) != nil {
		return
	}
	fields := msg.Descriptor().Fields()
	var id string
	if booking := fields.ByName("booking"); booking != nil && booking.Message() != nil {
		b := msg.Get(booking).Message()
		id = b.Get(b.Descriptor().Fields().ByName("id")).String()
	} else if bookingID := fields.ByName("booking_id"); bookingID != nil {
		id = msg.Get(bookingID).String()
	}
	if intent := fields.ByName("payment_intent_id"); intent != nil {
		h.intentID = msg.Get(intent).String()
	}
	if id == "" {
		return
	}
	tree, _, _ := strings.Cut(m.Subject, ".")
	key := id + " " + tree + "." + m.Subject[strings.LastIndex(m.Subject, ".")+1:]
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.arr[key]; seen {
		return
	}
	w.arr[key] = h
	for _, ch := range w.wait[key] {
		ch <- h
	}
	delete(w.wait, key)
}

// expect returns a channel that receives when booking's event of kind
// arrives (at once if it already has).
func (w *eventWatch) expect(booking, kind string) <-chan heard {
	ch := make(chan heard, 1)
	key := booking + " " + kind
	w.mu.Lock()
	defer w.mu.Unlock()
	if h, ok := w.arr[key]; ok {
		ch <- h
		return ch
	}
	w.wait[key] = append(w.wait[key], ch)
	return ch
}

// forget drops what was heard of a finished saga.
func (w *eventWatch) forget(booking string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key := range w.arr {
		if strings.HasPrefix(key, booking+" ") {
			delete(w.arr, key)
		}
	}
}
