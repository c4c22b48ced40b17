package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

var t0 = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

func deposit() *Payment {
	return &Payment{ID: "p1", Stage: Deposit, Amount: money.Yen(1_900_000), Status: RequiresPayment, PaymentIntentID: "pi_1"}
}

func TestSucceededAppliesOnceAndSavesTheCard(t *testing.T) {
	p := deposit()
	out, err := p.Apply(IntentState{ID: "pi_1", Status: IntentSucceeded, AmountReceived: money.Yen(1_900_000), PaymentMethodID: "pm_card", At: t0})
	if err != nil || out != BecameSucceeded || p.Status != Succeeded || p.PaymentMethodID != "pm_card" || p.AmountReceived != money.Yen(1_900_000) {
		t.Fatalf("apply: %v %v %+v", out, err, p)
	}
	// The same webhook again, and a late failure of an earlier attempt.
	for _, s := range []IntentState{
		{ID: "pi_1", Status: IntentSucceeded, AmountReceived: money.Yen(1_900_000), At: t0},
		{ID: "pi_1", Status: IntentFailed, FailureCode: "card_declined", At: t0.Add(-time.Minute)},
		{ID: "pi_1", Status: IntentProcessing, At: t0.Add(time.Minute)},
	} {
		if out, err := p.Apply(s); out != NoChange || err != nil || p.Status != Succeeded {
			t.Fatalf("after success, %s changed things: %v %v %s", s.Status, out, err, p.Status)
		}
	}
}

func TestWrongAmountIsNotSuccess(t *testing.T) {
	p := deposit()
	_, err := p.Apply(IntentState{ID: "pi_1", Status: IntentSucceeded, AmountReceived: money.Yen(190_000), At: t0})
	if !errors.Is(err, ErrAmountMismatch) || p.Status == Succeeded {
		t.Fatalf("err %v status %s", err, p.Status)
	}
}

func TestFailuresAndOutOfOrderStates(t *testing.T) {
	p := deposit()
	if out, _ := p.Apply(IntentState{ID: "pi_1", Status: IntentFailed, FailureCode: "card_declined", FailureMessage: "declined", At: t0}); out != BecameFailed || p.Status != Failed {
		t.Fatalf("decline: %v %s", out, p.Status)
	}
	// An older "processing" arriving late does not overwrite the failure.
	if out, _ := p.Apply(IntentState{ID: "pi_1", Status: IntentProcessing, At: t0.Add(-time.Second)}); out != NoChange || p.Status != Failed {
		t.Fatalf("stale processing: %v %s", out, p.Status)
	}
	// The patient retries with another card: success wins.
	if out, _ := p.Apply(IntentState{ID: "pi_1", Status: IntentSucceeded, AmountReceived: money.Yen(1_900_000), At: t0.Add(time.Hour)}); out != BecameSucceeded {
		t.Fatalf("retry success: %v", out)
	}
	b := &Payment{ID: "p2", Stage: Balance, Amount: money.Yen(1_100_000), Status: Creating}
	if out, _ := b.Apply(IntentState{ID: "pi_2", Status: IntentNeedsAuthentication, FailureCode: "authentication_required", At: t0}); out != NeedsAction || b.Status != RequiresAction {
		t.Fatalf("authentication_required: %v %s", out, b.Status)
	}
	if out, _ := b.Apply(IntentState{ID: "pi_2", Status: IntentNeedsAuthentication, At: t0.Add(time.Second)}); out != NoChange {
		t.Fatalf("requires_action twice announced twice: %v", out)
	}
}

func TestIdempotencyKeysAreDeterministic(t *testing.T) {
	if IdempotencyKey("b1", "deposit") != "booking:b1:deposit" || IdempotencyKey("b1", "balance") != "booking:b1:balance" {
		t.Fatal("keys")
	}
}

func TestBalanceIsChargedOnlyWhenOwedAgreedAndACardWasSaved(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	plan := Plan{BookingID: "b1", ClinicID: "ginza", Deposit: money.Yen(1_900_000), Balance: money.Yen(1_210_000), CustomerID: "cus_1"}
	deposit := Payment{Stage: Deposit, Status: Succeeded, PaymentMethodID: "pm_saved"}
	pay, err := BalanceCharge(&plan, money.Yen(1_210_000), &deposit, "p2", now)
	if err != nil || pay.Amount != money.Yen(1_210_000) || pay.PaymentMethodID != "pm_saved" || pay.CustomerID != "cus_1" ||
		pay.Stage != Balance || pay.Status != Creating || pay.ClinicID != "ginza" {
		t.Fatalf("charge = %+v, %v", pay, err)
	}
	cancelled, paidInFull := plan, plan
	cancelled.BalanceCancelledAt = &now
	paidInFull.Balance = money.Yen(0)
	unpaid := Payment{Stage: Deposit, Status: RequiresPayment}
	noCard := Payment{Stage: Deposit, Status: Succeeded}
	for _, c := range []struct {
		name    string
		plan    *Plan
		due     money.Money
		deposit *Payment
		want    error
	}{
		{"no plan", nil, money.Yen(1_210_000), &deposit, ErrNoPlan},
		{"paid in full", &paidInFull, money.Yen(0), &deposit, ErrPaidInFull},
		{"cells failed QC", &cancelled, money.Yen(1_210_000), &deposit, ErrBalanceCancelled},
		{"amounts disagree", &plan, money.Yen(1_100_000), &deposit, ErrBalanceDisagrees},
		{"another currency", &plan, money.New(1_210_000, money.USD), &deposit, ErrBalanceDisagrees},
		{"no deposit", &plan, money.Yen(1_210_000), nil, ErrNoSavedCard},
		{"deposit unpaid", &plan, money.Yen(1_210_000), &unpaid, ErrNoSavedCard},
		{"no card saved", &plan, money.Yen(1_210_000), &noCard, ErrNoSavedCard},
	} {
		if _, err := BalanceCharge(c.plan, c.due, c.deposit, "p2", now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
