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

// Subscribe attaches the notifier: one consumer over every booking event,
// dispatching on the event's type; each handler runs once via the inbox.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, n *service.Notifier) error {
	return inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "notification-bookings",
		Subjects: []string{subject.BookingTree}},
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
