package domain

import (
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// BalanceLine is one of Stripe's balance transactions: money that moved on
// the account (a charge, a refund, a dispute, a payout), Stripe's fee on it
// and the net, grouped by Stripe's reporting category.
type BalanceLine struct {
	ID       string // txn_…
	Type     string
	Category string
	// Source is what moved the money: ch_…, re_…, dp_…, po_….
	Source  string
	Amount  money.Money
	Fee     money.Money
	Net     money.Money
	Created time.Time
}

// BookBalanceLine is what an imported balance transaction adds to the
// ledger, beyond what webhooks posted: Stripe's fee on a charge (or a
// refund of it), and a payout to the bank. Charges, refunds and disputes
// themselves were posted when they happened; nil when nothing is added.
func BookBalanceLine(l BalanceLine) *LedgerTransaction {
	switch {
	case l.Category == "payout" || l.Type == "payout":
		if l.Amount.IsZero() {
			return nil
		}
		out := money.New(-l.Amount.Amount, l.Amount.Currency) // a payout is negative on the balance
		source := l.Source
		if source == "" {
			source = l.ID
		}
		return &LedgerTransaction{Source: source, Kind: KindPayout, OccurredAt: l.Created, Description: "payout to the bank",
			Entries: []Entry{Debit(AccountBank, out), Credit(AccountStripeBalance, out)}}
	case l.Category == "dispute" || l.Category == "dispute_reversal" || l.Type == "adjustment":
		return nil // posted from the dispute's own events
	case !l.Fee.IsZero():
		return &LedgerTransaction{Source: l.ID, Kind: KindFee, OccurredAt: l.Created, Description: "Stripe fee on " + l.Source,
			Entries: []Entry{Debit(AccountStripeFees, l.Fee), Credit(AccountStripeBalance, l.Fee)}}
	}
	return nil
}
