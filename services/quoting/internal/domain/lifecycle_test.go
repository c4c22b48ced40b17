package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
)

func TestExpiry(t *testing.T) {
	q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Screening: fit()})
	lastSecond := q.ValidUntil // 2026-12-09 23:59:59 JST
	if q.EffectiveStatus(lastSecond) != StatusIssued || q.Bookable(lastSecond) != nil {
		t.Fatal("bookable on its last second")
	}
	if late := lastSecond.Add(999 * time.Millisecond); q.EffectiveStatus(late) != StatusIssued {
		t.Fatal("expired before its last second was over")
	}
	after := lastSecond.Add(time.Second)
	if q.EffectiveStatus(after) != StatusExpired || !errors.Is(q.Bookable(after), ErrQuoteExpired) {
		t.Fatalf("after validity: %s %v", q.EffectiveStatus(after), q.Bookable(after))
	}
	if _, err := q.Accept("b1", "key-1", after); !errors.Is(err, ErrQuoteExpired) {
		t.Fatalf("accept after validity: %v", err)
	}
}

func TestAcceptOnce(t *testing.T) {
	q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Screening: fit()})
	if changed, err := q.Accept("b1", "key-1", issuedAt); err != nil || !changed || q.BookingID != "b1" {
		t.Fatalf("accept: %v %v", changed, err)
	}
	// The same booking request retried (after a crash it has a new booking
	// id) keeps the first booking id, even after the quote's validity.
	if changed, err := q.Accept("b1-retry", "key-1", issuedAt.Add(30*24*time.Hour)); err != nil || changed || q.BookingID != "b1" {
		t.Fatalf("same request again: %v %v, booking %s", changed, err, q.BookingID)
	}
	if _, err := q.Accept("b2", "key-2", issuedAt); !errors.Is(err, ErrAlreadyAccepted) || q.BookingID != "b1" {
		t.Fatalf("another booking: %v", err)
	}
	if q.Withdraw() {
		t.Fatal("an accepted quote cannot be withdrawn")
	}
}

func TestRevisionSupersedesAndRepricesWithTheClinicianDecision(t *testing.T) {
	v1 := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Currency: money.USD})
	if v1.Eligibility.Status != NeedsReview {
		t.Fatal("no screening: review")
	}
	dose := int64(200_000_000)
	extras := []ExtraRequest{{"interpreter", 2}}
	later := issuedAt.Add(48 * time.Hour)
	v2, err := v1.Revise("q2", adiposeStroke(), Revision{DoseCells: &dose, Extras: &extras,
		Eligibility: &Eligibility{Status: Eligible, Reasons: []Reason{{"clinician_review", Eligible, "Records reviewed by Dr Sato"}}},
		Note:        "Dose raised after MRI review"}, fx.Default(), later)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Status != StatusSuperseded || v1.SupersededBy != "q2" || v2.Version != 2 || v2.Supersedes != "q1" {
		t.Fatalf("v1 %s→%s, v2 v%d supersedes %s", v1.Status, v1.SupersededBy, v2.Version, v2.Supersedes)
	}
	// (100,000 + 300,000 + 2,400,000 + 100,000 + 1,100,000 + 90,000) × 1.1
	if v2.Total != money.Yen(4_499_000) || v2.DoseCells != dose || v2.FX.Currency != money.USD || v2.Bookable(later) != nil {
		t.Fatalf("v2 total %v dose %d currency %s bookable %v", v2.Total, v2.DoseCells, v2.FX.Currency, v2.Bookable(later))
	}
	if err := v1.Bookable(later); !errors.Is(err, ErrQuoteSuperseded) {
		t.Fatalf("booking v1: %v", err)
	}
	if _, err := v1.Revise("q3", adiposeStroke(), Revision{}, fx.Default(), later); !errors.Is(err, ErrNotRevisable) {
		t.Fatalf("revising a superseded quote: %v", err)
	}
}

func TestWithdrawal(t *testing.T) {
	q := issue(t, adiposeStroke(), Request{DoseCells: 100_000_000, Screening: fit()})
	if !q.Withdraw() || !errors.Is(q.Bookable(issuedAt), ErrQuoteWithdrawn) {
		t.Fatal("withdrawn quote must not be bookable")
	}
	if q.Withdraw() {
		t.Fatal("withdrawing twice changes nothing")
	}
}
