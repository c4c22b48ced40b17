package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/subject"
)

type reconciliation struct {
	Days []struct {
		Day      string      `json:"day"`
		Received money.Money `json:"received"`
		Refunded money.Money `json:"refunded"`
		Fees     money.Money `json:"fees"`
		PaidOut  money.Money `json:"paid_out"`
	} `json:"days"`
	Bookings []struct {
		BookingID string      `json:"booking_id"`
		Expected  money.Money `json:"expected"`
		Received  money.Money `json:"received"`
		Refunded  money.Money `json:"refunded"`
		Fees      money.Money `json:"fees"`
		Net       money.Money `json:"net"`
	} `json:"bookings"`
	Categories []struct {
		Category string `json:"reporting_category"`
		Count    int64  `json:"count"`
	} `json:"categories"`
	Mismatches []struct {
		Kind         string `json:"kind"`
		Source       string `json:"source"`
		LedgerAmount int64  `json:"ledger_amount"`
		StripeAmount int64  `json:"stripe_amount"`
	} `json:"mismatches"`
	Totals struct {
		Reconciled bool `json:"reconciled"`
	} `json:"totals"`
}

// paidWithCharge books a deposit and has Stripe report it paid by charge
// chargeID; with booked, the proxy's balance records the charge too.
func (s *service) paidWithCharge(t *testing.T, chargeID string, booked bool) string {
	t.Helper()
	id := uuid.NewString()
	d := s.createDeposit(t, id, depositYen, balanceYen)
	paid := paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard)
	paid["latest_charge"] = chargeID
	s.deliver(t, "evt_"+chargeID, "payment_intent.succeeded", time.Now(), paid)
	if booked {
		s.stripe.ChargeSucceeded(chargeID, depositYen, time.Now())
	}
	return id
}

func (s *service) importBalance(t *testing.T) int {
	t.Helper()
	r := s.call(t, "POST", "/v1/finance/reconciliation/import", nil, nil)
	var out struct{ Imported int }
	r.decode(t, &out)
	if r.Status != 200 {
		t.Fatalf("import: %d %s", r.Status, r.Raw)
	}
	return out.Imported
}

func (s *service) reconcile(t *testing.T) reconciliation {
	t.Helper()
	day := time.Now().In(time.FixedZone("JST", 9*3600)).Format(time.DateOnly)
	r := s.call(t, "GET", "/v1/finance/reconciliation?from="+day+"&to="+day, nil, nil)
	if r.Status != 200 {
		t.Fatalf("reconciliation: %d %s", r.Status, r.Raw)
	}
	var rec reconciliation
	r.decode(t, &rec)
	return rec
}

// Stripe's balance transactions are imported once each; Stripe's fee on
// each charge and each payout reach the ledger; the report shows each
// booking's money adding up; and each way the ledger and Stripe can
// disagree is listed.
func TestReconciliationMatchesTheLedgerWithStripe(t *testing.T) {
	s := startPayment(t)

	// A paid deposit, and one refunded but for ¥100,000 after a cancellation.
	paid := s.paidWithCharge(t, "ch_rec_paid", true)
	refunded := s.paidWithCharge(t, "ch_rec_refunded", true)
	s.waitHandled(t, refundConsumer, s.publish(t, "booking:"+refunded+":cancelled", subject.Booking(clinicID, subject.Cancelled),
		cancelled(refunded, depositYen-100_000, 100_000)))
	payout := s.stripe.PayOut(1_000_000, time.Now())

	if n := s.importBalance(t); n != 4 {
		t.Fatalf("imported %d balance transactions, want 4 (2 charges, a refund, a payout)", n)
	}
	if n := s.importBalance(t); n != 0 {
		t.Fatalf("a second import found %d new", n)
	}
	fee := devstack.JapanCardFee(depositYen)
	ledger := s.ledger(t, url.Values{})
	if ledger.balanceOf("stripe:fees") != 2*fee || ledger.balanceOf("bank") != 1_000_000 {
		t.Fatalf("fees %d (want %d), bank %d", ledger.balanceOf("stripe:fees"), 2*fee, ledger.balanceOf("bank"))
	}
	if got := s.ledger(t, url.Values{"account": {"bank"}}); len(got.Items) != 1 || got.Items[0].Source != payout {
		t.Fatalf("payout posting %+v", got.Items)
	}

	rec := s.reconcile(t)
	if !rec.Totals.Reconciled || len(rec.Mismatches) != 0 {
		t.Fatalf("mismatches on a clean account: %+v", rec.Mismatches)
	}
	byID := map[string]int{}
	for i, b := range rec.Bookings {
		byID[b.BookingID] = i
	}
	a, b := rec.Bookings[byID[paid]], rec.Bookings[byID[refunded]]
	if a.Received != money.Yen(depositYen) || a.Fees != money.Yen(fee) || a.Net != money.Yen(depositYen) ||
		a.Expected != money.Yen(depositYen+balanceYen) {
		t.Errorf("paid booking %+v", a)
	}
	// deposit + balance − refunds − dispute losses = net collected.
	if b.Received != money.Yen(depositYen) || b.Refunded != money.Yen(depositYen-100_000) || b.Net != money.Yen(100_000) ||
		b.Expected != money.Yen(depositYen) {
		t.Errorf("cancelled booking %+v", b)
	}
	if len(rec.Days) != 1 || rec.Days[0].Received != money.Yen(2*depositYen) || rec.Days[0].Fees != money.Yen(2*fee) ||
		rec.Days[0].PaidOut != money.Yen(1_000_000) || rec.Days[0].Refunded != money.Yen(depositYen-100_000) {
		t.Errorf("days %+v", rec.Days)
	}
	categories := map[string]int64{}
	for _, c := range rec.Categories {
		categories[c.Category] = c.Count
	}
	if categories["charge"] != 2 || categories["refund"] != 1 || categories["payout"] != 1 {
		t.Errorf("categories %+v", rec.Categories)
	}

	t.Run("every kind of disagreement is listed", func(t *testing.T) {
		s.paidWithCharge(t, "ch_rec_lost", false)                                       // Stripe never booked it
		s.stripe.AddBalanceTransaction("charge", "ch_rec_stranger", 50_000, time.Now()) // made outside the platform
		s.paidWithCharge(t, "ch_rec_short", true)
		s.stripe.ChangeBalanceTransaction("ch_rec_short", depositYen-1) // one yen short
		s.importBalance(t)
		got := map[string]string{}
		for _, m := range s.reconcile(t).Mismatches {
			got[m.Source] = m.Kind
		}
		want := map[string]string{"ch_rec_lost": "missing_at_stripe", "ch_rec_stranger": "missing_in_ledger", "ch_rec_short": "amount_differs"}
		for source, kind := range want {
			if got[source] != kind {
				t.Errorf("%s: %q, want %q (all: %v)", source, got[source], kind, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("mismatches %v, want exactly %v", got, want)
		}
		day := time.Now().In(time.FixedZone("JST", 9*3600)).Format(time.DateOnly)
		r := s.call(t, "GET", "/v1/finance/reconciliation?from="+day+"&to="+day, nil, map[string]string{"Accept": "text/csv"})
		if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(string(r.Raw), ",amount_differs,ch_rec_short,1900000,1899999") {
			t.Errorf("CSV: %d %s\n%s", r.Status, r.Header.Get("Content-Type"), r.Raw)
		}
	})

	for q, field := range map[string]string{"from=2026-11-26": "to", "from=2026-11-26&to=yesterday": "to",
		"from=2026-11-26&to=2026-11-20": "to", "from=2025-01-01&to=2026-11-26": "to", "day=2026-11-26": "day"} {
		r := s.call(t, "GET", "/v1/finance/reconciliation?"+q, nil, nil)
		if r.Status != 422 || !r.problem(t).names(field) {
			t.Errorf("%s: %d %s", q, r.Status, r.Raw)
		}
	}
}
