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
)

// eventWatch hears the platform's booking events and clinic notices as
// they are published (a plain NATS subscription as the operator), and
// tells each saga when the event it waits for arrived.
type eventWatch struct {
	nc   *nats.Conn
	mu   sync.Mutex
	arr  map[string]time.Time        // "<booking> <kind>" → when it arrived
	wait map[string][]chan time.Time // "<booking> <kind>" → waiting sagas
}

func watchEvents(url, creds string) (*eventWatch, error) {
	nc, err := nats.Connect(url, nats.UserCredentials(creds), nats.Name("load"))
	if err != nil {
		return nil, err
	}
	w := &eventWatch{nc: nc, arr: map[string]time.Time{}, wait: map[string][]chan time.Time{}}
	for _, tree := range []string{"booking.v1.>", "clinic.v1.>"} {
		if _, err := nc.Subscribe(tree, w.heard); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return w, nc.Flush()
}

func (w *eventWatch) close() { w.nc.Close() }

// heard files one event under "<booking id> <tree>.<last subject token>",
// e.g. "… booking.confirmed" or "… clinic.confirmed".
func (w *eventWatch) heard(m *nats.Msg) {
	at := time.Now()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(m.Header.Get(bus.HeaderEventType)))
	if err != nil {
		return
	}
	msg := mt.New()
	if proto.Unmarshal(m.Data, msg.Interface()) != nil {
		return
	}
	booking := msg.Descriptor().Fields().ByName("booking")
	if booking == nil || booking.Message() == nil {
		return
	}
	b := msg.Get(booking).Message()
	id := b.Get(b.Descriptor().Fields().ByName("id")).String()
	tree, _, _ := strings.Cut(m.Subject, ".")
	key := id + " " + tree + "." + m.Subject[strings.LastIndex(m.Subject, ".")+1:]
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.arr[key]; seen {
		return
	}
	w.arr[key] = at
	for _, ch := range w.wait[key] {
		ch <- at
	}
	delete(w.wait, key)
}

// expect returns a channel that receives when booking's event of kind
// arrives (at once if it already has).
func (w *eventWatch) expect(booking, kind string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	key := booking + " " + kind
	w.mu.Lock()
	defer w.mu.Unlock()
	if at, ok := w.arr[key]; ok {
		ch <- at
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
