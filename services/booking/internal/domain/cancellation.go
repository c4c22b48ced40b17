package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// CancellationTerms are what a cancellation keeps, fixed by the quote the
// booking was made from (the clinic's policy version and the quote's
// lines): the fee for cancelling before the harvest, the consultation for a
// patient found ineligible at it, and the culture's cost once it started.
// A booking made before terms existed keeps nothing.
type CancellationTerms struct {
	PolicyVersion   int         `json:"policy_version"`
	CancellationFee money.Money `json:"cancellation_fee"`
	ConsultationFee money.Money `json:"consultation_fee"`
	CultureCost     money.Money `json:"culture_cost"`
}

// CancellationReason says who ended a booking, and why.
type CancellationReason string

const (
	// CancelledByPatient: the patient cancelled.
	CancelledByPatient CancellationReason = "patient"
	// FoundIneligible: the clinic found the patient ineligible at the consultation.
	FoundIneligible CancellationReason = "ineligible"
	// RefundedAfterQCFailure: the cells failed QC and the patient chose the refund.
	RefundedAfterQCFailure CancellationReason = "qc_failed"
	// BalanceUnpaid: the patient did not pay the balance by its deadline.
	BalanceUnpaid CancellationReason = "balance_unpaid"
	// PlanStopped: the treatment's provision plan was suspended or withdrawn
	// before the deposit was paid.
	PlanStopped CancellationReason = "plan_stopped"
)

// Cancellation is how a booking ended: what is refunded, what is kept and
// why, in words the patient is shown.
type Cancellation struct {
	Reason      CancellationReason `json:"reason"`
	Refund      money.Money        `json:"refund"`
	Retained    money.Money        `json:"retained"`
	Explanation string             `json:"explanation"`
	// ClinicNote is the clinic's reason, for an ineligible patient.
	ClinicNote string    `json:"clinic_note,omitempty"`
	At         time.Time `json:"at"`
}

// Cancelled: the booking ended before administration; its refund follows.
const Cancelled Status = "cancelled"

// ErrNoteRequired means the clinic gave no reason for finding a patient ineligible.
var ErrNoteRequired = errors.New("a reason is required")

// Received is what the patient has paid so far: the deposit once
// confirmed, the balance once charged.
func (b *Booking) Received() money.Money {
	paid := money.Zero(b.Deposit.Currency)
	if b.DepositPaymentID != "" {
		paid = b.Deposit
	}
	if b.BalancePaymentID != "" {
		paid = money.New(paid.Amount+b.Balance.Amount, paid.Currency)
	}
	return paid
}

// keep splits what was received into what is kept (at most the received)
// and what is refunded.
func (b *Booking) keep(kept money.Money) (refund, retained money.Money) {
	received := b.Received()
	if kept.Currency != received.Currency {
		kept = money.Zero(received.Currency) // terms from before terms existed
	}
	retained = money.New(min(max(kept.Amount, 0), received.Amount), received.Currency)
	return money.New(received.Amount-retained.Amount, received.Currency), retained
}

// Cancel is the patient cancelling. What is kept depends on how far the
// treatment went:
//   - before the deposit was paid, nothing was charged and nothing is kept;
//   - before the harvest, the clinic's cancellation fee;
//   - once the culture started, the culture's cost (the consultation,
//     harvest, culture and quality testing), whatever was paid beyond it is
//     refunded, balance included;
//   - after the cells failed QC, nothing: everything paid is refunded.
//
// Administered and cancelled bookings cannot be cancelled.
func (b *Booking) Cancel(at time.Time) (Cancellation, Transition, error) {
	var c Cancellation
	switch b.Status {
	case AwaitingDeposit:
		c.Refund, c.Retained = b.keep(money.Zero(b.Deposit.Currency))
		c.Reason, c.Explanation = CancelledByPatient, "Cancelled before the deposit was paid: nothing was charged."
	case Confirmed:
		c.Refund, c.Retained = b.keep(b.Terms.CancellationFee)
		c.Reason = CancelledByPatient
		c.Explanation = fmt.Sprintf("Cancelled before the harvest: the deposit is refunded less the clinic's cancellation fee of %s.",
			c.Retained.Format())
	case Culturing, AwaitingBalance, BalanceActionRequired, ReadyForAdministration:
		c.Refund, c.Retained = b.keep(b.Terms.CultureCost)
		c.Reason = CancelledByPatient
		c.Explanation = fmt.Sprintf("Cancelled after the cell culture started: its cost of %s (consultation, harvest, culture "+
			"and quality testing) is kept; everything paid beyond it is refunded.", c.Retained.Format())
	case QCFailed:
		c.Refund, c.Retained = b.keep(money.Zero(b.Deposit.Currency))
		c.Reason = RefundedAfterQCFailure
		c.Explanation = "The cells failed quality control: everything paid is refunded."
	default:
		return c, Transition{}, TransitionError{"cancel", b.Status}
	}
	t := b.cancel(&c, at)
	return c, t, nil
}

// FindIneligible is the clinic finding the patient ineligible at the
// consultation, before anything is harvested: the deposit is refunded less
// the consultation fee. note is the clinic's reason, shown to the patient.
func (b *Booking) FindIneligible(note string, at time.Time) (Cancellation, Transition, error) {
	if b.Status != Confirmed {
		return Cancellation{}, Transition{}, TransitionError{"find ineligible", b.Status}
	}
	if note == "" {
		return Cancellation{}, Transition{}, ErrNoteRequired
	}
	c := Cancellation{Reason: FoundIneligible, ClinicNote: note}
	c.Refund, c.Retained = b.keep(b.Terms.ConsultationFee)
	c.Explanation = fmt.Sprintf("The clinic found the treatment unsuitable at the consultation: the deposit is refunded "+
		"less the consultation fee of %s.", c.Retained.Format())
	t := b.cancel(&c, at)
	return c, t, nil
}

// CancelUnpaidBalance cancels a booking whose balance the patient did not
// pay by its deadline: like a patient's cancellation once the culture
// started, the culture's cost is kept and anything paid beyond it refunded.
func (b *Booking) CancelUnpaidBalance(now time.Time) (Cancellation, Transition, error) {
	if b.Status != BalanceActionRequired || b.BalanceActionDueAt == nil || now.Before(*b.BalanceActionDueAt) {
		return Cancellation{}, Transition{}, TransitionError{"cancel for an unpaid balance", b.Status}
	}
	c := Cancellation{Reason: BalanceUnpaid}
	c.Refund, c.Retained = b.keep(b.Terms.CultureCost)
	c.Explanation = fmt.Sprintf("The balance was not paid by %s: the culture's cost of %s is kept; everything paid beyond it is refunded.",
		b.BalanceActionDueAt.UTC().Format(time.RFC3339), c.Retained.Format())
	t := b.cancel(&c, now)
	return c, t, nil
}

// CancelForStoppedPlan cancels a booking still awaiting its deposit when
// the treatment's provision plan stops: it can no longer be provided, and
// nothing was charged (a deposit paid after all is refunded by payment).
func (b *Booking) CancelForStoppedPlan(at time.Time) (Cancellation, Transition, error) {
	if b.Status != AwaitingDeposit {
		return Cancellation{}, Transition{}, TransitionError{"cancel for a stopped plan", b.Status}
	}
	c := Cancellation{Reason: PlanStopped, Explanation: "The treatment's provision plan was suspended before the deposit was paid: nothing was charged."}
	c.Refund, c.Retained = b.keep(money.Zero(b.Deposit.Currency))
	t := b.cancel(&c, at)
	return c, t, nil
}

func (b *Booking) cancel(c *Cancellation, at time.Time) Transition {
	c.At = at
	kept := *c
	b.Cancellation = &kept
	cause := "cancelled by the patient"
	switch c.Reason {
	case FoundIneligible:
		cause = "found ineligible at the consultation"
	case RefundedAfterQCFailure:
		cause = "refunded after the cells failed quality control"
	case BalanceUnpaid:
		cause = "the balance was not paid in time"
	case PlanStopped:
		cause = "the treatment's provision plan stopped"
	}
	return b.move(Cancelled, fmt.Sprintf("%s: %s refunded, %s kept", cause, c.Refund.Format(), c.Retained.Format()), at)
}
