package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/subject"
)

type transferView struct {
	BankName        string      `json:"bank_name"`
	AccountNumber   string      `json:"account_number"`
	AccountHolder   string      `json:"account_holder_name"`
	Reference       string      `json:"reference"`
	AmountRemaining money.Money `json:"amount_remaining"`
}

// transferIntent is a bank-transfer PaymentIntent as Stripe reports it,
// waiting for remaining yen.
func transferIntent(intentID, paymentID string, amount, remaining int64) map[string]any {
	return map[string]any{"id": intentID, "object": "payment_intent", "amount": amount, "amount_received": amount - remaining,
		"currency": "jpy", "status": "requires_action", "metadata": map[string]any{"payment_id": paymentID, "stage": "deposit"},
		"next_action": map[string]any{"type": "display_bank_transfer_instructions",
			"display_bank_transfer_instructions": map[string]any{"type": "jp_bank_transfer", "amount_remaining": remaining,
				"currency": "jpy", "reference": "SAISEIREF",
				"financial_addresses": []any{map[string]any{"type": "zengin", "zengin": map[string]any{"bank_name": "Test Bank",
					"bank_code": "0999", "branch_name": "Saisei Branch", "branch_code": "123", "account_type": "futsu",
					"account_number": "1234567", "account_holder_name": "ストライプジャパン（カ"}}}}}}
}

// A deposit may be paid by Japanese bank transfer: the patient is shown
// where to transfer it, a partial transfer shows what is still owed, an
// overpayment is refunded, and the balance is then asked for by transfer
// too (no card was saved).
func TestADepositPaidByBankTransfer(t *testing.T) {
	s := startPayment(t)
	id := uuid.NewString()
	req := depositRequest(id, clinicID, depositYen, balanceYen)
	req["deposit_method"] = "bank_transfer"
	r := s.call(t, "POST", "/internal/v1/deposits", req, nil)
	var d struct {
		depositView
		BankTransfer *transferView `json:"bank_transfer"`
	}
	r.decode(t, &d)
	if r.Status != 201 || d.Status != "awaiting_transfer" || d.BankTransfer == nil || d.BankTransfer.AccountNumber == "" ||
		d.BankTransfer.Reference == "" || d.BankTransfer.AmountRemaining != money.Yen(depositYen) {
		t.Fatalf("bank-transfer deposit: %d %s", r.Status, r.Raw)
	}
	calls := s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")
	if len(calls) != 1 || calls[0].Form.Get("payment_method_types[0]") != "customer_balance" ||
		calls[0].Form.Get("payment_method_options[customer_balance][bank_transfer][type]") != "jp_bank_transfer" ||
		calls[0].Form.Get("confirm") != "true" {
		t.Fatalf("the intent asked of Stripe: %v", calls)
	}
	customer := calls[0].Form.Get("customer")

	// ¥1,000,000 arrived; ¥900,000 is still owed.
	s.deliver(t, "evt_partial_"+id, "payment_intent.partially_funded", time.Now(), transferIntent(d.PaymentIntentID, d.PaymentID, depositYen, 900_000))
	var list struct {
		Items []struct {
			Status       string        `json:"status"`
			Method       string        `json:"method"`
			BankTransfer *transferView `json:"bank_transfer"`
		}
	}
	s.call(t, "GET", "/internal/v1/payments?booking_id="+id, nil, nil).decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Method != "bank_transfer" || list.Items[0].Status != "awaiting_transfer" ||
		list.Items[0].BankTransfer.AmountRemaining != money.Yen(900_000) {
		t.Fatalf("after a partial transfer: %+v", list.Items)
	}

	// The rest arrived, ¥30,000 too much.
	s.stripe.Overpaid(customer, 30_000)
	s.deliver(t, "evt_funded_"+id, "payment_intent.succeeded", time.Now().Add(time.Minute),
		paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, "pm_customer_balance"))
	refunds := s.stripeCalls("/v1/refunds", "booking:"+id+":overpayment")
	if len(refunds) != 1 || refunds[0].Form.Get("amount") != "30000" || refunds[0].Form.Get("origin") != "customer_balance" ||
		refunds[0].Form.Get("customer") != customer || !strings.Contains(refunds[0].Form.Get("instructions_email"), "@") {
		t.Fatalf("the overpayment refund: %v", refunds)
	}

	// No card was saved: the balance is asked for by transfer, and the
	// patient must act.
	s.waitHandled(t, balanceConsumer, s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
	balance := s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")
	if len(balance) != 1 || balance[0].Form.Get("payment_method_types[0]") != "customer_balance" || balance[0].Form.Get("off_session") != "" {
		t.Fatalf("the balance asked of Stripe: %v", balance)
	}
	var failed bool
	for _, e := range s.paymentEvents(t, id) {
		if e.Failed != nil && e.Failed.GetRequiresAction() && e.Failed.GetFailureCode() == "bank_transfer_required" {
			failed = true
		}
	}
	if !failed {
		t.Fatalf("the balance by transfer was not announced as needing the patient: %v", s.paymentEvents(t, id))
	}
	if r := s.call(t, "POST", "/internal/v1/deposits", map[string]any{"booking_id": uuid.NewString(), "clinic_id": clinicID,
		"deposit": map[string]any{"amount": 1, "currency": "JPY"}, "balance": map[string]any{"amount": 1, "currency": "JPY"},
		"patient": map[string]any{"name": "A", "email": "a@example.com"}, "deposit_method": "cash"}, nil); r.Status != 422 ||
		!r.problem(t).names("deposit_method") {
		t.Fatalf("a deposit by cash: %d %s", r.Status, r.Raw)
	}
}
