package domain

import "github.com/saisei-health/platform/pkg/money"

// DepositMethod is how a patient pays the deposit.
type DepositMethod string

const (
	// ByCard: the patient's app confirms a card PaymentIntent; the card is
	// saved for the balance.
	ByCard DepositMethod = "card"
	// ByBankTransfer: a Japanese bank transfer (Stripe's customer balance,
	// jp_bank_transfer) to the account and reference Stripe assigns.
	ByBankTransfer DepositMethod = "bank_transfer"
)

// TransferInstructions is where and how the patient transfers the deposit,
// and what is still owed after partial transfers.
type TransferInstructions struct {
	BankName        string      `json:"bank_name"`
	BankCode        string      `json:"bank_code"`
	BranchName      string      `json:"branch_name"`
	BranchCode      string      `json:"branch_code"`
	AccountType     string      `json:"account_type"`
	AccountNumber   string      `json:"account_number"`
	AccountHolder   string      `json:"account_holder_name"`
	Reference       string      `json:"reference"`
	AmountRemaining money.Money `json:"amount_remaining"`
	HostedURL       string      `json:"hosted_instructions_url,omitempty"`
}

// OverpaymentPolicy says what happens to money a patient transferred
// beyond the deposit: refunded to them, or kept on their Stripe customer
// balance (applied to their next payment).
type OverpaymentPolicy string

const (
	RefundOverpayment OverpaymentPolicy = "refund"
	KeepOverpayment   OverpaymentPolicy = "keep"
)
