// Package domain holds payment's rules: a booking is paid in two stages, a
// deposit that funds cell culture and a balance charged off-session before
// administration; each payment follows its Stripe PaymentIntent's state,
// whatever order the webhooks arrive in. No I/O here.
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
	Failed         Status = "failed"
	Succeeded      Status = "succeeded"
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
	ClientSecret    string
	CustomerID      string
	PaymentMethodID string
	AmountReceived  money.Money
	FailureCode     string
	FailureMessage  string
	// LastEventAt is when the intent state last applied was created at
	// Stripe; older states arriving later are ignored.
	LastEventAt time.Time
	SucceededAt *time.Time
	Trace       map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// IntentState is what Stripe says a PaymentIntent is, as of At.
type IntentState struct {
	ID              string
	Status          string // Stripe's PaymentIntent status
	AmountReceived  money.Money
	PaymentMethodID string
	FailureCode     string
	FailureMessage  string
	At              time.Time
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
	if s.Status != "succeeded" && !p.LastEventAt.IsZero() && s.At.Before(p.LastEventAt) {
		return NoChange, nil
	}
	prev := p.Status
	if p.PaymentIntentID == "" {
		p.PaymentIntentID = s.ID
	}
	p.LastEventAt, p.UpdatedAt = s.At, s.At
	switch s.Status {
	case "succeeded":
		if s.AmountReceived != p.Amount {
			return NoChange, fmt.Errorf("%w: payment %s received %s, due %s", ErrAmountMismatch, p.ID, s.AmountReceived, p.Amount)
		}
		at := s.At
		p.Status, p.AmountReceived, p.SucceededAt = Succeeded, s.AmountReceived, &at
		p.FailureCode, p.FailureMessage = "", ""
		if s.PaymentMethodID != "" {
			p.PaymentMethodID = s.PaymentMethodID
		}
		return BecameSucceeded, nil
	case "processing":
		p.Status = Processing
	case "requires_action", "requires_confirmation":
		p.Status = RequiresAction
		if s.FailureCode != "" {
			p.FailureCode, p.FailureMessage = s.FailureCode, s.FailureMessage
		}
		if prev != RequiresAction {
			return NeedsAction, nil
		}
	case "requires_payment_method":
		if s.FailureCode == "" {
			p.Status = RequiresPayment
			break
		}
		p.Status, p.FailureCode, p.FailureMessage = Failed, s.FailureCode, s.FailureMessage
		if s.FailureCode == "authentication_required" {
			p.Status = RequiresAction
			if prev != RequiresAction {
				return NeedsAction, nil
			}
			break
		}
		return BecameFailed, nil
	case "canceled":
		p.Status, p.FailureCode = Failed, "canceled"
		if prev != Failed {
			return BecameFailed, nil
		}
	}
	return NoChange, nil
}
