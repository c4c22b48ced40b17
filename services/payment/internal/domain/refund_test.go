package domain

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

func paid(id string, s Stage, yen int64) Payment {
	return Payment{ID: id, BookingID: "b1", Stage: s, Status: Succeeded, AmountReceived: money.Yen(yen), PaymentIntentID: "pi_" + id}
}

func TestRefundsTakeTheBalanceFirstAndNeverMoreThanWasReceived(t *testing.T) {
	n := 0
	newID := func() string { n++; return "r" + strconv.Itoa(n) }
	pays := []Payment{paid("dep", Deposit, 1_900_000), paid("bal", Balance, 1_210_000)}
	got, err := PlanRefunds("c1", money.Yen(2_500_000), pays, nil, newID, t0)
	if err != nil || len(got) != 2 || got[0].PaymentID != "bal" || got[0].Amount != money.Yen(1_210_000) ||
		got[1].PaymentID != "dep" || got[1].Amount != money.Yen(1_290_000) || got[1].PaymentIntentID != "pi_dep" {
		t.Fatalf("%+v %v", got, err)
	}
	// ¥1,000,000 of the deposit went back before: ¥900,000 remain.
	if _, err := PlanRefunds("c2", money.Yen(1_000_000), pays[:1], map[string]money.Money{"dep": money.Yen(1_000_000)}, newID, t0); !errors.Is(err, ErrRefundExceedsReceived) {
		t.Fatalf("beyond what remains: %v", err)
	}
	// A payment that did not succeed refunds nothing.
	failed := paid("dep", Deposit, 0)
	failed.Status = Failed
	if _, err := PlanRefunds("c3", money.Yen(1), []Payment{failed}, nil, newID, t0); !errors.Is(err, ErrRefundExceedsReceived) {
		t.Fatalf("from a failed payment: %v", err)
	}
	if got, err := PlanRefunds("c4", money.Yen(0), pays, nil, newID, t0); err != nil || len(got) != 0 {
		t.Fatalf("nothing to refund: %+v %v", got, err)
	}
}

func TestARefundFollowsStripeButStaysFailedOnceFailed(t *testing.T) {
	r := Refund{ID: "r1", Status: RefundCreating, Amount: money.Yen(100)}
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	if out := r.Apply(RefundState{ID: "re_1", Status: RefundPending, At: at(1)}); out != RefundNoChange || r.Status != RefundPending || r.StripeRefundID != "re_1" {
		t.Fatalf("pending: %v %+v", out, r)
	}
	if out := r.Apply(RefundState{ID: "re_1", Status: RefundSucceeded, At: at(2)}); out != RefundBecameSucceeded || r.SucceededAt == nil {
		t.Fatalf("succeeded: %v %+v", out, r)
	}
	if out := r.Apply(RefundState{ID: "re_1", Status: RefundPending, At: at(3)}); out != RefundNoChange || r.Status != RefundSucceeded {
		t.Fatalf("a late pending undid success: %+v", r)
	}
	if out := r.Apply(RefundState{ID: "re_1", Status: RefundFailed, FailureReason: "lost_or_stolen_card", At: at(4)}); out != RefundBecameFailed ||
		r.FailureReason != "lost_or_stolen_card" {
		t.Fatalf("failed after success: %v %+v", out, r)
	}
	if out := r.Apply(RefundState{ID: "re_1", Status: RefundSucceeded, At: at(5)}); out != RefundNoChange || r.Status != RefundFailed {
		t.Fatalf("failed is final: %+v", r)
	}
	if tx := Refunded(Refund{StripeRefundID: "re_2", BookingID: "b1", Stage: Deposit, Amount: money.Yen(100), UpdatedAt: t0}); tx.Validate() != nil ||
		tx.Entries[0] != Debit("booking:b1:refunded", money.Yen(100)) {
		t.Fatalf("refund posting %+v", tx)
	}
	if tx := RefundReversed(Refund{StripeRefundID: "re_2", BookingID: "b1", Amount: money.Yen(100), UpdatedAt: t0}); tx.Validate() != nil ||
		tx.Source != "re_2:failed" || tx.Entries[1] != Credit("booking:b1:refunded", money.Yen(100)) {
		t.Fatalf("reversal %+v", tx)
	}
}
