package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

var t0 = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

func newBooking() *Booking {
	return &Booking{ID: "b1", Status: AwaitingDeposit, DoseCells: 100_000_000, RequiresHarvest: true,
		Total: money.Yen(3_000_000), Deposit: money.Yen(1_900_000), Balance: money.Yen(1_100_000)}
}

func passing() QualityReport {
	return QualityReport{CellCount: 120_000_000, ViabilityBP: 9250, SterilityPassed: true, EndotoxinPassed: true, ReportedAt: t0.Add(30 * 24 * time.Hour)}
}

func TestHappyPathVisitsEveryState(t *testing.T) {
	b := newBooking()
	steps := []func() (Status, error){
		func() (Status, error) {
			tr, err := b.ConfirmDeposit("pay_dep", money.Yen(1_900_000), t0)
			return tr.To, err
		},
		func() (Status, error) { tr, err := b.RecordHarvest(t0.Add(24 * time.Hour)); return tr.To, err },
		func() (Status, error) { tr, err := b.RecordCellsReady(passing()); return tr.To, err },
		func() (Status, error) {
			tr, err := b.ConfirmBalance("pay_bal", money.Yen(1_100_000), t0)
			return tr.To, err
		},
		func() (Status, error) {
			tr, err := b.RecordAdministration(t0.Add(40 * 24 * time.Hour))
			return tr.To, err
		},
	}
	want := []Status{Confirmed, Culturing, AwaitingBalance, ReadyForAdministration, Administered}
	for i, step := range steps {
		got, err := step()
		if err != nil || got != want[i] || b.Status != want[i] {
			t.Fatalf("step %d: %s, %v; want %s", i, got, err, want[i])
		}
	}
}

func TestRepeatedPaymentIsANoOpAndWrongAmountIsRefused(t *testing.T) {
	b := newBooking()
	if _, err := b.ConfirmDeposit("pay_dep", money.Yen(190_000), t0); !errors.Is(err, ErrAmountMismatch) {
		t.Fatalf("short deposit: %v", err)
	}
	if _, err := b.ConfirmDeposit("pay_dep", money.Yen(1_900_000), t0); err != nil {
		t.Fatal(err)
	}
	tr, err := b.ConfirmDeposit("pay_dep", money.Yen(1_900_000), t0)
	if err != nil || tr != nil || b.Status != Confirmed {
		t.Fatalf("repeat: %v %v %s", tr, err, b.Status)
	}
	if _, err := b.ConfirmDeposit("pay_other", money.Yen(1_900_000), t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("a second, different deposit: %v", err)
	}
}

func TestOutOfOrderActionsAreRefused(t *testing.T) {
	b := newBooking()
	if _, err := b.RecordHarvest(t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("harvest before deposit: %v", err)
	}
	if _, err := b.RecordAdministration(t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("administer before anything: %v", err)
	}
	var te TransitionError
	_, err := b.RecordCellsReady(passing())
	if !errors.As(err, &te) || te.From != AwaitingDeposit {
		t.Fatalf("cells ready before harvest: %v", err)
	}
}

func TestFailingQualityControlStopsBeforeTheBalance(t *testing.T) {
	cases := map[string]func(*QualityReport){
		"sterility":       func(r *QualityReport) { r.SterilityPassed = false },
		"endotoxin":       func(r *QualityReport) { r.EndotoxinPassed = false },
		"viability 69.99": func(r *QualityReport) { r.ViabilityBP = 6999 },
		"too few cells":   func(r *QualityReport) { r.CellCount = 99_999_999 },
	}
	for name, spoil := range cases {
		b := newBooking()
		b.ConfirmDeposit("p", money.Yen(1_900_000), t0)
		b.RecordHarvest(t0)
		r := passing()
		spoil(&r)
		tr, err := b.RecordCellsReady(r)
		if err != nil || tr.To != QCFailed {
			t.Errorf("%s: %v %v", name, tr, err)
		}
		if _, err := b.ConfirmBalance("p2", money.Yen(1_100_000), t0); !errors.Is(err, ErrInvalidTransition) {
			t.Errorf("%s: balance accepted after failed QC: %v", name, err)
		}
	}
	b := newBooking()
	b.ConfirmDeposit("p", money.Yen(1_900_000), t0)
	b.RecordHarvest(t0)
	r := passing()
	r.ViabilityBP, r.CellCount = 7000, 100_000_000 // exactly at the thresholds
	if tr, _ := b.RecordCellsReady(r); tr.To != AwaitingBalance {
		t.Fatalf("boundary report: %s", tr.To)
	}
}

func TestParsePercent(t *testing.T) {
	good := map[string]int32{"92.5": 9250, "100": 10000, "0": 0, "70.00": 7000, "99.99": 9999}
	for in, want := range good {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "100.01", "92.555", "1e2", "abc", ".5", "5."} {
		if _, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) accepted", in)
		}
	}
	if FormatPercent(9250) != "92.5" || FormatPercent(7000) != "70" || FormatPercent(9999) != "99.99" {
		t.Fatal("FormatPercent")
	}
}

func FuzzParsePercent(f *testing.F) {
	f.Add("92.5")
	f.Add("100.00")
	f.Fuzz(func(t *testing.T, s string) {
		bp, err := ParsePercent(s)
		if err == nil && (bp < 0 || bp > 10000) {
			t.Fatalf("%q → %d out of range", s, bp)
		}
	})
}

func TestProtocolsWithoutHarvestOrBalance(t *testing.T) {
	// An exosome product paid in full up front: no harvest, no balance.
	b := &Booking{ID: "b2", Status: AwaitingDeposit, DoseCells: 1, RequiresHarvest: false,
		Total: money.Yen(1_650_000), Deposit: money.Yen(1_650_000), Balance: money.Yen(0)}
	if _, err := b.ConfirmDeposit("p", money.Yen(1_650_000), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RecordHarvest(t0); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("harvest of a product with nothing to harvest: %v", err)
	}
	tr, err := b.RecordCellsReady(QualityReport{CellCount: 1, ViabilityBP: 10000, SterilityPassed: true, EndotoxinPassed: true, ReportedAt: t0})
	if err != nil || tr.To != ReadyForAdministration {
		t.Fatalf("cells ready, paid in full: %v %v", tr, err)
	}
	if _, err := b.RecordAdministration(t0); err != nil {
		t.Fatal(err)
	}
	// A harvested protocol cannot skip the harvest.
	c := newBooking()
	c.RequiresHarvest = true
	c.ConfirmDeposit("p", money.Yen(1_900_000), t0)
	if _, err := c.RecordCellsReady(passing()); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("cells ready before harvest: %v", err)
	}
}

func TestABalanceDeclineWaitsForThePatientAndALateOneIsStale(t *testing.T) {
	b := withTerms(newBooking())
	b.Status = AwaitingBalance
	b.DepositPaymentID = "pay_dep"
	recorded, tr, err := b.RecordBalanceFailure("card_declined: Your card was declined.", t0, 72*time.Hour)
	if err != nil || !recorded || tr == nil || tr.To != BalanceActionRequired || b.BalanceFailure == "" ||
		!b.BalanceActionDueAt.Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("decline while awaiting the balance: %v %v %+v %q", recorded, err, tr, b.BalanceFailure)
	}
	// Another card declined: noted, the deadline stays.
	if recorded, tr, err := b.RecordBalanceFailure("card_declined: again", t0.Add(time.Hour), 72*time.Hour); err != nil || !recorded ||
		tr != nil || !b.BalanceActionDueAt.Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("a second decline: %v %+v %v", recorded, tr, err)
	}
	// Reminded a day after, not before; not after the deadline.
	if b.ReminderDue(t0.Add(23*time.Hour), 24*time.Hour) || !b.ReminderDue(t0.Add(24*time.Hour), 24*time.Hour) ||
		b.ReminderDue(t0.Add(73*time.Hour), 24*time.Hour) {
		t.Fatal("reminders are due every day until the deadline")
	}
	if _, _, err := b.CancelUnpaidBalance(t0.Add(71 * time.Hour)); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("cancelled before the deadline: %v", err)
	}
	paid := *b
	if _, err := paid.ConfirmBalance("pay_bal", money.Yen(1_100_000), t0.Add(2*time.Hour)); err != nil || paid.BalanceFailure != "" ||
		paid.Status != ReadyForAdministration {
		t.Fatalf("balance paid on-session: %v, failure %q", err, paid.BalanceFailure)
	}
	// The decline of an earlier attempt arrives late, on its own consumer.
	if recorded, _, err := paid.RecordBalanceFailure("card_declined: late", t0.Add(3*time.Hour), 72*time.Hour); err != nil || recorded ||
		paid.Status != ReadyForAdministration {
		t.Fatalf("late decline: %v %v, status %s", recorded, err, paid.Status)
	}
	// Unpaid at the deadline: the culture is kept, the rest refunded (nothing more here).
	c, tr2, err := b.CancelUnpaidBalance(t0.Add(72 * time.Hour))
	if err != nil || c.Reason != BalanceUnpaid || c.Retained != money.Yen(1_900_000) || c.Refund != money.Yen(0) || tr2.To != Cancelled {
		t.Fatalf("unpaid at the deadline: %+v %v", c, err)
	}
	// Before the balance is due, a decline still does not fit.
	early := newBooking()
	if _, _, err := early.RecordBalanceFailure("x", t0, time.Hour); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("decline before the balance is due: %v", err)
	}
}
