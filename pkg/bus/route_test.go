package bus_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
)

func message(t *testing.T, id, subject string, e proto.Message) bus.Message {
	t.Helper()
	data, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return bus.Message{ID: id, Subject: subject, Type: bus.TypeName(e), Data: data}
}

// A consumer routes by the event's declared type, whatever subject it came
// on: a handler is declared by the event it handles.
func TestDispatchRoutesByEventTypeNotSubject(t *testing.T) {
	var ready, failed []string
	h := bus.Dispatch(
		bus.On(func(_ context.Context, e *bookingv1.CellsReady) error {
			ready = append(ready, e.GetBooking().GetId())
			return nil
		}),
		bus.On(func(ctx context.Context, e *bookingv1.QualityCheckFailed) error {
			failed = append(failed, e.GetBooking().GetId()+"@"+bus.MessageOf(ctx).ID)
			return nil
		}),
	)
	ctx := context.Background()
	// The subject's last token says qc_failed; the type says CellsReady.
	m := message(t, "e1", "booking.v1.c.qc_failed", &bookingv1.CellsReady{Booking: &bookingv1.Booking{Id: "b1"}})
	if err := h(bus.WithMessage(ctx, m), m); err != nil {
		t.Fatal(err)
	}
	m = message(t, "e2", "booking.v1.c.anything", &bookingv1.QualityCheckFailed{Booking: &bookingv1.Booking{Id: "b2"}})
	if err := h(bus.WithMessage(ctx, m), m); err != nil {
		t.Fatal(err)
	}
	if len(ready) != 1 || ready[0] != "b1" || len(failed) != 1 || failed[0] != "b2@e2" {
		t.Fatalf("ready %v, failed %v", ready, failed)
	}

	// A type no route names is acknowledged untouched.
	other := message(t, "e3", "booking.v1.c.created", &bookingv1.BookingCreated{})
	if err := h(ctx, other); err != nil {
		t.Fatalf("unrouted type: %v", err)
	}
	// A message that does not say what it is can never be handled.
	untyped := message(t, "e4", "booking.v1.c.created", &commonv1.Money{})
	untyped.Type = ""
	if err := h(ctx, untyped); !bus.IsPermanent(err) {
		t.Fatalf("untyped message: %v, want a permanent error", err)
	}
	// A payload that does not decode as its declared type is permanent too.
	garbled := bus.Message{ID: "e5", Type: bus.TypeName(&bookingv1.CellsReady{}), Data: []byte{0xff, 0xff}}
	if err := h(ctx, garbled); !bus.IsPermanent(err) {
		t.Fatalf("garbled payload: %v, want a permanent error", err)
	}
}

func TestTwoRoutesForOneTypeIsAWiringBug(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	noop := func(context.Context, *bookingv1.CellsReady) error { return nil }
	bus.Dispatch(bus.On(noop), bus.On(noop))
}
