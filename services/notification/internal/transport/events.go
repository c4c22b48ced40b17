// Package transport subscribes notification to booking events and serves
// its small support API.
package transport

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/notification/internal/service"
)

// notifiedBookingEvents are the booking events notification acts on. The
// consumer takes only their subjects: the others (created, harvested,
// cells_ready) were half of a booking's messages, each delivered and
// acknowledged for nothing.
var notifiedBookingEvents = []subject.BookingEvent{subject.Confirmed, subject.ReadyForAdministration, subject.Administered,
	subject.QCFailed, subject.BalanceFailed, subject.Cancelled, subject.Expired, subject.BalanceReminder, subject.Reculture}

// Subscribe attaches the notifier: one consumer over the booking events it
// acts on, dispatching on the event's type; each handler runs once via the
// inbox.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, n *service.Notifier) error {
	subjects := make([]string, len(notifiedBookingEvents))
	for i, e := range notifiedBookingEvents {
		subjects[i] = subject.Booking(subject.Any, e)
	}
	return inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "notification-bookings",
		Subjects: subjects},
		inbox.On(n.BookingConfirmed),
		inbox.On(n.BookingReadyForAdministration),
		inbox.On(n.BookingAdministered),
		inbox.On(n.QualityCheckFailed),
		inbox.On(n.BalanceChargeFailed),
		inbox.On(n.BookingCancelled),
		inbox.On(n.BookingExpired),
		inbox.On(n.BalanceReminder),
		inbox.On(n.RecultureStarted),
	)
}

// SubscribeQuotes attaches the quote email: one consumer over issued quotes.
func SubscribeQuotes(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, n *service.Notifier) error {
	return inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamQuoting, Durable: "notification-quotes",
		Subjects: []string{subject.Quote(subject.Any, subject.QuoteIssued)}},
		inbox.On(n.QuoteIssued),
	)
}
