package transport

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/services/booking/internal/service"
)

// Subscribe attaches booking to the payment events that move bookings on.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, b *service.Bookings) error {
	const succeeded, failed = "booking-payments-succeeded", "booking-payments-failed"
	if err := sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: succeeded,
		Subjects: []string{"payment.v1.*.deposit.succeeded", "payment.v1.*.balance.succeeded"}},
		inbox.Once(pool, succeeded, b.ApplyPaymentSucceeded)); err != nil {
		return err
	}
	return sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: failed,
		Subjects: []string{"payment.v1.*.balance.failed"}}, inbox.Once(pool, failed, b.ApplyPaymentFailed))
}
