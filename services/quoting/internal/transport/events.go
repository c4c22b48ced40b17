package transport

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// Subscribe attaches quoting's event handlers: the catalog read model and
// quote acceptance by bookings, each exactly once through the inbox.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, q *service.Quoting) error {
	const catalog, bookings = "quoting-catalog", "quoting-bookings"
	if err := sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamCatalog, Durable: catalog,
		Subjects: []string{"catalog.v1.treatments.>"}}, inbox.Once(pool, catalog, q.ApplyTreatmentChanged)); err != nil {
		return err
	}
	return sub.Consume(ctx, bus.ConsumerSpec{Stream: bus.StreamBooking, Durable: bookings,
		Subjects: []string{"booking.v1.*.created"}}, inbox.Once(pool, bookings, q.ApplyBookingCreated))
}
