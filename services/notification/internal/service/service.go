// Package service turns booking and payment events into clinic notices and
// patient emails, each exactly once.
package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/paymentv1"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/notification/internal/contract"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// Notifier handles the events.
type Notifier struct{ store *store.Store }

// New returns a Notifier.
func New(s *store.Store) *Notifier { return &Notifier{store: s} }

// bookingEvent is any booking.v1 event: each carries the booking snapshot.
type bookingEvent interface {
	proto.Message
	GetBooking() *bookingv1.Booking
}

// eventTypes maps the last subject token to the message it carries.
var eventTypes = map[string]func() bookingEvent{
	"created":                  func() bookingEvent { return &bookingv1.BookingCreated{} },
	"confirmed":                func() bookingEvent { return &bookingv1.BookingConfirmed{} },
	"harvested":                func() bookingEvent { return &bookingv1.HarvestRecorded{} },
	"cells_ready":              func() bookingEvent { return &bookingv1.CellsReady{} },
	"qc_failed":                func() bookingEvent { return &bookingv1.QualityCheckFailed{} },
	"ready_for_administration": func() bookingEvent { return &bookingv1.BookingReadyForAdministration{} },
	"administered":             func() bookingEvent { return &bookingv1.BookingAdministered{} },
}

// ApplyBookingEvent keeps the read model current, tells the clinic about
// confirmed, ready-for-administration and administered bookings, and emails
// the patient when the booking is confirmed. Runs in the inbox transaction.
func (n *Notifier) ApplyBookingEvent(ctx context.Context, tx pgx.Tx, m bus.Message) error {
	name := lastToken(m.Subject)
	newEvent, ok := eventTypes[name]
	if !ok {
		return nil // a booking event notification does not act on
	}
	e := newEvent()
	if err := m.Decode(e); err != nil {
		return err
	}
	b, err := contract.Booking(e.GetBooking())
	if err != nil {
		return bus.Permanent(err)
	}
	if err := n.store.SaveBooking(ctx, tx, b); err != nil {
		return err
	}
	if kind, ok := domain.NoticeKinds[name]; ok {
		if err := outbox.Enqueue(ctx, tx, contract.ClinicNotice(e.GetBooking(), kind, m.OccurredAt)); err != nil {
			return err
		}
	}
	if name == "confirmed" {
		return n.queueEmail(ctx, tx, domain.TemplateBookingConfirmed, b)
	}
	return nil
}

// ApplyBalanceSucceeded emails the patient that the balance was charged.
func (n *Notifier) ApplyBalanceSucceeded(ctx context.Context, tx pgx.Tx, m bus.Message) error {
	var e paymentv1.PaymentSucceeded
	if err := m.Decode(&e); err != nil {
		return err
	}
	if e.GetStage() != paymentv1.Stage_STAGE_BALANCE {
		return nil
	}
	b, err := n.store.Booking(ctx, tx, e.GetBookingId())
	if errors.Is(err, store.ErrNotFound) {
		// The booking's own events have not arrived yet: retry later.
		return fmt.Errorf("booking %s not known yet", e.GetBookingId())
	}
	if err != nil {
		return err
	}
	return n.queueEmail(ctx, tx, domain.TemplateBalanceCharged, b)
}

func (n *Notifier) queueEmail(ctx context.Context, tx pgx.Tx, template string, b domain.Booking) error {
	e, err := domain.ComposeEmail(template, b)
	if err != nil {
		return bus.Permanent(err)
	}
	return n.store.QueueEmail(ctx, tx, b.ID, e, telemetry.Inject(ctx))
}

func lastToken(subject string) string {
	for i := len(subject) - 1; i >= 0; i-- {
		if subject[i] == '.' {
			return subject[i+1:]
		}
	}
	return subject
}
