package transport

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/booking/internal/service"
)

// Subscribe attaches booking to the payment events that move bookings on,
// each handled once via the inbox.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, b *service.Bookings) error {
	if err := inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: "booking-payments-succeeded",
		Subjects: []string{
			subject.Payment(subject.Any, subject.Deposit, subject.Succeeded),
			subject.Payment(subject.Any, subject.Balance, subject.Succeeded),
		}}, inbox.On(b.ApplyPaymentSucceeded)); err != nil {
		return err
	}
	if err := inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamPayment, Durable: "booking-payments-failed",
		Subjects: []string{subject.Payment(subject.Any, subject.Balance, subject.Failed)}},
		inbox.On(b.ApplyPaymentFailed)); err != nil {
		return err
	}
	// A plan that stops cancels the bookings still awaiting their deposit.
	return inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamCatalog, Durable: "booking-plans",
		Subjects: []string{subject.Plan(subject.Any)}}, inbox.On(b.ApplyPlanChanged))
}
