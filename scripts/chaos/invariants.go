package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
)

// check is one invariant and what broke it.
type check struct {
	Name       string   `json:"name"`
	Checked    int      `json:"checked"`
	Violations int      `json:"violations"`
	Examples   []string `json:"examples,omitempty"`
	// Exception marks a documented exception: reported with its rate,
	// not failing the run.
	Exception bool `json:"exception,omitempty"`
}

func (c *check) fail(format string, args ...any) {
	c.Violations++
	if len(c.Examples) < 5 {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

// checker reads the system of record after the run: the databases, the
// JetStream streams, the recording Stripe proxy and the SMTP sink.
type checker struct {
	s        *stack
	db       *pgxpool.Pool
	js       jetstream.JetStream
	journeys []*journey
	checks   []*check
	// spans are the services' exported spans; faults what was injected
	// from faultsBegin on.
	spans       *traceSink
	endpoint    *clinicEndpoint
	faults      []fault
	faultsBegin time.Time
}

func (c *checker) add(name string) *check {
	ch := &check{Name: name}
	c.checks = append(c.checks, ch)
	return ch
}

// The happy path and the failed-QC path, as the booking's transitions.
var (
	pathAdministered = []string{"awaiting_deposit", "confirmed", "culturing", "awaiting_balance", "ready_for_administration", "administered"}
	pathQCFailed     = []string{"awaiting_deposit", "confirmed", "culturing", "qc_failed"}
	transient        = []string{"awaiting_deposit", "confirmed", "culturing", "awaiting_balance", "ready_for_administration",
		"balance_action_required"}
)

func (c *checker) run(ctx context.Context) error {
	for _, f := range []func(context.Context) error{
		c.journeysEnded, c.bookings, c.outboxes, c.deadLetters, c.stripe, c.payments, c.ledger, c.clinicNotices, c.webhooks, c.emails,
	} {
		if err := f(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) journeysEnded(context.Context) error {
	ch := c.add("every journey reached its end (the client gave up on none)")
	for _, j := range c.journeys {
		ch.Checked++
		if j.Err != nil {
			ch.fail("journey %d (booking %s): %v", j.N, j.BookingID, j.Err)
		} else if j.Final != j.expectedFinal() {
			ch.fail("journey %d (booking %s) ended %s, want %s", j.N, j.BookingID, j.Final, j.expectedFinal())
		}
	}
	return nil
}

// bookings: each booking's transitions are the path its journey explains,
// none is stuck, and each journey made exactly one booking.
func (c *checker) bookings(ctx context.Context) error {
	explained := c.add("every booking is in a state its history explains")
	stuck := c.add("no booking stuck in a transient state")
	once := c.add("one booking per journey (no booking doubled or half-written)")
	rows, err := c.db.Query(ctx, `
		SELECT b.id::text, b.status, b.patient_email, b.deposit_jpy, b.balance_jpy,
		       coalesce(array_agg(t.to_status ORDER BY t.seq) FILTER (WHERE t.seq IS NOT NULL), '{}')
		FROM booking.bookings b LEFT JOIN booking.booking_transitions t ON t.booking_id = b.id
		WHERE b.patient_email LIKE 'chaos-%'
		GROUP BY b.id`)
	if err != nil {
		return err
	}
	type row struct {
		id, status, email string
		deposit, balance  int64
		path              []string
	}
	byEmail := map[string][]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.status, &r.email, &r.deposit, &r.balance, &r.path); err != nil {
			return err
		}
		byEmail[r.email] = append(byEmail[r.email], r)
		stuck.Checked++
		if slices.Contains(transient, r.status) {
			stuck.fail("booking %s is still %s (history %v)", r.id, r.status, r.path)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, j := range c.journeys {
		once.Checked++
		explained.Checked++
		got := byEmail[j.Email]
		delete(byEmail, j.Email)
		if len(got) != 1 || (j.BookingID != "" && got[0].id != j.BookingID) {
			ids := []string{}
			for _, r := range got {
				ids = append(ids, r.id)
			}
			if j.BookingID != "" || len(got) > 0 {
				once.fail("journey %d (booking %q) has bookings %v", j.N, j.BookingID, ids)
			}
			continue
		}
		r := got[0]
		want := pathAdministered
		if j.QCFails {
			want = pathQCFailed
		}
		if !slices.Equal(r.path, want) || r.status != want[len(want)-1] {
			explained.fail("booking %s is %s with history %v, want %v", r.id, r.status, r.path, want)
		}
		if r.deposit != j.Deposit || r.balance != j.Balance {
			explained.fail("booking %s owes deposit ¥%d balance ¥%d, the quote said ¥%d and ¥%d", r.id, r.deposit, r.balance, j.Deposit, j.Balance)
		}
	}
	for email, rs := range byEmail {
		for _, r := range rs {
			once.fail("booking %s (%s) belongs to no journey", r.id, email)
		}
	}
	return nil
}

// outboxes: every event each service committed was published.
func (c *checker) outboxes(ctx context.Context) error {
	ch := c.add("no outbox row left unpublished")
	rows, err := c.db.Query(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox' ORDER BY 1`)
	if err != nil {
		return err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, schema := range schemas {
		var total, pending int
		if err := c.db.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM %s.outbox`,
			pgx.Identifier{schema}.Sanitize())).Scan(&total, &pending); err != nil {
			return err
		}
		ch.Checked += total
		if pending > 0 {
			ch.Violations += pending
			ch.Examples = append(ch.Examples, fmt.Sprintf("%s.outbox: %d unpublished", schema, pending))
		}
	}
	return nil
}

// deadLetters: nothing a human must handle.
func (c *checker) deadLetters(ctx context.Context) error {
	ch := c.add("no dead letter")
	dl, err := bus.DeadLetters(ctx, c.js)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, d := range dl {
		ch.fail("%+v", d)
	}
	return nil
}

// stripe: what payment asked Stripe for, per booking, as the recording
// proxy saw it.
func (c *checker) stripe(context.Context) error {
	deposits := c.add("exactly one deposit intent per booking at Stripe, for the quote's deposit")
	balances := c.add("at most one balance charge per booking at Stripe (none after a failed QC), for the quote's balance")
	keyless := c.add("every Stripe call that moves money carries an idempotency key")
	type keys map[string]string // idempotency key → amount
	byBooking := map[string]map[string]keys{}
	for _, r := range c.s.proxy.Requests() {
		if r.Method != "POST" || r.Path != "/v1/payment_intents" && !strings.HasPrefix(r.Path, "/v1/refunds") {
			continue
		}
		keyless.Checked++
		if r.IdempotencyKey == "" {
			keyless.fail("%s %s without a key", r.Method, r.Path)
			continue
		}
		if r.Path != "/v1/payment_intents" {
			continue
		}
		b := r.Form.Get("metadata[booking_id]")
		stage := "balance"
		if strings.HasSuffix(r.IdempotencyKey, ":deposit") {
			stage = "deposit"
		}
		if byBooking[b] == nil {
			byBooking[b] = map[string]keys{"deposit": {}, "balance": {}}
		}
		byBooking[b][stage][r.IdempotencyKey] = r.Form.Get("amount")
	}
	for _, j := range c.journeys {
		if j.BookingID == "" {
			continue
		}
		deposits.Checked++
		balances.Checked++
		got := byBooking[j.BookingID]
		if got == nil {
			got = map[string]keys{"deposit": {}, "balance": {}}
		}
		if len(got["deposit"]) != 1 {
			deposits.fail("booking %s: %d deposit intents (%v)", j.BookingID, len(got["deposit"]), got["deposit"])
		}
		for _, amount := range got["deposit"] {
			if amount != fmt.Sprint(j.Deposit) {
				deposits.fail("booking %s: deposit intent for ¥%s, the quote's deposit is ¥%d", j.BookingID, amount, j.Deposit)
			}
		}
		want := 1
		if j.QCFails {
			want = 0
		}
		if len(got["balance"]) != want {
			balances.fail("booking %s (QC failed: %v): %d balance charges (%v)", j.BookingID, j.QCFails, len(got["balance"]), got["balance"])
		}
		for _, amount := range got["balance"] {
			if amount != fmt.Sprint(j.Balance) {
				balances.fail("booking %s: balance charged ¥%s, the quote's balance is ¥%d", j.BookingID, amount, j.Balance)
			}
		}
	}
	return nil
}

// payments: payment recorded what Stripe reported, once.
func (c *checker) payments(ctx context.Context) error {
	ch := c.add("payments received equal the quote's deposit and balance")
	for _, j := range c.journeys {
		if j.BookingID == "" {
			continue
		}
		ch.Checked++
		rows, err := c.db.Query(ctx, `SELECT stage, status, amount_received FROM payment.payments WHERE booking_id = $1`, j.BookingID)
		if err != nil {
			return err
		}
		got := map[string]int64{}
		for rows.Next() {
			var stage, status string
			var received int64
			if err := rows.Scan(&stage, &status, &received); err != nil {
				return err
			}
			if status == "succeeded" {
				got[stage] = received
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		want := map[string]int64{"deposit": j.Deposit}
		if !j.QCFails {
			want["balance"] = j.Balance
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			ch.fail("booking %s: received %v, want %v", j.BookingID, got, want)
		}
	}
	return nil
}

// ledger: every transaction balances, and each booking's accounts hold
// what it paid, posted once.
func (c *checker) ledger(ctx context.Context) error {
	balanced := c.add("the ledger is balanced (every transaction sums to zero per currency)")
	adds := c.add("each booking's money adds up in the ledger (one charge per payment, for its amount)")
	var txs, unbalanced int
	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM payment.ledger_transactions`).Scan(&txs); err != nil {
		return err
	}
	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM payment.ledger_entries
		GROUP BY transaction_id, currency HAVING sum(amount) <> 0) u`).Scan(&unbalanced); err != nil {
		return err
	}
	balanced.Checked = txs
	if unbalanced > 0 {
		balanced.fail("%d transactions do not balance", unbalanced)
	}
	for _, j := range c.journeys {
		if j.BookingID == "" {
			continue
		}
		adds.Checked++
		var charges int
		var deposit, balance int64
		if err := c.db.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM payment.ledger_transactions WHERE booking_id = $1 AND kind = 'charge'),
			       coalesce((SELECT -sum(amount) FROM payment.ledger_entries WHERE account = 'booking:' || $1 || ':deposit_received'), 0),
			       coalesce((SELECT -sum(amount) FROM payment.ledger_entries WHERE account = 'booking:' || $1 || ':balance_received'), 0)`,
			j.BookingID).Scan(&charges, &deposit, &balance); err != nil {
			return err
		}
		wantCharges, wantBalance := 2, j.Balance
		if j.QCFails {
			wantCharges, wantBalance = 1, 0
		}
		if charges != wantCharges || abs(deposit) != j.Deposit || abs(balance) != wantBalance {
			adds.fail("booking %s: %d charges, deposit received ¥%d, balance received ¥%d; want %d, ¥%d, ¥%d",
				j.BookingID, charges, abs(deposit), abs(balance), wantCharges, j.Deposit, wantBalance)
		}
	}
	return nil
}

// killed reports whether the named service was killed during the run.
func (c *checker) killed(name string) bool {
	for _, f := range c.faults {
		if f.Kind == killService && f.Target == name && f.Err == "" {
			return true
		}
	}
	return false
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// clinicNotices: each clinic notice exactly once per booking and cause, on
// the booking's own clinic's subjects.
func (c *checker) clinicNotices(ctx context.Context) error {
	ch := c.add("each clinic notice exactly once per booking and cause, on its clinic's subjects")
	stream, err := c.js.Stream(ctx, bus.StreamClinic)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	seen := map[string]map[notificationv1.NoticeKind]int{}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var n notificationv1.ClinicBookingNotice
		if err := proto.Unmarshal(m.Data, &n); err != nil {
			ch.fail("message %d on %s is not a notice: %v", seq, m.Subject, err)
			continue
		}
		b := n.GetBooking()
		if !strings.HasPrefix(m.Subject, "clinic.v1."+b.GetClinicId()+".") {
			ch.fail("notice %s for clinic %s published on %s", n.GetNoticeId(), b.GetClinicId(), m.Subject)
		}
		if seen[b.GetId()] == nil {
			seen[b.GetId()] = map[notificationv1.NoticeKind]int{}
		}
		seen[b.GetId()][n.GetKind()]++
	}
	for _, j := range c.journeys {
		if j.BookingID == "" {
			continue
		}
		ch.Checked++
		want := map[notificationv1.NoticeKind]int{notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED: 1}
		if !j.QCFails {
			want[notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION] = 1
			want[notificationv1.NoticeKind_NOTICE_KIND_ADMINISTERED] = 1
		}
		if got := seen[j.BookingID]; fmt.Sprint(got) != fmt.Sprint(want) {
			ch.fail("booking %s: notices %v, want %v", j.BookingID, got, want)
		}
	}
	return nil
}

// emails: each cause emailed once, every email sent, and no Message-ID
// delivered twice. The documented exception: a relay that took a message
// just before the notification process was killed, before it could record
// it; so a repeat fails the run only if notification was never killed.
func (c *checker) emails(ctx context.Context) error {
	once := c.add("each email once per cause, all sent")
	twice := c.add("no Message-ID delivered twice")
	twice.Exception = c.killed("notification")
	for _, j := range c.journeys {
		if j.BookingID == "" {
			continue
		}
		once.Checked++
		rows, err := c.db.Query(ctx, `SELECT template, status FROM notification.emails WHERE to_address = $1`, j.Email)
		if err != nil {
			return err
		}
		got := map[string]int{}
		for rows.Next() {
			var template, status string
			if err := rows.Scan(&template, &status); err != nil {
				return err
			}
			if status != "sent" {
				once.fail("booking %s: the %s email is %s", j.BookingID, template, status)
			}
			got[template]++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		want := []string{"booking_confirmed", "balance_charged", "administered"}
		if j.QCFails {
			want = []string{"booking_confirmed", "qc_failed"}
		}
		for _, t := range want {
			if got[t] != 1 {
				once.fail("booking %s: %d %s emails", j.BookingID, got[t], t)
			}
		}
		if got["quote_issued"] < 1 {
			once.fail("booking %s: no quote email", j.BookingID)
		}
	}
	ids := map[string]int{}
	for _, m := range c.s.mail.Messages() {
		ids[m.MessageID]++
	}
	twice.Checked = len(ids)
	keys := make([]string, 0, len(ids))
	for id := range ids {
		keys = append(keys, id)
	}
	sort.Strings(keys)
	for _, id := range keys {
		if ids[id] > 1 {
			twice.fail("%s delivered %d times", id, ids[id])
		}
	}
	return nil
}

// settle waits until the platform has caught up after the faults: every
// outbox drained, no email waiting, and every durable consumer with nothing
// pending or unacknowledged (an event whose handling failed during a fault
// waits out its redelivery backoff), three times in a row.
func settle(ctx context.Context, db *pgxpool.Pool, js jetstream.JetStream, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	calm := 0
	var last string
	for time.Since(start) < timeout {
		busy, err := backlog(ctx, db, js)
		if err == nil && busy == "" {
			if calm++; calm >= 3 {
				return time.Since(start), nil
			}
		} else {
			calm = 0
			last = busy
			if err != nil {
				last = err.Error()
			}
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return time.Since(start), fmt.Errorf("the platform did not settle within %s: %s", timeout, last)
}

// backlog says what the platform still has to do ("" when nothing).
func backlog(ctx context.Context, db *pgxpool.Pool, js jetstream.JetStream) (string, error) {
	var pending int
	if err := db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM booking.outbox WHERE published_at IS NULL) +
		(SELECT count(*) FROM payment.outbox WHERE published_at IS NULL) +
		(SELECT count(*) FROM quoting.outbox WHERE published_at IS NULL) +
		(SELECT count(*) FROM notification.outbox WHERE published_at IS NULL) +
		(SELECT count(*) FROM catalog.outbox WHERE published_at IS NULL) +
		(SELECT count(*) FROM notification.emails WHERE status = 'pending') +
		(SELECT count(*) FROM notification.webhook_deliveries WHERE status = 'pending')`).Scan(&pending); err != nil {
		return "", err
	}
	if pending > 0 {
		return fmt.Sprintf("%d outbox rows, emails or webhook deliveries pending", pending), nil
	}
	var busy []string
	for _, name := range []string{bus.StreamCatalog, bus.StreamQuoting, bus.StreamBooking, bus.StreamPayment} {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			return "", err
		}
		consumers := stream.ListConsumers(ctx)
		for info := range consumers.Info() {
			if n := info.NumPending + uint64(info.NumAckPending); n > 0 {
				busy = append(busy, fmt.Sprintf("%s has %d to handle", info.Name, n))
			}
		}
		if err := consumers.Err(); err != nil {
			return "", err
		}
	}
	return strings.Join(busy, ", "), nil
}

// connectJetStream reads the streams as the operator.
func connectJetStream(s *stack) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(s.natsURL(), nats.UserCredentials(s.operatorCreds()), nats.Name("chaos-checker"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
