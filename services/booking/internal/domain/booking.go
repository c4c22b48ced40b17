// Package domain holds the booking aggregate and its state machine: from the
// deposit through harvest, culture and quality control to the balance and
// administration. No I/O here.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Status is where a booking is in the patient's journey.
type Status string

// The states, in the order a booking normally passes through them.
const (
	AwaitingDeposit        Status = "awaiting_deposit"
	Confirmed              Status = "confirmed"
	Culturing              Status = "culturing"
	AwaitingBalance        Status = "awaiting_balance"
	ReadyForAdministration Status = "ready_for_administration"
	Administered           Status = "administered"
	// QCFailed ends the journey before the balance: cells that fail release
	// testing are never administered and the balance is never charged.
	QCFailed Status = "qc_failed"
	// Expired: the deposit was not paid by its deadline; the quote is
	// released and a deposit paid later is refunded.
	Expired Status = "expired"
	// BalanceActionRequired: the off-session balance charge was declined
	// or the bank wants the patient to authenticate it; the patient pays
	// on-session by BalanceActionDueAt, or the booking is cancelled under
	// its policy.
	BalanceActionRequired Status = "balance_action_required"
)

// Statuses lists every status.
var Statuses = []Status{AwaitingDeposit, Confirmed, Culturing, AwaitingBalance, BalanceActionRequired, ReadyForAdministration,
	Administered, QCFailed, Cancelled, Expired}

// Patient is who the booking is for.
type Patient struct {
	Name     string
	Email    string
	Country  string
	Language string
}

// Booking is the aggregate.
type Booking struct {
	ID             string
	IdempotencyKey string
	QuoteID        string
	TreatmentID    string
	TreatmentName  string
	ClinicID       string
	ClinicName     string
	DoseCells      int64
	// RequiresHarvest is false for protocols with nothing to harvest
	// (banked donor cells, exosomes): their cells are reported ready
	// straight after the deposit.
	RequiresHarvest bool
	Patient         Patient
	// PatientSubject is the patient's identity at the issuer: the owner.
	PatientSubject string
	Status         Status
	Total          money.Money
	Deposit        money.Money
	Balance        money.Money
	// DepositDueAt is when an unpaid booking expires.
	DepositDueAt time.Time
	// DepositMethod is card or bank_transfer ("" for card).
	DepositMethod string

	DepositPaymentID string
	BalancePaymentID string
	BalanceFailure   string
	// BalanceActionDueAt is when a booking whose balance needs the patient
	// is cancelled unless paid; LastReminderAt when the patient was last
	// reminded.
	BalanceActionDueAt *time.Time
	LastReminderAt     *time.Time
	HarvestedAt        *time.Time
	CellsReadyAt       *time.Time
	AdministeredAt     *time.Time
	QC                 *QualityReport
	// CultureAttempt counts the cultures: 1, then 2 after a free re-culture.
	CultureAttempt int
	// Terms are what a cancellation keeps, fixed by the quote.
	Terms CancellationTerms
	// Cancellation is set once the booking was cancelled.
	Cancellation *Cancellation

	// Trace is the booking's trace context: later work (webhooks, clinic
	// reports) continues it so the whole journey is one trace.
	Trace     map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ErrInvalidTransition is returned when an action does not fit the status.
var ErrInvalidTransition = errors.New("invalid transition")

// TransitionError says which action was refused in which status.
type TransitionError struct {
	Action string
	From   Status
}

func (e TransitionError) Error() string {
	return fmt.Sprintf("cannot %s a booking that is %s", e.Action, e.From)
}

func (e TransitionError) Unwrap() error { return ErrInvalidTransition }

// Transition records one state change.
type Transition struct {
	From, To Status
	Cause    string
	At       time.Time
}

func (b *Booking) move(to Status, cause string, at time.Time) Transition {
	t := Transition{From: b.Status, To: to, Cause: cause, At: at}
	b.Status, b.UpdatedAt = to, at
	return t
}

// ErrAmountMismatch means a payment does not match what the booking expects.
var ErrAmountMismatch = errors.New("payment amount does not match the booking")

// ConfirmDeposit applies a succeeded deposit payment. A repeat of the same
// payment is a no-op (nil transition).
func (b *Booking) ConfirmDeposit(paymentID string, amount money.Money, at time.Time) (*Transition, error) {
	if b.DepositPaymentID == paymentID && b.Status != AwaitingDeposit {
		return nil, nil
	}
	if (b.Status == Expired || b.Status == Cancelled) && b.DepositPaymentID == "" {
		// Paid after the booking ended: payment refunds it (the plan is
		// closed); the booking stays ended.
		return nil, nil
	}
	if b.Status != AwaitingDeposit {
		return nil, TransitionError{"confirm the deposit of", b.Status}
	}
	if amount != b.Deposit {
		return nil, fmt.Errorf("%w: deposit %s paid, %s due", ErrAmountMismatch, amount, b.Deposit)
	}
	b.DepositPaymentID = paymentID
	t := b.move(Confirmed, "deposit received", at)
	return &t, nil
}

// Expire ends a booking whose deposit was not paid by its deadline.
func (b *Booking) Expire(now time.Time) (Transition, error) {
	if b.Status != AwaitingDeposit || now.Before(b.DepositDueAt) {
		return Transition{}, TransitionError{"expire", b.Status}
	}
	return b.move(Expired, "the deposit was not paid by "+b.DepositDueAt.UTC().Format(time.RFC3339), now), nil
}

// RecordHarvest marks the cells collected; culture starts.
func (b *Booking) RecordHarvest(at time.Time) (Transition, error) {
	if b.Status != Confirmed || !b.RequiresHarvest {
		return Transition{}, TransitionError{"record the harvest of", b.Status}
	}
	b.HarvestedAt = &at
	return b.move(Culturing, "cells harvested", at), nil
}

// RecordCellsReady files the certificate of analysis. Passing cells make
// the balance due (or, when the price was paid in full up front, ready the
// booking for administration); failing cells end the journey without
// charging the balance.
func (b *Booking) RecordCellsReady(r QualityReport) (Transition, error) {
	ready := b.Status == Culturing || (b.Status == Confirmed && !b.RequiresHarvest)
	if !ready {
		return Transition{}, TransitionError{"report cells ready for", b.Status}
	}
	b.QC, b.CellsReadyAt = &r, &r.ReportedAt
	if reasons := r.Failures(b.DoseCells); len(reasons) > 0 {
		return b.move(QCFailed, "quality control failed: "+strings.Join(reasons, "; "), r.ReportedAt), nil
	}
	if b.Balance.IsZero() {
		return b.move(ReadyForAdministration, "quality control passed; paid in full with the deposit", r.ReportedAt), nil
	}
	return b.move(AwaitingBalance, "quality control passed", r.ReportedAt), nil
}

// ConfirmBalance applies a succeeded balance payment; a repeat is a no-op.
func (b *Booking) ConfirmBalance(paymentID string, amount money.Money, at time.Time) (*Transition, error) {
	if b.BalancePaymentID == paymentID && b.Status != AwaitingBalance && b.Status != BalanceActionRequired {
		return nil, nil
	}
	if (b.Status == Cancelled || b.Status == Expired) && b.BalancePaymentID == "" {
		// Paid after the booking ended: payment refunds it.
		return nil, nil
	}
	if b.Status != AwaitingBalance && b.Status != BalanceActionRequired {
		return nil, TransitionError{"confirm the balance of", b.Status}
	}
	if amount != b.Balance {
		return nil, fmt.Errorf("%w: balance %s paid, %s due", ErrAmountMismatch, amount, b.Balance)
	}
	b.BalancePaymentID, b.BalanceFailure = paymentID, ""
	t := b.move(ReadyForAdministration, "balance received", at)
	return &t, nil
}

// RecordBalanceFailure notes why the balance could not be charged. The
// first failure moves the booking to balance_action_required, due within
// grace: the patient pays on-session by then, or the booking is cancelled
// under its policy (CancelUnpaidBalance). A later failure (another card
// declined) is noted without moving the deadline. recorded is false for a
// stale report, which changes nothing and must not be announced.
func (b *Booking) RecordBalanceFailure(reason string, at time.Time, grace time.Duration) (recorded bool, t *Transition, err error) {
	if b.BalancePaymentID != "" {
		// Payment's failed and succeeded events travel on different
		// consumers: a decline reported after the balance was paid is stale.
		return false, nil, nil
	}
	switch b.Status {
	case AwaitingBalance:
		due := at.Add(grace)
		b.BalanceFailure, b.BalanceActionDueAt, b.LastReminderAt = reason, &due, &at
		tr := b.move(BalanceActionRequired, "the balance could not be charged: "+reason, at)
		return true, &tr, nil
	case BalanceActionRequired:
		b.BalanceFailure, b.UpdatedAt = reason, at
		return true, nil, nil
	}
	return false, nil, TransitionError{"record a balance failure for", b.Status}
}

// ReminderDue says whether a patient who must pay the balance should be
// reminded again, every interval until the deadline.
func (b *Booking) ReminderDue(now time.Time, every time.Duration) bool {
	return b.Status == BalanceActionRequired && b.LastReminderAt != nil && !now.Before(b.LastReminderAt.Add(every)) &&
		b.BalanceActionDueAt != nil && now.Before(*b.BalanceActionDueAt)
}

// Remind records a reminder sent at now.
func (b *Booking) Remind(now time.Time) { b.LastReminderAt, b.UpdatedAt = &now, now }

// Reculture is the patient choosing, after the cells failed QC, a free
// second culture instead of the refund: the booking is culturing again,
// the failed report set aside, and the balance owed again once the new
// cells pass. One re-culture per booking.
func (b *Booking) Reculture(at time.Time) (Transition, error) {
	if b.Status != QCFailed || b.CultureAttempt > 1 {
		return Transition{}, TransitionError{"re-culture", b.Status}
	}
	b.QC, b.CellsReadyAt = nil, nil
	b.CultureAttempt = 2
	return b.move(Culturing, "free re-culture chosen after the cells failed quality control", at), nil
}

// RecordAdministration marks the cells administered.
func (b *Booking) RecordAdministration(at time.Time) (Transition, error) {
	if b.Status != ReadyForAdministration {
		return Transition{}, TransitionError{"record the administration of", b.Status}
	}
	b.AdministeredAt = &at
	return b.move(Administered, "cells administered", at), nil
}
