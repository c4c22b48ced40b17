package domain

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// The ledger is double-entry: every movement of money is one balanced
// transaction (its entries sum to zero in each currency), immutable, and
// written once per cause — the Stripe object that moved the money (a
// charge, a refund, a balance transaction's fee, a dispute, a payout). An
// entry's amount is positive for a debit and negative for a credit.
//
// Accounts, by what they hold:
//
//	stripe:balance                       money at Stripe (debit: it has it)
//	stripe:fees, stripe:dispute_fees     Stripe's fees (debit: spent)
//	bank                                 paid out to the platform's bank
//	booking:<id>:deposit_received        what the patient paid for a stage
//	booking:<id>:balance_received        (credit: received)
//	booking:<id>:refunded                returned to the patient (debit)
//	booking:<id>:disputed                taken back by a dispute (debit)
//	booking:<id>:settled                 released to the clinic (debit)
//	clinic:<id>:owed                     owed to the clinic (credit)
//	platform:commission:<clinic_id>      the platform's commission (credit)
//
// So a booking's accounts sum to what is still held for it: received −
// refunded − disputed − settled.

// Platform-wide accounts.
const (
	AccountStripeBalance     = "stripe:balance"
	AccountStripeFees        = "stripe:fees"
	AccountStripeDisputeFees = "stripe:dispute_fees"
	AccountBank              = "bank"
)

// BookingAccount is one of a booking's accounts: what is one of
// "deposit_received", "balance_received", "refunded", "disputed", "settled".
func BookingAccount(bookingID, what string) string { return "booking:" + bookingID + ":" + what }

// ReceivedAccount is the account a stage's payments are credited to.
func ReceivedAccount(bookingID string, s Stage) string {
	return BookingAccount(bookingID, string(s)+"_received")
}

// ClinicOwedAccount is what the platform owes a clinic.
func ClinicOwedAccount(clinicID string) string { return "clinic:" + clinicID + ":owed" }

// CommissionAccount is the platform's commission on a clinic's bookings.
func CommissionAccount(clinicID string) string { return "platform:commission:" + clinicID }

// LedgerKind is what caused a ledger transaction.
type LedgerKind string

const (
	KindCharge          LedgerKind = "charge"
	KindRefund          LedgerKind = "refund"
	KindFee             LedgerKind = "fee"
	KindDispute         LedgerKind = "dispute"
	KindDisputeReversal LedgerKind = "dispute_reversal"
	KindDisputeFee      LedgerKind = "dispute_fee"
	KindPayout          LedgerKind = "payout"
	KindSettlement      LedgerKind = "settlement"
)

// maxEntriesPerLedgerTx bounds a transaction; the widest (a settlement
// split between a clinic and the commission) has four.
const maxEntriesPerLedgerTx = 16

// LedgerKinds are every kind, for validation at the edges.
var LedgerKinds = []LedgerKind{KindCharge, KindRefund, KindFee, KindDispute, KindDisputeReversal, KindDisputeFee,
	KindPayout, KindSettlement}

// Entry is one line of a ledger transaction: a debit (positive) or a
// credit (negative) on an account.
type Entry struct {
	Account string
	Amount  money.Money
}

// Debit and Credit make entries.
func Debit(account string, m money.Money) Entry { return Entry{Account: account, Amount: m} }
func Credit(account string, m money.Money) Entry {
	return Entry{Account: account, Amount: money.New(-m.Amount, m.Currency)}
}

// LedgerTransaction is one movement of money.
type LedgerTransaction struct {
	// Source is the id of what moved the money (ch_…, re_…, txn_…, dp_…,
	// po_…): the ledger holds at most one transaction per source.
	Source      string
	Kind        LedgerKind
	BookingID   string // empty for platform-wide movements (payouts)
	ClinicID    string
	OccurredAt  time.Time
	Description string
	Entries     []Entry
}

// ErrUnbalanced means a transaction's entries do not sum to zero.
var ErrUnbalanced = errors.New("ledger transaction does not balance")

// Validate checks what the database checks too: a source, two to sixteen
// non-zero entries on named accounts, summing to zero in each currency.
func (t LedgerTransaction) Validate() error {
	if t.Source == "" {
		return errors.New("ledger transaction has no source")
	}
	if len(t.Entries) < 2 || len(t.Entries) > maxEntriesPerLedgerTx {
		return fmt.Errorf("ledger transaction %s has %d entries", t.Source, len(t.Entries))
	}
	sums := map[money.Currency]int64{}
	for _, e := range t.Entries {
		if e.Amount.IsZero() || !e.Amount.Currency.Valid() || !validAccount(e.Account) {
			return fmt.Errorf("ledger transaction %s: entry %q %s", t.Source, e.Account, e.Amount)
		}
		s := sums[e.Amount.Currency]
		if (e.Amount.Amount > 0 && s > math.MaxInt64-e.Amount.Amount) || (e.Amount.Amount < 0 && s < math.MinInt64-e.Amount.Amount) {
			return fmt.Errorf("ledger transaction %s overflows", t.Source)
		}
		sums[e.Amount.Currency] = s + e.Amount.Amount
	}
	for c, s := range sums {
		if s != 0 {
			return fmt.Errorf("%w: %s is off by %d %s", ErrUnbalanced, t.Source, s, c)
		}
	}
	return nil
}

func validAccount(a string) bool {
	parts := strings.Split(a, ":")
	for _, p := range parts {
		if p == "" || len(p) > 64 {
			return false
		}
	}
	return len(parts) <= 4
}

// Received is the ledger transaction of a payment that succeeded: Stripe
// holds the money, credited to the booking's stage. chargeID is the Stripe
// charge that took it (the PaymentIntent's when Stripe named none).
func Received(p Payment, chargeID string) LedgerTransaction {
	source := chargeID
	if source == "" {
		source = p.PaymentIntentID
	}
	at := p.UpdatedAt
	if p.SucceededAt != nil {
		at = *p.SucceededAt
	}
	return LedgerTransaction{
		Source: source, Kind: KindCharge, BookingID: p.BookingID, ClinicID: p.ClinicID, OccurredAt: at,
		Description: string(p.Stage) + " received",
		Entries: []Entry{
			Debit(AccountStripeBalance, p.AmountReceived),
			Credit(ReceivedAccount(p.BookingID, p.Stage), p.AmountReceived),
		},
	}
}
