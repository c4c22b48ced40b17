package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
)

type ledgerEntry struct {
	TransactionID int64       `json:"transaction_id"`
	Line          int         `json:"line"`
	Source        string      `json:"source"`
	Kind          string      `json:"kind"`
	BookingID     string      `json:"booking_id"`
	Account       string      `json:"account"`
	Amount        money.Money `json:"amount"`
	OccurredAt    time.Time   `json:"occurred_at"`
}

type accountTotal struct {
	Account string      `json:"account"`
	Debits  money.Money `json:"debits"`
	Credits money.Money `json:"credits"`
	Balance money.Money `json:"balance"`
}

type ledgerPage struct {
	Items      []ledgerEntry  `json:"items"`
	Totals     []accountTotal `json:"totals"`
	NextCursor string         `json:"next_cursor"`
}

func (s *service) ledger(t *testing.T, query url.Values) ledgerPage {
	t.Helper()
	r := s.call(t, "GET", "/v1/finance/ledger?"+query.Encode(), nil, nil)
	if r.Status != 200 {
		t.Fatalf("ledger %v: %d %s", query, r.Status, r.Raw)
	}
	var p ledgerPage
	r.decode(t, &p)
	return p
}

// balanceOf is an account's balance (debits − credits) in yen.
func (p ledgerPage) balanceOf(account string) int64 {
	for _, a := range p.Totals {
		if a.Account == account {
			return a.Balance.Amount
		}
	}
	return 0
}

// A payment that succeeds is one balanced transaction: Stripe holds the
// money, credited to the booking's stage, under the charge's id; the
// database refuses an unbalanced transaction, an edit, a deletion and a
// second transaction for the same charge, whoever asks.
func TestTheLedgerRecordsEachChargeOnceAndRefusesWhatDoesNotBalance(t *testing.T) {
	s := startPayment(t)
	ctx := context.Background()
	bookingID := uuid.NewString()
	d := s.createDeposit(t, bookingID, depositYen, balanceYen)
	paid := paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard)
	paid["latest_charge"] = "ch_deposit_" + bookingID[:8]
	s.deliver(t, "evt_paid_"+bookingID, "payment_intent.succeeded", time.Now(), paid)
	// Redelivered, and sent again under another event id: still one.
	s.deliver(t, "evt_paid_"+bookingID, "payment_intent.succeeded", time.Now(), paid)
	s.deliver(t, "evt_paid_again_"+bookingID, "payment_intent.succeeded", time.Now(), paid)

	page := s.ledger(t, url.Values{"account": {"booking:" + bookingID + ":"}})
	if len(page.Items) != 1 {
		t.Fatalf("the booking's entries: %+v", page.Items)
	}
	e := page.Items[0]
	if e.Source != "ch_deposit_"+bookingID[:8] || e.Kind != "charge" || e.Account != "booking:"+bookingID+":deposit_received" ||
		e.Amount != money.Yen(-depositYen) || e.BookingID != bookingID {
		t.Fatalf("the deposit's entry: %+v", e)
	}
	all := s.ledger(t, url.Values{})
	if got := all.balanceOf("stripe:balance"); got != depositYen {
		t.Fatalf("stripe:balance %d, want %d", got, depositYen)
	}

	exec := func(sql string, args ...any) error {
		tx, err := s.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	newTx := func(source string, amounts ...int64) string {
		sql := fmt.Sprintf(`WITH t AS (INSERT INTO payment.ledger_transactions (source, kind, occurred_at) VALUES (%s, 'fee', now()) RETURNING id)
			INSERT INTO payment.ledger_entries (transaction_id, line, account, amount, currency) SELECT t.id, l, a, m, 'JPY' FROM t, (VALUES `,
			pgQuote(source))
		var rows []string
		for i, a := range amounts {
			rows = append(rows, fmt.Sprintf("(%d, %s, %d)", i+1, pgQuote([]string{"stripe:fees", "stripe:balance", "bank"}[i%3]), a))
		}
		return sql + strings.Join(rows, ", ") + ") AS e(l, a, m)"
	}
	for _, c := range []struct {
		what, sql, want string
	}{
		{"an unbalanced transaction", newTx("txn_off", 300, -299), "does not balance"},
		{"a transaction of one entry", newTx("txn_alone", 300), "fewer than two"},
		{"a second transaction for the charge", newTx("ch_deposit_"+bookingID[:8], 300, -300), "ledger_transactions_source"},
		{"an edited amount", `UPDATE payment.ledger_entries SET amount = amount + 1`, "append-only"},
		{"a deleted entry", `DELETE FROM payment.ledger_entries`, "append-only"},
		{"a deleted transaction", `DELETE FROM payment.ledger_transactions`, "append-only"},
		{"a truncated ledger", `TRUNCATE payment.ledger_entries, payment.ledger_transactions`, "append-only"},
	} {
		if err := exec(c.sql); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.what, err, c.want)
		}
	}
	if err := exec(newTx("txn_fee_ok", 300, -300)); err != nil {
		t.Fatalf("a balanced transaction: %v", err)
	}

	t.Run("finance pages through the ledger and bad queries are refused", func(t *testing.T) {
		first := s.ledger(t, url.Values{"limit": {"1"}})
		if len(first.Items) != 1 || first.NextCursor == "" {
			t.Fatalf("first page %+v", first)
		}
		second := s.ledger(t, url.Values{"limit": {"10"}, "cursor": {first.NextCursor}})
		if len(second.Items) != 3 || second.NextCursor != "" || second.Items[0].TransactionID == first.Items[0].TransactionID &&
			second.Items[0].Line == first.Items[0].Line {
			t.Fatalf("second page %+v", second)
		}
		future := s.ledger(t, url.Values{"from": {time.Now().Add(time.Hour).Format(time.RFC3339)}})
		if len(future.Items) != 0 || len(future.Totals) != 0 {
			t.Fatalf("entries from the future: %+v", future)
		}
		for q, field := range map[string]string{"limit=0": "limit", "cursor=abc": "cursor", "from=yesterday": "from",
			"from=2026-11-26&to=2026-11-25": "to", "acount=x": "acount"} {
			r := s.call(t, "GET", "/v1/finance/ledger?"+q, nil, nil)
			if r.Status != 422 || !r.problem(t).names(field) {
				t.Errorf("%s: %d %s", q, r.Status, r.Raw)
			}
		}
	})
}

// A property of the ledger, over many random histories: whatever order
// Stripe's events arrive in, however often each is delivered, the ledger
// holds exactly one balanced charge per payment that succeeded, for the
// amount received, and nothing for payments that did not; each dispute's
// money once per balance transaction; each booking's money adds up, and
// Stripe's balance is what was received less what disputes kept.
func TestTheLedgerHoldsAcrossShuffledAndDuplicatedEvents(t *testing.T) {
	s := startPayment(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	type delivery struct {
		id, typ string
		at      time.Time
		object  map[string]any
	}
	const bookings = 24
	paidBookings := map[string]int64{}
	disputedBookings := map[string]int64{} // what a dispute took and kept
	disputes := 0
	var deliveries []delivery
	start := time.Now().Add(-time.Hour)
	for i := range bookings {
		bookingID := uuid.NewString()
		deposit := int64(100_000 + rng.IntN(2_000_000))
		d := s.createDeposit(t, bookingID, deposit, balanceYen)
		at := start.Add(time.Duration(i) * time.Minute)
		step := func(typ string, object map[string]any) {
			at = at.Add(time.Second)
			deliveries = append(deliveries, delivery{id: fmt.Sprintf("evt_%s_%d", bookingID[:8], len(deliveries)), typ: typ, at: at, object: object})
		}
		// A history: maybe a declined attempt, maybe processing, then
		// (usually) success, sometimes a cancellation instead.
		if rng.IntN(3) == 0 {
			failed := intentIn(d, "requires_payment_method")
			failed["last_payment_error"] = map[string]any{"code": "card_declined", "message": "Your card was declined."}
			step("payment_intent.payment_failed", failed)
		}
		if rng.IntN(2) == 0 {
			step("payment_intent.processing", intentIn(d, "processing"))
		}
		switch rng.IntN(6) {
		case 0:
			step("payment_intent.canceled", intentIn(d, "canceled"))
		case 1:
			// never completed
		default:
			paid := paidIntent(d.PaymentIntentID, d.PaymentID, deposit, savedCard)
			chargeID := "ch_" + strings.ReplaceAll(bookingID, "-", "")[:20]
			if rng.IntN(4) > 0 {
				paid["latest_charge"] = chargeID
			}
			step("payment_intent.succeeded", paid)
			paidBookings[bookingID] = deposit
			// A chargeback on some: open, won or lost. Its events may
			// arrive before the payment's own (found by the intent).
			if rng.IntN(3) == 0 {
				disputes++
				dpID := "dp_" + strings.ReplaceAll(bookingID, "-", "")[:16]
				withdrawn := movement("txn_w_"+dpID, -deposit, 1_500, at)
				step("charge.dispute.created", dispute(dpID, chargeID, d.PaymentIntentID, "needs_response", deposit, withdrawn))
				disputedBookings[bookingID] = deposit
				switch rng.IntN(3) {
				case 1:
					reinstated := movement("txn_r_"+dpID, deposit, 0, at.Add(time.Minute))
					step("charge.dispute.closed", dispute(dpID, chargeID, d.PaymentIntentID, "won", deposit, withdrawn, reinstated))
					disputedBookings[bookingID] = 0
				case 2:
					step("charge.dispute.closed", dispute(dpID, chargeID, d.PaymentIntentID, "lost", deposit, withdrawn))
				}
			}
		}
	}
	// Shuffled, a third of them delivered twice (some much later).
	var stream []delivery
	for _, d := range deliveries {
		stream = append(stream, d)
		if rng.IntN(3) == 0 {
			stream = append(stream, d)
		}
	}
	rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	for _, d := range stream {
		payload, sig := stripeEvent(t, d.id, d.typ, d.at, d.object)
		if r := s.webhook(t, payload, sig); r.Status != 200 {
			t.Fatalf("webhook %s: %d %s", d.id, r.Status, r.Raw)
		}
	}

	// Invariants, read from the system of record.
	ctx := context.Background()
	var unbalanced int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT transaction_id, currency FROM payment.ledger_entries
		GROUP BY transaction_id, currency HAVING sum(amount) <> 0) off`).Scan(&unbalanced); err != nil {
		t.Fatal(err)
	}
	if unbalanced != 0 {
		t.Errorf("%d unbalanced transactions", unbalanced)
	}
	rows, err := s.db.Query(ctx, `SELECT booking_id::text, count(*) FROM payment.ledger_transactions WHERE kind = 'charge' GROUP BY booking_id`)
	if err != nil {
		t.Fatal(err)
	}
	charges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		booking string
		n       int
	}, error) {
		var c struct {
			booking string
			n       int
		}
		return c, r.Scan(&c.booking, &c.n)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range charges {
		if c.n != 1 {
			t.Errorf("booking %s has %d charge transactions", c.booking, c.n)
		}
		if _, paid := paidBookings[c.booking]; !paid {
			t.Errorf("booking %s never paid, yet has a charge", c.booking)
		}
	}
	if len(charges) != len(paidBookings) {
		t.Errorf("%d bookings with a charge, %d paid", len(charges), len(paidBookings))
	}
	all := s.ledger(t, url.Values{"limit": {"500"}})
	var total int64
	for bookingID, deposit := range paidBookings {
		total += deposit
		if got := -all.balanceOf("booking:" + bookingID + ":deposit_received"); got != deposit {
			t.Errorf("booking %s: deposit_received %d, want %d", bookingID, got, deposit)
		}
		if p, _ := s.payment(t, bookingID, "deposit"); p.Status != "succeeded" || p.AmountReceived.Amount != deposit {
			t.Errorf("booking %s: payment %+v", bookingID, p)
		}
	}
	var lost int64
	for bookingID, kept := range disputedBookings {
		lost += kept
		if got := all.balanceOf("booking:" + bookingID + ":disputed"); got != kept {
			t.Errorf("booking %s: disputed %d, want %d", bookingID, got, kept)
		}
	}
	if got := all.balanceOf("stripe:dispute_fees"); got != int64(disputes)*1_500 {
		t.Errorf("dispute fees %d, want %d", got, int64(disputes)*1_500)
	}
	if got := all.balanceOf("stripe:balance"); got != total-lost-int64(disputes)*1_500 {
		t.Errorf("stripe:balance %d, want %d received less %d kept by disputes and their fees", got, total, lost)
	}
}

func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
