package transport

import (
	"context"
	"time"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// Subscriber registers durable consumers.
type Subscriber interface {
	Consume(ctx context.Context, spec bus.ConsumerSpec, h bus.Handler) error
}

// Subscribe attaches the balance charge to bookings whose cells passed QC.
// Failed QC produces booking.v1.<clinic>.qc_failed, which is not followed:
// the balance is never charged for cells that will not be administered.
func Subscribe(ctx context.Context, sub Subscriber, p *service.Payments) error {
	return sub.Consume(ctx, bus.ConsumerSpec{
		Stream: bus.StreamBooking, Durable: service.BalanceConsumer,
		Subjects: []string{"booking.v1.*.cells_ready"},
		// Stripe outages are retried for about an hour before dead-lettering.
		MaxDeliver: 10,
		Backoff:    []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute},
	}, p.ChargeBalance)
}
