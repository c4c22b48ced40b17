package transport

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// Subscribe attaches the balance charge to bookings whose cells passed QC,
// cancels the balance of bookings whose cells failed it (the balance is
// never charged for cells that will not be administered), and refunds
// cancelled bookings under their policy.
//
// Stripe outages during the balance charge are retried with capped backoff
// for a day before dead-lettering (bus.ConsumerSpec.RetryFor), always with
// the same idempotency key; retry overrides the backoff.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, p *service.Payments, retry []time.Duration) error {
	if len(retry) == 0 {
		retry = []time.Duration{5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute}
	}
	// One consumer for both, so a re-culture is applied after the failure.
	if err := inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "payment-qc-failed",
		Subjects: []string{subject.Booking(subject.Any, subject.QCFailed), subject.Booking(subject.Any, subject.Reculture)}},
		inbox.On(p.CancelBalance), inbox.On(p.RestoreBalance)); err != nil {
		return err
	}
	// Refunds, like the charge, are external effects that claim their
	// inbox row with Stripe's answer (see RefundCancelled).
	if err := sub.Consume(ctx, bus.ConsumerSpec{
		Stream: bus.StreamBooking, Durable: service.RefundConsumer,
		Subjects: []string{subject.Booking(subject.Any, subject.Cancelled)},
		Backoff:  retry,
	}, bus.Dispatch(bus.On(p.RefundCancelled))); err != nil {
		return err
	}
	if err := sub.Consume(ctx, bus.ConsumerSpec{
		Stream: bus.StreamBooking, Durable: service.ExpiryConsumer,
		Subjects: []string{subject.Booking(subject.Any, subject.Expired)},
		Backoff:  retry,
	}, bus.Dispatch(bus.On(p.CloseExpired))); err != nil {
		return err
	}
	// The charge is an external effect: it claims its inbox row itself, in
	// the transaction that records Stripe's answer (see ChargeBalance).
	return sub.Consume(ctx, bus.ConsumerSpec{
		Stream: bus.StreamBooking, Durable: service.BalanceConsumer,
		Subjects: []string{subject.Booking(subject.Any, subject.CellsReady)},
		Backoff:  retry,
	}, bus.Dispatch(bus.On(p.ChargeBalance)))
}
