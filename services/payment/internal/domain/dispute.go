package domain

import (
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// DisputeStatus is where a chargeback stands.
type DisputeStatus string

const (
	// DisputeOpen: the bank took the money back (or warned it may); the
	// clinic's settlement of the booking is held.
	DisputeOpen DisputeStatus = "open"
	// DisputeWon: the money came back; the hold is released.
	DisputeWon DisputeStatus = "won"
	// DisputeLost: the money is gone for good.
	DisputeLost DisputeStatus = "lost"
	// DisputeWarningClosed: an inquiry closed without a chargeback.
	DisputeWarningClosed DisputeStatus = "warning_closed"
)

// Holds says whether a dispute in this status holds the clinic's
// settlement of its booking: open, and lost (the money is not there to
// settle).
func (s DisputeStatus) Holds() bool { return s == DisputeOpen || s == DisputeLost }

// MovedMoney is one balance transaction of a dispute at Stripe: the money
// withdrawn (negative) or reinstated (positive), and Stripe's fee on it
// (positive when charged, negative when returned).
type MovedMoney struct {
	ID     string
	Amount money.Money
	Fee    money.Money
	At     time.Time
}

// DisputeState is what Stripe says a dispute is, as of At.
type DisputeState struct {
	ID              string
	ChargeID        string
	PaymentIntentID string
	Amount          money.Money
	Status          DisputeStatus
	Reason          string
	Moves           []MovedMoney
	At              time.Time
}

// Dispute is a chargeback on one of a booking's payments.
type Dispute struct {
	ID          string // Stripe's dp_…
	BookingID   string
	ClinicID    string
	PaymentID   string
	ChargeID    string
	Amount      money.Money
	Status      DisputeStatus
	Reason      string
	Fee         money.Money // Stripe's dispute fees, net of any returned
	OpenedAt    time.Time
	ClosedAt    *time.Time
	LastEventAt time.Time
}

// Apply moves the dispute to Stripe's state; an older state than the last
// applied is ignored, except that a closing status is final.
func (d *Dispute) Apply(s DisputeState) (changed bool) {
	closed := d.Status == DisputeWon || d.Status == DisputeLost || d.Status == DisputeWarningClosed
	if closed || (!d.LastEventAt.IsZero() && s.At.Before(d.LastEventAt)) {
		return false
	}
	d.LastEventAt = s.At
	if s.Reason != "" {
		d.Reason = s.Reason
	}
	if s.Status == d.Status {
		return false
	}
	d.Status = s.Status
	if s.Status != DisputeOpen {
		at := s.At
		d.ClosedAt = &at
	}
	return true
}

// DisputeMoved is the ledger transaction of one balance transaction of a
// dispute: the amount debited to (withdrawn) or credited back from
// (reinstated) the booking's disputed account, Stripe's fee to its
// account, the net to Stripe's balance. Written once per balance
// transaction.
func DisputeMoved(d Dispute, m MovedMoney) LedgerTransaction {
	net := money.New(m.Amount.Amount-m.Fee.Amount, m.Amount.Currency)
	kind, what := KindDispute, "dispute: funds withdrawn"
	if m.Amount.IsPositive() {
		kind, what = KindDisputeReversal, "dispute: funds reinstated"
	}
	t := LedgerTransaction{Source: m.ID, Kind: kind, BookingID: d.BookingID, ClinicID: d.ClinicID, OccurredAt: m.At,
		Description: what + " (" + d.ID + ")"}
	add := func(account string, amount int64) {
		if amount != 0 {
			t.Entries = append(t.Entries, Entry{Account: account, Amount: money.New(amount, m.Amount.Currency)})
		}
	}
	add(AccountStripeBalance, net.Amount)
	add(BookingAccount(d.BookingID, "disputed"), -m.Amount.Amount)
	add(AccountStripeDisputeFees, m.Fee.Amount)
	return t
}
