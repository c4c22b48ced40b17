package mailer_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/mailer"
	"github.com/saisei-health/platform/services/notification/internal/store"
	"github.com/saisei-health/platform/services/notification/migrations"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

// newQueue gives a test notification's schema in a fresh database.
func newQueue(t *testing.T) (*pgxpool.Pool, *store.Store) {
	t.Helper()
	return newQueueIn(t, devtest.NewDatabase(t))
}

// newQueueIn is newQueue in the database of the superuser DSN admin.
func newQueueIn(t *testing.T, admin string) (*pgxpool.Pool, *store.Store) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, devtest.ServiceDSN(t, admin, "notification"), "notification", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, "notification", migrations.Set()); err != nil {
		t.Fatal(err)
	}
	return pool, store.New()
}

func TestAnEmailIsRetriedUntilTheRelayAcceptsItAndSentOnce(t *testing.T) {
	ctx := context.Background()
	pool, st := newQueue(t)
	email := domain.Email{ID: "01a2-b:booking_confirmed", Template: domain.TemplateBookingConfirmed, Language: "en",
		To: "minjun.kim@example.kr", Subject: "Your booking is confirmed", Body: "Deposit received: ¥1,900,000"}
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab1"
	email.BookingID = bookingID
	for range 2 { // queued twice by a redelivered decision: one row
		if err := st.QueueEmail(ctx, pool, email, nil); err != nil {
			t.Fatal(err)
		}
	}

	// The relay is down: reserve a port, then close it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sender := mailer.New(mailer.Config{SMTPAddr: addr, From: "Saisei Care <care@saisei.health>", AllowPlaintext: true}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	sender.Backoff = []time.Duration{0}
	if n, err := sender.SendDue(ctx, 10); err != nil || n != 1 {
		t.Fatalf("first attempt handled %d, %v", n, err)
	}
	queued, _ := st.Emails(ctx, pool, bookingID)
	if len(queued) != 1 || queued[0].Status != "pending" || queued[0].Attempts != 1 || queued[0].LastError == "" {
		t.Fatalf("after a failed attempt: %+v", queued)
	}

	sink, err := devstack.StartMailSink(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if n, err := sender.SendDue(ctx, 10); err != nil || n != 1 {
		t.Fatalf("second attempt handled %d, %v", n, err)
	}
	if n, _ := sender.SendDue(ctx, 10); n != 0 {
		t.Fatalf("a sent email was picked up again (%d)", n)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != email.To || msgs[0].Subject != email.Subject ||
		msgs[0].MessageID != "<"+email.ID+"@saisei.health>" || msgs[0].Text != email.Body {
		t.Fatalf("delivered %+v", msgs)
	}
	queued, _ = st.Emails(ctx, pool, bookingID)
	if queued[0].Status != "sent" || queued[0].Attempts != 2 || queued[0].SentAt == nil {
		t.Fatalf("after delivery: %+v", queued[0])
	}
}

// Found by the chaos run: the relay took an email, then the database
// connection died before the sent mark committed, and the email went out
// twice. The mark is now retried on its own; the email is sent once.
func TestAnEmailTheRelayTookIsNotSentAgainWhenTheDatabaseDropsTheConnection(t *testing.T) {
	ctx := context.Background()
	admin := devtest.NewDatabase(t)
	pool, st := newQueueIn(t, admin)
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab4"
	email := domain.Email{BookingID: bookingID, ID: "d:booking_confirmed", Template: domain.TemplateBookingConfirmed, Language: "en",
		To: "ana@example.com", Subject: "Confirmed", Body: "x"}
	if err := st.QueueEmail(ctx, pool, email, nil); err != nil {
		t.Fatal(err)
	}
	superuser, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer superuser.Close(ctx)
	sink := devtest.MailSink(t)
	var killed int
	// The moment the relay has the message, before it says so, the
	// sender's transaction loses its connection (Postgres restarting, a
	// reset on the network).
	sink.SetBeforeAccept(func(devstack.Mail) {
		_ = superuser.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND usename = 'notification' AND state LIKE 'idle in transaction%'`).Scan(&killed)
	})
	sender := mailer.New(mailer.Config{SMTPAddr: sink.Addr(), From: "care@saisei.health", AllowPlaintext: true}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	if n, err := sender.SendDue(ctx, 10); err != nil || n != 1 {
		t.Fatalf("SendDue handled %d, %v", n, err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d backends, want the sender's transaction", killed)
	}
	sink.SetBeforeAccept(nil)
	if n, err := sender.SendDue(ctx, 10); err != nil || n != 0 {
		t.Fatalf("the email was due again: handled %d, %v", n, err)
	}
	queued, _ := st.Emails(ctx, pool, bookingID)
	if len(sink.Messages()) != 1 || queued[0].Status != "sent" {
		t.Fatalf("%d messages delivered, email %+v", len(sink.Messages()), queued[0])
	}
}

func TestAnEmailIsGivenUpAfterMaxAttempts(t *testing.T) {
	ctx := context.Background()
	pool, st := newQueue(t)
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab2"
	_ = st.QueueEmail(ctx, pool, domain.Email{BookingID: bookingID, ID: "x:balance_charged", Template: "balance_charged", Language: "en",
		To: "a@example.com", Subject: "s", Body: "b"}, nil)
	sender := mailer.New(mailer.Config{SMTPAddr: "127.0.0.1:1", From: "care@saisei.health", AllowPlaintext: true}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	sender.Backoff, sender.MaxAttempts = []time.Duration{0}, 3
	for range 5 {
		_, _ = sender.SendDue(ctx, 10)
	}
	queued, _ := st.Emails(ctx, pool, bookingID)
	if queued[0].Status != "failed" || queued[0].Attempts != 3 {
		t.Fatalf("after giving up: %+v", queued[0])
	}
}

// Each email is sent and marked in its own transaction: when marking one
// fails, the emails sent before it stay sent and are never sent again.
func TestAFailureMarkingOneEmailNeverResendsTheOthers(t *testing.T) {
	ctx := context.Background()
	pool, st := newQueue(t)
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab2"
	for _, id := range []string{"a:booking_confirmed", "b:booking_confirmed"} {
		if err := st.QueueEmail(ctx, pool, domain.Email{BookingID: bookingID, ID: id, Template: domain.TemplateBookingConfirmed, Language: "en",
			To: "ana@example.com", Subject: "Email " + id, Body: "x"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The database refuses to record the second email as sent.
	if _, err := pool.Exec(ctx, `
		CREATE FUNCTION refuse_b() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.id = 'b:booking_confirmed' AND NEW.status = 'sent' THEN RAISE EXCEPTION 'disk full'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_b BEFORE UPDATE ON emails FOR EACH ROW EXECUTE FUNCTION refuse_b();`); err != nil {
		t.Fatal(err)
	}
	sink := devtest.MailSink(t)
	sender := mailer.New(mailer.Config{SMTPAddr: sink.Addr(), From: "care@saisei.health", AllowPlaintext: true}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	if _, err := sender.SendDue(ctx, 10); err == nil {
		t.Fatal("marking b failed, yet SendDue reports no error")
	}
	if _, err := pool.Exec(ctx, `DROP TRIGGER refuse_b ON emails`); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.SendDue(ctx, 10); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range sink.Messages() {
		got[m.Subject]++
	}
	// a went once; b's first send could not be recorded, so b alone repeats.
	if got["Email a:booking_confirmed"] != 1 || got["Email b:booking_confirmed"] != 2 {
		t.Fatalf("delivered %v", got)
	}
}

// The emails due together go over one connection to the relay, each once
// and marked sent; the next round opens a connection of its own.
func TestEmailsDueTogetherShareOneConnectionToTheRelay(t *testing.T) {
	ctx := context.Background()
	pool, st := newQueue(t)
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab3"
	queue := func(ids ...string) {
		for _, id := range ids {
			if err := st.QueueEmail(ctx, pool, domain.Email{BookingID: bookingID, ID: id, Template: domain.TemplateBookingConfirmed, Language: "en",
				To: "ana@example.com", Subject: "Email " + id, Body: "x"}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	queue("a:booking_confirmed", "b:booking_confirmed", "c:booking_confirmed", "d:booking_confirmed")
	sink := devtest.MailSink(t)
	sender := mailer.New(mailer.Config{SMTPAddr: sink.Addr(), From: "care@saisei.health", AllowPlaintext: true}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	if n, err := sender.SendDue(ctx, 10); err != nil || n != 4 {
		t.Fatalf("handled %d, %v; want 4", n, err)
	}
	if c := sink.Connections(); c != 1 {
		t.Fatalf("%d connections for four emails due together, want 1", c)
	}
	queue("e:booking_confirmed")
	if n, err := sender.SendDue(ctx, 10); err != nil || n != 1 {
		t.Fatalf("next round handled %d, %v", n, err)
	}
	got := map[string]int{}
	for _, m := range sink.Messages() {
		got[m.MessageID]++
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if got["<"+id+":booking_confirmed@saisei.health>"] != 1 {
			t.Fatalf("delivered %v, want each email once", got)
		}
	}
	if c := sink.Connections(); c != 2 {
		t.Fatalf("%d connections after two rounds, want 2 (a round's connection is closed at its end)", c)
	}
	emails, _ := st.Emails(ctx, pool, bookingID)
	for _, e := range emails {
		if e.Status != "sent" || e.Attempts != 1 {
			t.Fatalf("email %+v, want sent at the first attempt", e)
		}
	}
}

// A relay that offers no TLS is refused unless plain text is allowed (a
// local sink): emails carry patients' names and bookings.
func TestARelayWithoutTLSIsRefusedByDefault(t *testing.T) {
	ctx := context.Background()
	pool, st := newQueue(t)
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab3"
	if err := st.QueueEmail(ctx, pool, domain.Email{BookingID: bookingID, ID: "c:booking_confirmed", Template: domain.TemplateBookingConfirmed,
		Language: "en", To: "ana@example.com", Subject: "Plain", Body: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	sink := devtest.MailSink(t)
	sender := mailer.New(mailer.Config{SMTPAddr: sink.Addr(), From: "care@saisei.health"}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	if _, err := sender.SendDue(ctx, 10); err != nil {
		t.Fatal(err)
	}
	queued, _ := st.Emails(ctx, pool, bookingID)
	if len(sink.Messages()) != 0 || queued[0].Status != "pending" || !strings.Contains(strings.ToLower(queued[0].LastError), "tls") {
		t.Fatalf("sent in clear text: %d messages, %+v", len(sink.Messages()), queued[0])
	}
}

// A running sender whose attempt failed wakes when the retry falls due (not
// at the 30-second fallback poll), again and again, and sends the email
// once the relay takes it.
func TestARunningSenderRetriesWhenTheRetryFallsDue(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, st := newQueue(t)
	const bookingID = "01a211ed-ee16-70e0-bd96-319cbad94ab4"
	// The relay is down: reserve a port, then close it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sender := mailer.New(mailer.Config{SMTPAddr: addr, From: "care@saisei.health", AllowPlaintext: true}, pool, st,
		devtest.Deps(t, "notification", nil).TracerProvider, devtest.TestLogger(t))
	sender.Backoff = []time.Duration{time.Second}
	go sender.Run(ctx)
	if err := st.QueueEmail(ctx, pool, domain.Email{BookingID: bookingID, ID: "r:booking_confirmed", Template: domain.TemplateBookingConfirmed,
		Language: "en", To: "ana@example.com", Subject: "Retried", Body: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	// Two failed attempts: the second comes from a retry, after start-up.
	devtest.Eventually(t, "two failed attempts", func() bool {
		es, _ := st.Emails(ctx, pool, bookingID)
		return len(es) == 1 && es[0].Attempts == 2
	})
	sink, err := devstack.StartMailSink(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if _, err := sink.WaitFor(wctx, func(m devstack.Mail) bool { return m.Subject == "Retried" }); err != nil {
		t.Fatalf("the retry due a second after the failure was not sent within 10 s: %v", err)
	}
}
