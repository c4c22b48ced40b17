// Package domain holds payment's rules: a booking is paid in two stages, a
// deposit that funds cell culture and a balance charged off-session before
// administration; each payment follows its Stripe PaymentIntent's state,
// whatever order the webhooks arrive in; the balance is charged only under
// the rules of BalanceCharge. No I/O here.
package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Stage of a staged payment.
type Stage string

const (
	Deposit Stage = "deposit"
	Balance Stage = "balance"
)

// Status of one payment.
type Status string

const (
	// Creating: recorded, the PaymentIntent not yet confirmed created.
	Creating Status = "creating"
	// RequiresPayment: the intent exists and waits for the patient's card.
	RequiresPayment Status = "requires_payment"
	Processing      Status = "processing"
	// RequiresAction: the bank wants the patient on-session (3-D Secure).
	RequiresAction Status = "requires_action"
	// AwaitingTransfer: a bank-transfer deposit waits for (the rest of) the
	// patient's transfer.
	AwaitingTransfer Status = "awaiting_transfer"
	Failed           Status = "failed"
	Succeeded        Status = "succeeded"
)

// Plan is what a booking owes, fixed when the deposit is requested.
type Plan struct {
	BookingID    string
	ClinicID     string
	Deposit      money.Money
	Balance      money.Money
	CustomerID   string
	PatientName  string
	PatientEmail string
	CreatedAt    time.Time
	// BalanceCancelledAt is set when the cells failed quality control: the
	// balance is no longer owed and must never be charged.
	BalanceCancelledAt *time.Time
	// ClosedAt is set when the booking ended (cancelled, or expired
	// unpaid): a payment that succeeds after it is refunded in full.
	ClosedAt *time.Time
}

// Due returns what a stage still owes: nothing for a cancelled balance.
func (p Plan) Due(s Stage) money.Money {
	if s == Deposit {
		return p.Deposit
	}
	if p.BalanceCancelledAt != nil {
		return money.Zero(p.Balance.Currency)
	}
	return p.Balance
}

// IdempotencyKey is the deterministic Stripe idempotency key of a booking's
// call: a retry, a redelivery or a second replica sends the same key, and
// Stripe answers with the first result instead of charging twice.
func IdempotencyKey(bookingID, what string) string { return "booking:" + bookingID + ":" + what }

// Payment is one stage's payment and its PaymentIntent.
type Payment struct {
	ID              string
	BookingID       string
	ClinicID        string
	Stage           Stage
	Amount          money.Money
	Status          Status
	PaymentIntentID string
	// ChargeID is the Stripe charge that took the money, once it succeeded.
	ChargeID        string
	ClientSecret    string
	CustomerID      string
	PaymentMethodID string
	// Method is how the deposit is paid; Transfer, for a bank transfer,
	// where and what is still owed.
	Method         DepositMethod
	Transfer       *TransferInstructions
	AmountReceived money.Money
	FailureCode    string
	FailureMessage string
	// LastEventAt is when the intent state last applied was created at
	// Stripe; older states arriving later are ignored.
	LastEventAt time.Time
	SucceededAt *time.Time
	Trace       map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// IntentStatus is what a PaymentIntent's state means for the payment. The
// payment provider's gateway translates its own statuses into these; the
// domain never reads the provider's vocabulary.
type IntentStatus string

const (
	// IntentAwaitingPaymentMethod: waiting for the patient's card, no
	// attempt failed yet.
	IntentAwaitingPaymentMethod IntentStatus = "awaiting_payment_method"
	IntentProcessing            IntentStatus = "processing"
	// IntentNeedsAuthentication: the bank wants the patient on-session
	// (3-D Secure), whether or not an off-session attempt was declined for it.
	IntentNeedsAuthentication IntentStatus = "needs_authentication"
	// IntentFailed: an attempt was declined; the intent waits for another card.
	IntentFailed IntentStatus = "failed"
	// IntentAwaitingTransfer: a bank transfer is awaited, in full or in part.
	IntentAwaitingTransfer IntentStatus = "awaiting_transfer"
	IntentCanceled         IntentStatus = "canceled"
	IntentSucceeded        IntentStatus = "succeeded"
	// IntentOther is a state the payment does not act on.
	IntentOther IntentStatus = "other"
)

// IntentState is what the provider says a PaymentIntent is, as of At.
type IntentState struct {
	ID string
	// ChargeID is the intent's latest charge, when it has one.
	ChargeID        string
	Status          IntentStatus
	AmountReceived  money.Money
	PaymentMethodID string
	// Transfer is set for an intent waiting for a bank transfer.
	Transfer *TransferInstructions
	// FailureCode and FailureMessage are the provider's words, kept for
	// finance and the patient; nothing decides on them.
	FailureCode    string
	FailureMessage string
	At             time.Time
}

// Outcome is what applying an intent state means to the rest of the platform.
type Outcome int

const (
	NoChange Outcome = iota
	// BecameSucceeded: announce PaymentSucceeded.
	BecameSucceeded
	// BecameFailed: announce PaymentFailed.
	BecameFailed
	// NeedsAction: announce PaymentFailed with requires_action.
	NeedsAction
)

// ErrAmountMismatch means Stripe received another amount than is due.
var ErrAmountMismatch = errors.New("received amount differs from the amount due")

// Apply moves the payment to the intent's state. Succeeded is final: a late
// "failed" or "processing" for an earlier attempt cannot undo it. Other
// states apply only if not older than the last one applied.
func (p *Payment) Apply(s IntentState) (Outcome, error) {
	if p.Status == Succeeded {
		return NoChange, nil
	}
	if s.Status != IntentSucceeded && !p.LastEventAt.IsZero() && s.At.Before(p.LastEventAt) {
		return NoChange, nil
	}
	prev := p.Status
	if p.PaymentIntentID == "" {
		p.PaymentIntentID = s.ID
	}
	p.LastEventAt, p.UpdatedAt = s.At, s.At
	if s.Transfer != nil {
		p.Transfer = s.Transfer
	}
	switch s.Status {
	case IntentAwaitingTransfer:
		// The patient must transfer the money: announced once, as an
		// action required of them.
		p.Status = AwaitingTransfer
		if prev != AwaitingTransfer {
			p.FailureCode, p.FailureMessage = "bank_transfer_required", "waiting for the patient's bank transfer"
			return NeedsAction, nil
		}
	case IntentSucceeded:
		if s.AmountReceived != p.Amount {
			return NoChange, fmt.Errorf("%w: payment %s received %s, due %s", ErrAmountMismatch, p.ID, s.AmountReceived, p.Amount)
		}
		at := s.At
		p.Status, p.AmountReceived, p.SucceededAt = Succeeded, s.AmountReceived, &at
		if s.ChargeID != "" {
			p.ChargeID = s.ChargeID
		}
		p.FailureCode, p.FailureMessage = "", ""
		if p.Transfer != nil {
			p.Transfer.AmountRemaining = money.Zero(p.Amount.Currency)
		}
		if s.PaymentMethodID != "" {
			p.PaymentMethodID = s.PaymentMethodID
		}
		return BecameSucceeded, nil
	case IntentProcessing:
		p.Status = Processing
	case IntentAwaitingPaymentMethod:
		p.Status = RequiresPayment
	case IntentNeedsAuthentication:
		p.Status = RequiresAction
		if s.FailureCode != "" {
			p.FailureCode, p.FailureMessage = s.FailureCode, s.FailureMessage
		}
		if prev != RequiresAction {
			return NeedsAction, nil
		}
	case IntentFailed:
		// Each declined attempt is announced: the patient may try another card.
		p.Status, p.FailureCode, p.FailureMessage = Failed, s.FailureCode, s.FailureMessage
		return BecameFailed, nil
	case IntentCanceled:
		p.Status, p.FailureCode = Failed, "canceled"
		if prev != Failed {
			return BecameFailed, nil
		}
	}
	return NoChange, nil
}

// LateRefund is the refund of a payment that succeeded after its plan was
// closed: all of it goes back. nil when the payment is not late.
func LateRefund(plan Plan, p Payment, id string, now time.Time) *Refund {
	if plan.ClosedAt == nil || p.Status != Succeeded || p.SucceededAt == nil {
		return nil
	}
	return &Refund{ID: id, BookingID: p.BookingID, ClinicID: p.ClinicID, PaymentID: p.ID, Stage: p.Stage,
		Cause: "late:" + p.ID, Amount: p.AmountReceived, Status: RefundCreating, PaymentIntentID: p.PaymentIntentID,
		CreatedAt: now, UpdatedAt: now}
}

// Why a balance may not be charged. Each needs a person, not a retry.
var (
	ErrNoPlan           = errors.New("booking has no payment plan")
	ErrPaidInFull       = errors.New("booking was paid in full with the deposit")
	ErrBalanceCancelled = errors.New("balance was cancelled (cells failed QC)")
	ErrBalanceDisagrees = errors.New("booking and payment plan disagree on the balance")
	ErrNoSavedCard      = errors.New("no card saved by a succeeded deposit")
)

// BalanceCharge decides whether the balance may be charged off-session now
// that the booking's cells passed QC, and returns the payment to make: the
// plan must exist and still be owed, the booking must say the same balance
// (due), and the deposit must have succeeded and saved a card. plan or
// deposit is nil when there is none.
func BalanceCharge(plan *Plan, due money.Money, deposit *Payment, id string, now time.Time) (Payment, error) {
	switch {
	case plan == nil:
		return Payment{}, ErrNoPlan
	case plan.Balance.IsZero():
		return Payment{}, fmt.Errorf("%w: booking %s", ErrPaidInFull, plan.BookingID)
	case plan.BalanceCancelledAt != nil:
		return Payment{}, fmt.Errorf("%w: booking %s", ErrBalanceCancelled, plan.BookingID)
	case plan.Balance != due:
		return Payment{}, fmt.Errorf("%w: booking %s says %s, the plan %s", ErrBalanceDisagrees, plan.BookingID, due, plan.Balance)
	case deposit == nil || deposit.Status != Succeeded || (deposit.PaymentMethodID == "" && deposit.Method != ByBankTransfer):
		return Payment{}, fmt.Errorf("%w: booking %s", ErrNoSavedCard, plan.BookingID)
	}
	charge := Payment{
		ID: id, BookingID: plan.BookingID, ClinicID: plan.ClinicID, Stage: Balance, Amount: plan.Balance,
		Status: Creating, CustomerID: plan.CustomerID, PaymentMethodID: deposit.PaymentMethodID, Method: ByCard, CreatedAt: now,
	}
	if deposit.Method == ByBankTransfer {
		// No card was saved: the balance is asked for by bank transfer too.
		charge.Method, charge.PaymentMethodID = ByBankTransfer, ""
	}
	return charge, nil
}
