package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// dispute is a Stripe dispute object on a charge, with the balance
// transactions that moved its money.
func dispute(id, chargeID, intentID, status string, amount int64, moves ...map[string]any) map[string]any {
	d := map[string]any{"id": id, "object": "dispute", "amount": amount, "currency": "jpy", "charge": chargeID,
		"status": status, "reason": "fraudulent", "balance_transactions": moves}
	if intentID != "" {
		d["payment_intent"] = intentID
	}
	return d
}

func movement(id string, amount, fee int64, at time.Time) map[string]any {
	return map[string]any{"id": id, "object": "balance_transaction", "amount": amount, "fee": fee, "currency": "jpy",
		"created": at.Unix(), "type": "adjustment", "reporting_category": "dispute"}
}

type disputeView struct {
	ID     string      `json:"id"`
	Status string      `json:"status"`
	Amount money.Money `json:"amount"`
	Fee    money.Money `json:"fee"`
	Holds  bool        `json:"holds_settlement"`
}

// A chargeback flags the booking for finance, holds the clinic's
// settlement and shows the amount and Stripe's fee; the money it moves is
// posted once per balance transaction, whatever order and how often the
// events arrive; a won dispute releases the hold and the money returns.
func TestADisputeHoldsTheSettlementUntilItIsWon(t *testing.T) {
	s := startPayment(t)
	bookingID := "0" + strings.Repeat("1", 7) + "-0000-4000-8000-" + strings.Repeat("2", 12)
	d := s.createDeposit(t, bookingID, depositYen, balanceYen)
	paid := paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard)
	paid["latest_charge"] = "ch_disputed"
	s.deliver(t, "evt_paid_disputed", "payment_intent.succeeded", time.Now(), paid)

	now := time.Now()
	withdrawn := movement("txn_dispute_withdrawn", -depositYen, 1_500, now)
	opened := dispute("dp_1", "ch_disputed", "", "needs_response", depositYen, withdrawn)
	if out := s.deliver(t, "evt_dp_created", "charge.dispute.created", now, opened); out != "applied" {
		t.Fatalf("dispute created: %s", out)
	}
	// Redelivered, and an update carrying the same balance transaction.
	s.deliver(t, "evt_dp_created", "charge.dispute.created", now, opened)
	s.deliver(t, "evt_dp_updated", "charge.dispute.updated", now.Add(time.Minute),
		dispute("dp_1", "ch_disputed", "", "under_review", depositYen, withdrawn))

	var fin struct {
		Disputes       []disputeView `json:"disputes"`
		SettlementHeld bool          `json:"settlement_held"`
	}
	s.call(t, "GET", "/v1/finance/bookings/"+bookingID, nil, nil).decode(t, &fin)
	if len(fin.Disputes) != 1 || fin.Disputes[0].Status != "open" || fin.Disputes[0].Amount != money.Yen(depositYen) ||
		fin.Disputes[0].Fee != money.Yen(1_500) || !fin.SettlementHeld {
		t.Fatalf("finance after the dispute opened: %+v", fin)
	}
	var pays struct {
		Items []struct {
			Stage   string `json:"stage"`
			Dispute *struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"dispute"`
		}
	}
	s.call(t, "GET", "/internal/v1/payments?booking_id="+bookingID, nil, nil).decode(t, &pays)
	if len(pays.Items) != 1 || pays.Items[0].Dispute == nil || pays.Items[0].Dispute.ID != "dp_1" || pays.Items[0].Dispute.Status != "open" {
		t.Fatalf("the booking's payments do not flag the dispute: %+v", pays.Items)
	}
	var open struct{ Items []disputeView }
	s.call(t, "GET", "/v1/finance/disputes?status=open", nil, nil).decode(t, &open)
	if len(open.Items) != 1 || open.Items[0].ID != "dp_1" {
		t.Fatalf("open disputes: %+v", open.Items)
	}
	ledger := s.ledger(t, url.Values{})
	if ledger.balanceOf("booking:"+bookingID+":disputed") != depositYen || ledger.balanceOf("stripe:dispute_fees") != 1_500 ||
		ledger.balanceOf("stripe:balance") != -1_500 {
		t.Fatalf("after the withdrawal: disputed %d, fees %d, stripe %d", ledger.balanceOf("booking:"+bookingID+":disputed"),
			ledger.balanceOf("stripe:dispute_fees"), ledger.balanceOf("stripe:balance"))
	}

	// Won: the money is reinstated (Stripe keeps its fee).
	reinstated := movement("txn_dispute_reinstated", depositYen, 0, now.Add(time.Hour))
	s.deliver(t, "evt_dp_closed", "charge.dispute.closed", now.Add(time.Hour),
		dispute("dp_1", "ch_disputed", "", "won", depositYen, withdrawn, reinstated))
	// A late "under review" changes nothing.
	s.deliver(t, "evt_dp_late", "charge.dispute.updated", now.Add(30*time.Minute),
		dispute("dp_1", "ch_disputed", "", "under_review", depositYen, withdrawn))
	s.call(t, "GET", "/v1/finance/bookings/"+bookingID, nil, nil).decode(t, &fin)
	if fin.Disputes[0].Status != "won" || fin.SettlementHeld || fin.Disputes[0].Holds {
		t.Fatalf("finance after the dispute was won: %+v", fin)
	}
	ledger = s.ledger(t, url.Values{})
	if ledger.balanceOf("booking:"+bookingID+":disputed") != 0 || ledger.balanceOf("stripe:balance") != depositYen-1_500 {
		t.Fatalf("after the reinstatement: disputed %d, stripe %d", ledger.balanceOf("booking:"+bookingID+":disputed"),
			ledger.balanceOf("stripe:balance"))
	}

	// A dispute on a charge the platform never made is kept, not applied;
	// one naming only its intent is found by it.
	if out := s.deliver(t, "evt_dp_stranger", "charge.dispute.created", now, dispute("dp_2", "", "pi_not_ours", "needs_response", 100)); out != "unknown_payment_intent" {
		t.Fatalf("a stranger's dispute: %s", out)
	}
	if r := s.call(t, "GET", "/v1/finance/disputes?status=pending", nil, nil); r.Status != 422 || !r.problem(t).names("status") {
		t.Fatalf("a bad status: %d %s", r.Status, r.Raw)
	}
}
