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
// through the inbox.
func Subscribe(ctx context.Context, sub bus.Subscriber, pool *pgxpool.Pool, q *service.Quoting) error {
	return inbox.Subscribe(ctx, sub, pool, bus.ConsumerSpec{Stream: bus.StreamCatalog, Durable: "quoting-catalog",
		Subjects: []string{subject.Treatment(subject.Any)}}, inbox.On(q.ApplyTreatmentChanged))
}
