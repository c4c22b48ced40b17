package servicehost

import (
	"context"
	"time"

	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/outbox"
)

// Retention of the shared tables: without it every event a service ever
// published or handled stayed in its outbox and inbox, and the tables (and
// their indexes, and autovacuum's work) grew with every booking.
const (
	// KeepPublished is how long a published outbox row is kept, for
	// diagnosis; JetStream needs it for its one-hour duplicate window only.
	KeepPublished = 7 * 24 * time.Hour
	// KeepHandled is how long an inbox record is kept: past the streams'
	// 90 days, no delivery or dead-letter replay of its event can come.
	KeepHandled = 100 * 24 * time.Hour
	// pruneEvery is how often both are pruned (first a minute after start).
	pruneEvery = 24 * time.Hour
)

// prune deletes what the retention allows, now and then daily, until ctx
// is done. Replicas may prune at once: the deletes are idempotent.
func (h *Host) prune(ctx context.Context) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = pruneEvery
		now := time.Now()
		published, err := outbox.Prune(ctx, h.Pool, now.Add(-KeepPublished))
		if err != nil && ctx.Err() == nil {
			h.Log.WarnContext(ctx, "outbox prune failed; will retry in an hour", "err", err)
			wait = time.Hour
		}
		handled, err := inbox.Prune(ctx, h.Pool, now.Add(-KeepHandled))
		if err != nil && ctx.Err() == nil {
			h.Log.WarnContext(ctx, "inbox prune failed; will retry in an hour", "err", err)
			wait = time.Hour
		}
		if published+handled > 0 {
			h.Log.InfoContext(ctx, "pruned", "outbox_rows", published, "inbox_rows", handled)
		}
	}
}
