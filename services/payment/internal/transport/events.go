package transport

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// Subscribe attaches the balance charge to bookings whose cells passed QC,
// and cancels the balance of bookings whose cells failed it: the balance is
// never charged for cells that will not be administered.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, p *service.Payments) error {
	const qcFailed = "payment-qc-failed"
	if err := sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: qcFailed,
		Subjects: []string{"booking.v1.*.qc_failed"}}, inbox.Once(pool, qcFailed, p.CancelBalance)); err != nil {
		return err
	}
	return sub.Consume(ctx, bus.ConsumerSpec{
		Stream: bus.StreamBooking, Durable: service.BalanceConsumer,
		Subjects: []string{"booking.v1.*.cells_ready"},
		// Stripe outages are retried for about an hour before dead-lettering.
		MaxDeliver: 10,
		Backoff:    []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute},
	}, p.ChargeBalance)
}
