package pgdb_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/pgdb"
)

// The Wakeups of a process share one listening connection: each wakes on
// its own channel's NOTIFY only, one that starts later is listened for on
// the same connection, and the connection closes with the last of them.
func TestWakeupsShareOneListeningConnection(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, devtest.ServiceDSN(t, devtest.NewDatabase(t), "notification"), "notification", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	drain := func(w *pgdb.Wakeup) {
		for {
			select {
			case <-w.C():
			case <-time.After(200 * time.Millisecond):
				return
			}
		}
	}
	woke := func(w *pgdb.Wakeup) bool {
		select {
		case <-w.C():
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}
	notify := func(channel string) {
		if _, err := pool.Exec(ctx, `SELECT pg_notify($1, '')`, channel); err != nil {
			t.Fatal(err)
		}
	}
	listening := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE usename = current_user AND query LIKE 'LISTEN%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	emails := pgdb.NewWakeup(pool, "t_emails", time.Hour, log)
	ctxEmails, stopEmails := context.WithCancel(ctx)
	go emails.Run(ctxEmails)
	drain(emails)
	notify("t_emails")
	if !woke(emails) {
		t.Fatal("no wake on its channel's NOTIFY")
	}

	outbox := pgdb.NewWakeup(pool, "t_outbox", time.Hour, log)
	ctxOutbox, stopOutbox := context.WithCancel(ctx)
	go outbox.Run(ctxOutbox)
	drain(outbox)
	drain(emails)
	notify("t_outbox")
	if !woke(outbox) {
		t.Fatal("a Wakeup started later missed its channel's NOTIFY")
	}
	select {
	case <-emails.C():
		t.Fatal("woken by another channel's NOTIFY")
	case <-time.After(200 * time.Millisecond):
	}
	notify("t_emails")
	if !woke(emails) {
		t.Fatal("no wake after another channel was added")
	}
	if n := listening(); n != 1 {
		t.Fatalf("%d listening connections for two Wakeups, want 1", n)
	}

	stopEmails()
	stopOutbox()
	devtest.Eventually(t, "the listening connection closed", func() bool { return listening() == 0 })
}
