package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// RefundStatus is where a refund is at Stripe.
type RefundStatus string

const (
	// RefundCreating: recorded, not yet known to have reached Stripe.
	RefundCreating RefundStatus = "creating"
	RefundPending  RefundStatus = "pending"
	// RefundRequiresAction: Stripe needs the patient's bank details
	// (some payment methods cannot refund to the card).
	RefundRequiresAction RefundStatus = "requires_action"
	RefundSucceeded      RefundStatus = "succeeded"
	RefundFailed         RefundStatus = "failed"
	RefundCanceled       RefundStatus = "canceled"
)

// Refund returns part or all of one payment to the patient. A cancellation
// refunds across the booking's payments, one Refund per payment.
type Refund struct {
	ID        string
	BookingID string
	ClinicID  string
	PaymentID string
	Stage     Stage
	// Cause is the booking event that asked for the refund: a redelivered
	// event finds its refunds instead of making new ones.
	Cause           string
	Amount          money.Money
	Status          RefundStatus
	StripeRefundID  string
	PaymentIntentID string
	FailureReason   string
	LastEventAt     time.Time
	SucceededAt     *time.Time
	Trace           map[string]string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ErrRefundExceedsReceived means a refund asks for more than the booking's
// payments received and have not yet returned.
var ErrRefundExceedsReceived = errors.New("refund exceeds what the booking's payments received")

// PlanRefunds splits amount across a booking's succeeded payments, the
// balance before the deposit, each for at most what it received less what
// was refunded from it already (refunded, by payment id). newID names each
// refund. A zero amount needs no refund.
func PlanRefunds(cause string, amount money.Money, pays []Payment, refunded map[string]money.Money, newID func() string,
	now time.Time) ([]Refund, error) {
	if amount.IsNegative() {
		return nil, fmt.Errorf("refund of %s", amount)
	}
	left := amount.Amount
	var out []Refund
	for _, stage := range []Stage{Balance, Deposit} {
		for _, p := range pays {
			if p.Stage != stage || p.Status != Succeeded || left == 0 {
				continue
			}
			if p.AmountReceived.Currency != amount.Currency {
				return nil, fmt.Errorf("refund in %s of a payment in %s", amount.Currency, p.AmountReceived.Currency)
			}
			room := p.AmountReceived.Amount - refunded[p.ID].Amount
			take := min(room, left)
			if take <= 0 {
				continue
			}
			left -= take
			out = append(out, Refund{ID: newID(), BookingID: p.BookingID, ClinicID: p.ClinicID, PaymentID: p.ID, Stage: p.Stage,
				Cause: cause, Amount: money.New(take, amount.Currency), Status: RefundCreating, PaymentIntentID: p.PaymentIntentID,
				CreatedAt: now, UpdatedAt: now})
		}
	}
	if left > 0 {
		return nil, fmt.Errorf("%w: %s asked, %d %s more than can be returned", ErrRefundExceedsReceived, amount, left, amount.Currency)
	}
	return out, nil
}

// RefundState is what the provider says a refund is, as of At.
type RefundState struct {
	ID              string
	Status          RefundStatus
	Amount          money.Money
	PaymentIntentID string
	// RefundID is the refund id payment put in the refund's metadata.
	RefundID      string
	FailureReason string
	At            time.Time
}

// RefundOutcome is what applying a refund state means.
type RefundOutcome int

const (
	RefundNoChange RefundOutcome = iota
	// RefundBecameSucceeded: the money went back; post it and announce it.
	RefundBecameSucceeded
	// RefundBecameFailed: it did not (or, rarely, a succeeded refund
	// failed afterwards); announce it, and reverse the posting if any.
	RefundBecameFailed
)

// Apply moves the refund to the provider's state. Failed and canceled are
// final; succeeded is final except that Stripe may fail a succeeded refund
// later (the bank returned it). Older states than the last applied are
// ignored.
func (r *Refund) Apply(s RefundState) RefundOutcome {
	if r.Status == RefundFailed || r.Status == RefundCanceled {
		return RefundNoChange
	}
	final := s.Status == RefundFailed || s.Status == RefundCanceled
	if r.Status == RefundSucceeded && !final {
		return RefundNoChange
	}
	if !final && s.Status != RefundSucceeded && !r.LastEventAt.IsZero() && s.At.Before(r.LastEventAt) {
		return RefundNoChange
	}
	if r.StripeRefundID == "" {
		r.StripeRefundID = s.ID
	}
	if s.At.After(r.LastEventAt) {
		r.LastEventAt = s.At
	}
	r.UpdatedAt = s.At
	switch s.Status {
	case RefundSucceeded:
		at := s.At
		r.Status, r.SucceededAt = RefundSucceeded, &at
		return RefundBecameSucceeded
	case RefundFailed, RefundCanceled:
		r.Status, r.FailureReason = s.Status, s.FailureReason
		if r.FailureReason == "" {
			r.FailureReason = string(s.Status)
		}
		return RefundBecameFailed
	case RefundPending, RefundRequiresAction:
		r.Status = s.Status
	}
	return RefundNoChange
}

// Refunded is the ledger transaction of a refund that succeeded: Stripe's
// balance returns it to the patient, debited to the booking.
func Refunded(r Refund) LedgerTransaction {
	at := r.UpdatedAt
	if r.SucceededAt != nil {
		at = *r.SucceededAt
	}
	return LedgerTransaction{
		Source: r.StripeRefundID, Kind: KindRefund, BookingID: r.BookingID, ClinicID: r.ClinicID, OccurredAt: at,
		Description: string(r.Stage) + " refunded",
		Entries: []Entry{
			Debit(BookingAccount(r.BookingID, "refunded"), r.Amount),
			Credit(AccountStripeBalance, r.Amount),
		},
	}
}

// RefundReversed is the ledger transaction of a refund that failed after
// it succeeded: the money is back at Stripe, no longer refunded.
func RefundReversed(r Refund) LedgerTransaction {
	t := Refunded(r)
	t.Source, t.Description, t.OccurredAt = r.StripeRefundID+":failed", string(r.Stage)+" refund failed after succeeding", r.UpdatedAt
	t.Entries = []Entry{Debit(AccountStripeBalance, r.Amount), Credit(BookingAccount(r.BookingID, "refunded"), r.Amount)}
	return t
}
