// Package transport subscribes notification to booking and payment events
// and serves its small support API.
package transport

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/services/notification/internal/service"
)

// Subscribe attaches the notifier, each handler exactly once via the inbox.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, n *service.Notifier) error {
	const bookings, payments = "notification-bookings", "notification-payments"
	if err := sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: bookings,
		Subjects: []string{"booking.v1.>"}}, inbox.Once(pool, bookings, n.ApplyBookingEvent)); err != nil {
		return err
	}
	return sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: payments,
		Subjects: []string{"payment.v1.*.balance.succeeded"}}, inbox.Once(pool, payments, n.ApplyBalanceSucceeded))
}
