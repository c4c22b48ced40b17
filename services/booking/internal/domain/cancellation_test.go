package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// The terms a ¥3,000,000 booking was made under: a ¥100,000 fee before the
// harvest, a ¥110,000 consultation, a ¥1,900,000 culture.
func withTerms(b *Booking) *Booking {
	b.Terms = CancellationTerms{PolicyVersion: 2, CancellationFee: money.Yen(100_000), ConsultationFee: money.Yen(110_000),
		CultureCost: money.Yen(1_900_000)}
	return b
}

// at walks a fresh booking to status.
func at(t *testing.T, status Status) *Booking {
	t.Helper()
	b := withTerms(newBooking())
	if status == AwaitingDeposit {
		return b
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.ConfirmDeposit("pay_dep", money.Yen(1_900_000), t0))
	if status == Confirmed {
		return b
	}
	must(b.RecordHarvest(t0.Add(24 * time.Hour)))
	if status == Culturing {
		return b
	}
	if status == QCFailed {
		r := passing()
		r.SterilityPassed = false
		must(b.RecordCellsReady(r))
		return b
	}
	must(b.RecordCellsReady(passing()))
	if status == AwaitingBalance {
		return b
	}
	must(b.ConfirmBalance("pay_bal", money.Yen(1_100_000), t0))
	if status == ReadyForAdministration {
		return b
	}
	must(b.RecordAdministration(t0.Add(40 * 24 * time.Hour)))
	return b
}

func TestWhatACancellationRefundsDependsOnHowFarTheTreatmentWent(t *testing.T) {
	for _, c := range []struct {
		from             Status
		refund, retained int64
		reason           CancellationReason
		says             string
	}{
		{AwaitingDeposit, 0, 0, CancelledByPatient, "nothing was charged"},
		{Confirmed, 1_800_000, 100_000, CancelledByPatient, "cancellation fee of ¥100,000"},
		{Culturing, 0, 1_900_000, CancelledByPatient, "its cost of ¥1,900,000"},
		{AwaitingBalance, 0, 1_900_000, CancelledByPatient, "its cost of ¥1,900,000"},
		{ReadyForAdministration, 1_100_000, 1_900_000, CancelledByPatient, "beyond it is refunded"},
		{QCFailed, 1_900_000, 0, RefundedAfterQCFailure, "everything paid is refunded"},
	} {
		b := at(t, c.from)
		got, tr, err := b.Cancel(t0.Add(50 * 24 * time.Hour))
		if err != nil {
			t.Fatalf("from %s: %v", c.from, err)
		}
		if got.Refund != money.Yen(c.refund) || got.Retained != money.Yen(c.retained) || got.Reason != c.reason ||
			!strings.Contains(got.Explanation, c.says) {
			t.Errorf("from %s: %+v", c.from, got)
		}
		if b.Status != Cancelled || tr.From != c.from || tr.To != Cancelled || b.Cancellation == nil || *b.Cancellation != got {
			t.Errorf("from %s: booking %s, transition %+v", c.from, b.Status, tr)
		}
		// Money adds up: refunded + kept = received.
		if got.Refund.Amount+got.Retained.Amount != b.Received().Amount {
			t.Errorf("from %s: %d + %d != %d received", c.from, got.Refund.Amount, got.Retained.Amount, b.Received().Amount)
		}
	}
	for _, from := range []Status{Administered, Cancelled} {
		b := at(t, Administered)
		if from == Cancelled {
			b = at(t, Confirmed)
			_, _, _ = b.Cancel(t0)
		}
		if _, _, err := b.Cancel(t0); !errors.Is(err, ErrInvalidTransition) {
			t.Errorf("cancelling a booking %s: %v", from, err)
		}
	}
}

func TestAnIneligiblePatientGetsTheDepositBackLessTheConsultation(t *testing.T) {
	b := at(t, Confirmed)
	if _, _, err := b.FindIneligible("", t0); !errors.Is(err, ErrNoteRequired) {
		t.Fatalf("without a reason: %v", err)
	}
	c, _, err := b.FindIneligible("severe heart failure found at the examination", t0)
	if err != nil || c.Refund != money.Yen(1_790_000) || c.Retained != money.Yen(110_000) || c.Reason != FoundIneligible ||
		c.ClinicNote == "" || b.Status != Cancelled {
		t.Fatalf("%+v %v", c, err)
	}
	// Once the cells are harvested the consultation is long past.
	if _, _, err := at(t, Culturing).FindIneligible("late", t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("after the harvest: %v", err)
	}
}

func TestABookingFromBeforeTermsKeepsNothing(t *testing.T) {
	b := newBooking() // no terms: zero values without a currency
	if _, err := b.ConfirmDeposit("pay_dep", money.Yen(1_900_000), t0); err != nil {
		t.Fatal(err)
	}
	c, _, err := b.Cancel(t0)
	if err != nil || c.Refund != money.Yen(1_900_000) || c.Retained != money.Yen(0) {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestAFailedCultureMayBeRedoneOnce(t *testing.T) {
	b := at(t, QCFailed)
	tr, err := b.Reculture(t0.Add(40 * 24 * time.Hour))
	if err != nil || tr.To != Culturing || b.QC != nil || b.CultureAttempt != 2 {
		t.Fatalf("re-culture: %+v %v", tr, err)
	}
	r := passing()
	r.SterilityPassed = false
	if _, err := b.RecordCellsReady(r); err != nil || b.Status != QCFailed {
		t.Fatalf("the second culture fails too: %v %s", err, b.Status)
	}
	if _, err := b.Reculture(t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("a third culture: %v", err)
	}
	if _, err := at(t, Culturing).Reculture(t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("re-culture while culturing: %v", err)
	}
}
