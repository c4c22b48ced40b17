package server_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/subject"
)

const refundConsumer = "payment-refunds"

func cancelled(bookingID string, refund, retained int64) *bookingv1.BookingCancelled {
	return &bookingv1.BookingCancelled{Booking: bookingSnapshot(bookingID, "cancelled", balanceYen),
		Reason: bookingv1.CancellationReason_CANCELLATION_REASON_PATIENT, Refund: yen(refund), Retained: yen(retained),
		Explanation: "cancelled before harvest: refunded less the ¥100,000 cancellation fee", PolicyVersion: 1,
		CancelledAt: timestamppb.Now()}
}

// refundRow is a refund as stored.
type refundRow struct {
	ID, Stage, Status, StripeID string
	Amount                      int64
}

func (s *service) refunds(t *testing.T, bookingID string) []refundRow {
	t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT id::text, stage, status, COALESCE(stripe_refund_id, ''), amount
		FROM payment.refunds WHERE booking_id = $1 ORDER BY stage DESC`, bookingID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []refundRow
	for rows.Next() {
		var r refundRow
		if err := rows.Scan(&r.ID, &r.Stage, &r.Status, &r.StripeID, &r.Amount); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// refundCalls are the refunds payment asked Stripe for about a booking.
func (s *service) refundCalls(bookingID string) []url.Values {
	var out []url.Values
	for _, r := range s.stripe.Requests() {
		if r.Method == "POST" && r.Path == "/v1/refunds" && strings.HasPrefix(r.IdempotencyKey, "booking:"+bookingID+":refund:") {
			out = append(out, r.Form)
		}
	}
	return out
}

func TestACancelledBookingIsRefundedOnceUnderItsPolicy(t *testing.T) {
	s := startPayment(t)

	t.Run("before the balance: the deposit less what is retained, and the balance is never charged", func(t *testing.T) {
		id, d := s.paidDeposit(t)
		eventID := "booking:" + id + ":cancelled"
		s.waitHandled(t, refundConsumer, s.publish(t, eventID, subject.Booking(clinicID, subject.Cancelled), cancelled(id, 1_800_000, 100_000)))
		calls := s.refundCalls(id)
		if len(calls) != 1 || calls[0].Get("amount") != "1800000" || calls[0].Get("payment_intent") != d.PaymentIntentID ||
			calls[0].Get("reason") != "requested_by_customer" || calls[0].Get("metadata[booking_id]") != id {
			t.Fatalf("refunds asked of Stripe: %v", calls)
		}
		rows := s.refunds(t, id)
		if len(rows) != 1 || rows[0].Status != "succeeded" || rows[0].Stage != "deposit" || rows[0].Amount != 1_800_000 ||
			!strings.HasPrefix(rows[0].StripeID, "re_") || calls[0].Get("metadata[refund_id]") != rows[0].ID {
			t.Fatalf("refunds %+v", rows)
		}
		// Redelivered, and announced again under the same event id: no
		// second refund.
		s.waitHandled(t, refundConsumer, s.redeliver(t, eventID, subject.Booking(clinicID, subject.Cancelled), cancelled(id, 1_800_000, 100_000)))
		if n := len(s.refundCalls(id)); n != 1 {
			t.Fatalf("Stripe was asked for %d refunds, want 1", n)
		}
		ledger := s.ledger(t, url.Values{"account": {"booking:" + id + ":"}})
		if got := ledger.balanceOf("booking:" + id + ":refunded"); got != 1_800_000 {
			t.Errorf("booking:refunded %d", got)
		}
		if held := ledger.balanceOf("booking:"+id+":deposit_received") + ledger.balanceOf("booking:"+id+":refunded"); held != -100_000 {
			t.Errorf("the booking holds %d, want the ¥100,000 retained", -held)
		}
		var refunded []string
		for _, e := range s.paymentEvents(t, id) {
			if e.RefundSucceeded != nil {
				refunded = append(refunded, e.Subject)
				if e.RefundSucceeded.GetAmount().GetAmount() != 1_800_000 || e.RefundSucceeded.GetStripeRefundId() != rows[0].StripeID {
					t.Errorf("refund event %v", e.RefundSucceeded)
				}
			}
		}
		if strings.Join(refunded, ",") != "payment.v1."+clinicID+".refund.succeeded" {
			t.Fatalf("refund events %v", refunded)
		}
		// The balance will never be charged.
		s.waitHandled(t, balanceConsumer, s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		if n := len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")); n != 0 {
			t.Fatalf("a cancelled booking's balance was charged %d times", n)
		}
		if f := s.finance(t, id); f.Balance.Status != "cancelled" {
			t.Fatalf("balance %+v", f.Balance)
		}
	})

	t.Run("after the balance: the balance refunded first, then the deposit", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		s.waitHandled(t, balanceConsumer, s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		bal, _ := s.payment(t, id, "balance")
		paid := paidIntent(bal.PaymentIntentID, bal.PaymentID, balanceYen, savedCard)
		paid["metadata"] = map[string]any{"payment_id": bal.PaymentID, "stage": "balance"}
		s.deliver(t, "evt_balance_"+id, "payment_intent.succeeded", time.Now(), paid)
		// Culture started: its ¥610,000 is retained, ¥2,500,000 refunded.
		s.waitHandled(t, refundConsumer, s.publish(t, "booking:"+id+":cancelled", subject.Booking(clinicID, subject.Cancelled), cancelled(id, 2_500_000, 610_000)))
		rows := s.refunds(t, id)
		if len(rows) != 2 || rows[0].Stage != "deposit" || rows[0].Amount != 1_290_000 || rows[1].Stage != "balance" || rows[1].Amount != balanceYen {
			t.Fatalf("refunds %+v, want the whole balance and ¥1,290,000 of the deposit", rows)
		}
		ledger := s.ledger(t, url.Values{"account": {"booking:" + id + ":"}})
		if got := ledger.balanceOf("booking:" + id + ":refunded"); got != 2_500_000 {
			t.Errorf("booking:refunded %d", got)
		}
	})

	t.Run("a refund beyond what was received is refused without asking Stripe", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		s.waitHandled(t, refundConsumer, s.publish(t, "booking:"+id+":cancelled", subject.Booking(clinicID, subject.Cancelled), cancelled(id, 2_000_000, 0)))
		if n := len(s.refundCalls(id)); n != 0 {
			t.Fatalf("%d refunds asked for", n)
		}
		if dl := s.deadLetters(t, id); len(dl) != 1 || !strings.Contains(dl[0].Detail, "exceeds") {
			t.Fatalf("%d dead letters, want the one refund that exceeds", len(dl))
		}
	})

	t.Run("Stripe's refund events, early, late, twice or failing after success, change the books once", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		// Stripe answers the refund slowly: its webhook arrives first.
		release := s.stripe.HoldNext("POST", "/v1/refunds")
		seq := s.publish(t, "booking:"+id+":cancelled", subject.Booking(clinicID, subject.Cancelled), cancelled(id, 1_000_000, 900_000))
		var rows []refundRow
		devtest.Eventually(t, "the refund to be recorded", func() bool { rows = s.refunds(t, id); return len(rows) == 1 })
		refund := map[string]any{"id": "re_early_" + id[:8], "object": "refund", "amount": 1_000_000, "currency": "jpy",
			"status": "succeeded", "payment_intent": "pi_x", "metadata": map[string]any{"refund_id": rows[0].ID}}
		if out := s.deliver(t, "evt_refund_"+id, "refund.updated", time.Now(), refund); out != "applied" {
			t.Fatalf("early refund event: %s", out)
		}
		release()
		s.waitHandled(t, refundConsumer, seq)
		if out := s.deliver(t, "evt_refund_"+id, "refund.updated", time.Now(), refund); out != "duplicate" {
			t.Fatalf("redelivered refund event: %s", out)
		}
		rows = s.refunds(t, id)
		if rows[0].Status != "succeeded" || rows[0].StripeID != "re_early_"+id[:8] {
			t.Fatalf("refund %+v: Stripe's answer must not override the webhook", rows[0])
		}
		ledger := s.ledger(t, url.Values{"account": {"booking:" + id + ":refunded"}})
		if len(ledger.Items) != 1 || ledger.balanceOf("booking:"+id+":refunded") != 1_000_000 {
			t.Fatalf("refund postings %+v", ledger.Items)
		}

		// The bank returned it: the refund failed after succeeding.
		refund["status"], refund["failure_reason"] = "failed", "expired_or_canceled_card"
		if out := s.deliver(t, "evt_refund_failed_"+id, "refund.failed", time.Now().Add(time.Minute), refund); out != "applied" {
			t.Fatalf("failed refund event: %s", out)
		}
		ledger = s.ledger(t, url.Values{"account": {"booking:" + id + ":refunded"}})
		if len(ledger.Items) != 2 || ledger.balanceOf("booking:"+id+":refunded") != 0 {
			t.Fatalf("after the failure, refund postings %+v", ledger.Items)
		}
		var kinds []string
		for _, e := range s.paymentEvents(t, id) {
			switch {
			case e.RefundSucceeded != nil:
				kinds = append(kinds, "succeeded")
			case e.RefundFailed != nil:
				kinds = append(kinds, "failed:"+e.RefundFailed.GetFailureReason())
			}
		}
		if strings.Join(kinds, ",") != "succeeded,failed:expired_or_canceled_card" {
			t.Fatalf("refund events %v", kinds)
		}
		// An event for a refund made outside the platform is kept, not applied.
		other := map[string]any{"id": "re_dashboard", "object": "refund", "amount": 5_000, "currency": "jpy", "status": "succeeded"}
		if out := s.deliver(t, "evt_dashboard_"+id, "refund.created", time.Now(), other); out != "unknown_payment_intent" {
			t.Fatalf("a refund not ours: %s", out)
		}
		if got := s.ledger(t, url.Values{}).balanceOf("booking:" + id + ":refunded"); got != 0 {
			t.Fatalf("booking:refunded %d", got)
		}
	})
}
