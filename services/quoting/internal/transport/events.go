package transport

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// Subscribe keeps quoting's catalog read model current, each snapshot once
// through the inbox, and releases the quotes of bookings that expired
// unpaid.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, q *service.Quoting) error {
	if err := inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamCatalog, Durable: "quoting-catalog",
		Subjects: []string{subject.Treatment(subject.Any)}}, inbox.On(q.ApplyTreatmentChanged)); err != nil {
		return err
	}
	return inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: "quoting-expired-bookings",
		Subjects: []string{subject.Booking(subject.Any, subject.Expired)}}, inbox.On(q.ReleaseExpired))
}
