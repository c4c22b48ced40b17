package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
)

// Retention deletes only what can never be needed again: outbox rows
// published before the cutoff (never one waiting or parked), and inbox
// records handled before theirs.
func TestPruningDeletesOnlyWhatCanNeverBeNeededAgain(t *testing.T) {
	ctx := context.Background()
	pool := outboxDB(t)
	// Ten days ago: two published, one waiting, one parked. Since: one
	// published, one waiting.
	if _, err := pool.Exec(ctx, `
		INSERT INTO outbox (event_id, subject, event_type, payload, trace, created_at, published_at, parked_at)
		VALUES ('old-1', 's', 't', '', '{}', now() - interval '10 days', now() - interval '10 days', NULL),
		       ('old-2', 's', 't', '', '{}', now() - interval '10 days', now() - interval '9 days', NULL),
		       ('old-waiting', 's', 't', '', '{}', now() - interval '10 days', NULL, NULL),
		       ('old-parked', 's', 't', '', '{}', now() - interval '10 days', NULL, now() - interval '10 days'),
		       ('new-1', 's', 't', '', '{}', now() - interval '1 day', now() - interval '1 day', NULL),
		       ('new-waiting', 's', 't', '', '{}', now(), NULL, NULL);
		INSERT INTO inbox (consumer, event_id, processed_at)
		VALUES ('c', 'handled-long-ago', now() - interval '120 days'), ('c', 'handled-lately', now() - interval '30 days');`); err != nil {
		t.Fatal(err)
	}
	week := time.Now().Add(-7 * 24 * time.Hour)
	for range 2 { // a second prune finds nothing more
		if _, err := outbox.Prune(ctx, pool, week); err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := pool.Query(ctx, `SELECT event_id FROM outbox ORDER BY seq`)
	var left []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if want := []string{"old-waiting", "old-parked", "new-1", "new-waiting"}; len(left) != len(want) || left[0] != want[0] || left[1] != want[1] || left[2] != want[2] || left[3] != want[3] {
		t.Fatalf("outbox after pruning: %v, want %v", left, want)
	}
	n, err := inbox.Prune(ctx, pool, time.Now().Add(-100*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("inbox pruned %d, %v; want the record of 120 days ago", n, err)
	}
	var kept string
	if err := pool.QueryRow(ctx, `SELECT event_id FROM inbox`).Scan(&kept); err != nil || kept != "handled-lately" {
		t.Fatalf("inbox kept %q, %v", kept, err)
	}
}

// outboxDB is a fresh database with booking's outbox and inbox tables.
func outboxDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, devtest.ServiceDSN(t, devtest.NewDatabase(t), "booking"), "booking", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, "booking", outbox.Migrations(), inbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	return pool
}
