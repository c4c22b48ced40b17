package domain

import (
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// DefaultCommissionBP is the platform's commission where operators set
// none: 10 % of what a booking collects.
const DefaultCommissionBP = 1000

// BookingFunds is what the ledger holds for one booking as of a moment:
// what its patient paid, got back, lost to disputes, and what was already
// released to the clinic. Unsettled is what a settlement would release
// now; negative after a refund or dispute that came after an earlier
// settlement (the clinic gives it back).
type BookingFunds struct {
	BookingID string
	Received  money.Money
	Refunded  money.Money
	Disputed  money.Money
	Settled   money.Money
	// Held: a dispute on the booking is open or lost; nothing is released.
	Held bool
}

// Unsettled is received − refunded − disputed − settled.
func (f BookingFunds) Unsettled() money.Money {
	return money.New(f.Received.Amount-f.Refunded.Amount-f.Disputed.Amount-f.Settled.Amount, f.Received.Currency)
}

// Commission is rateBP basis points of amount, rounded half away from zero
// to the minor unit: a negative amount (money given back) returns
// commission too.
func Commission(amount money.Money, rateBP int) money.Money {
	n := amount.Amount * int64(rateBP)
	if n >= 0 {
		return money.New((n+5000)/10000, amount.Currency)
	}
	return money.New(-((-n + 5000) / 10000), amount.Currency)
}

// SettlementLine is one booking on a clinic's statement.
type SettlementLine struct {
	BookingFunds
	Release    money.Money // what this statement releases (zero when held)
	Commission money.Money
	Owed       money.Money // Release − Commission
}

// Settle computes a statement's line for a booking at rateBP.
func Settle(f BookingFunds, rateBP int) SettlementLine {
	l := SettlementLine{BookingFunds: f, Release: money.Zero(f.Received.Currency)}
	if !f.Held {
		l.Release = f.Unsettled()
	}
	l.Commission = Commission(l.Release, rateBP)
	l.Owed = money.New(l.Release.Amount-l.Commission.Amount, l.Release.Currency)
	return l
}

// Period is a calendar month on the Japanese calendar, "2026-11".
type Period struct{ Start, End time.Time }

// ParsePeriod reads "YYYY-MM" in loc.
func ParsePeriod(s string, loc *time.Location) (Period, error) {
	start, err := time.ParseInLocation("2006-01", s, loc)
	if err != nil {
		return Period{}, fmt.Errorf("period %q is not YYYY-MM", s)
	}
	return Period{Start: start, End: start.AddDate(0, 1, 0)}, nil
}

// Settled is the ledger transaction releasing a booking's line to its
// clinic: the booking's settled account takes the release, the clinic is
// owed it less the commission, which is the platform's. Written once per
// booking and period.
func Settled(clinicID, period string, l SettlementLine, at time.Time) LedgerTransaction {
	t := LedgerTransaction{Source: "settlement:" + period + ":" + l.BookingID, Kind: KindSettlement, BookingID: l.BookingID,
		ClinicID: clinicID, OccurredAt: at, Description: "settlement " + period}
	add := func(account string, amount int64) {
		if amount != 0 {
			t.Entries = append(t.Entries, Entry{Account: account, Amount: money.New(amount, l.Release.Currency)})
		}
	}
	add(BookingAccount(l.BookingID, "settled"), l.Release.Amount)
	add(ClinicOwedAccount(clinicID), -l.Owed.Amount)
	add(CommissionAccount(clinicID), -l.Commission.Amount)
	return t
}
