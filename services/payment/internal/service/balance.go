package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/payment/internal/contract"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
	"github.com/saisei-health/platform/services/payment/internal/stripegw"
)

// BalanceConsumer names the durable consumer (and inbox) of balance charges.
const BalanceConsumer = "payment-balance-charges"

// ChargeBalance reacts to a booking whose cells passed QC by charging the
// balance off-session on the card saved with the deposit.
//
// Charging is an external effect, so the inbox row is written last, with
// the result: (1) record the balance payment, (2) call Stripe with the
// booking's idempotency key, (3) store the result, its event and the inbox
// row in one transaction. A crash anywhere repeats the steps, and step 2
// then returns the first charge rather than charging again.
func (s *Payments) ChargeBalance(ctx context.Context, e *bookingv1.CellsReady) error {
	eventID := bus.MessageOf(ctx).ID
	if done, err := inbox.Seen(ctx, s.pool, BalanceConsumer, eventID); err != nil || done {
		return err
	}
	b := e.GetBooking()
	due, err := wire.FromMoney(b.GetBalance())
	if err != nil {
		return bus.Permanent(fmt.Errorf("booking %s: balance: %w", b.GetId(), err))
	}
	var pay domain.Payment
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var plan *domain.Plan
		var deposit *domain.Payment
		p, err := s.store.Plan(ctx, tx, b.GetId(), true)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			plan = &p
		}
		d, err := s.store.PaymentByStage(ctx, tx, b.GetId(), domain.Deposit, false)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			deposit = &d
		}
		charge, err := domain.BalanceCharge(plan, due, deposit, uuid.Must(uuid.NewV7()).String(), s.now().UTC())
		if err != nil {
			return bus.Permanent(fmt.Errorf("booking %s: %w", b.GetId(), err))
		}
		charge.Trace = telemetry.Inject(ctx)
		pay, err = s.store.InsertPayment(ctx, tx, charge)
		return err
	})
	if err != nil {
		return err
	}
	if pay.Status != domain.Creating {
		// Charged under an earlier event (booking announced the cells
		// again): Stripe's idempotency key lasts only a day, so asking
		// again could charge twice. Only a payment still being created,
		// whose charge may not have reached Stripe, is sent (again).
		return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			_, err := inbox.Claim(ctx, tx, BalanceConsumer, eventID)
			return err
		})
	}

	var events []bus.Event
	out := domain.NoChange
	intent, err := s.charge(ctx, pay)
	var card *stripegw.CardError
	switch {
	case errors.As(err, &card):
		// Declined, or the bank wants 3-D Secure: the patient must pay
		// on-session. Recorded and announced; not retried.
		out, _ = pay.Apply(card.State)
		events = contract.ForOutcome(pay, out)
	case err != nil:
		return fmt.Errorf("%w: charge balance: %v", ErrStripe, err) // retried with backoff, same key
	default:
		pay.PaymentIntentID = intent.ID
		if intent.State.Status == domain.IntentAwaitingTransfer {
			// Asked for by bank transfer: the patient must act.
			if out, err = pay.Apply(intent.State); err != nil {
				return bus.Permanent(err)
			}
			events = contract.ForOutcome(pay, out)
		} else if intent.State.Status == domain.IntentSucceeded {
			if out, err = pay.Apply(intent.State); err != nil {
				return bus.Permanent(err)
			}
			events = contract.ForOutcome(pay, out)
		} else if pay.Status == domain.Creating {
			// Submitted; the outcome arrives by webhook.
			pay.Status, pay.UpdatedAt = domain.Processing, s.now().UTC()
			events = []bus.Event{contract.Requested(pay)}
		}
	}
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := inbox.Claim(ctx, tx, BalanceConsumer, eventID)
		if err != nil || !fresh {
			return err
		}
		current, err := s.store.PaymentByStage(ctx, tx, pay.BookingID, domain.Balance, true)
		if err != nil {
			return err
		}
		if current.Status != domain.Creating {
			return nil // a webhook got there first; it decided from the intent's state
		}
		if err := s.store.UpdatePayment(ctx, tx, pay); err != nil {
			return err
		}
		if err := s.book(ctx, tx, pay, out); err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, events...)
	})
}

// CancelBalance reacts to cells failing QC: the balance is not owed and is
// never charged. Runs in the inbox transaction.
func (s *Payments) CancelBalance(ctx context.Context, tx pgx.Tx, e *bookingv1.QualityCheckFailed) error {
	_, err := s.store.CancelBalance(ctx, tx, e.GetBooking().GetId(), e.GetReport().GetReportedAt().AsTime())
	return err
}

// RestoreBalance reacts to a free re-culture after a failed QC: the
// balance is owed again once the new cells pass. Runs in the inbox
// transaction, after the qc_failed that cancelled it (same consumer, in order).
func (s *Payments) RestoreBalance(ctx context.Context, tx pgx.Tx, e *bookingv1.RecultureStarted) error {
	return s.store.RestoreBalance(ctx, tx, e.GetBooking().GetId())
}

// keyLifetime is how long Stripe remembers an idempotency key; a charge
// still "creating" this close to it is looked up instead of sent again.
const keyLifetime = 24 * time.Hour

// charge sends the balance charge, or, when an earlier attempt left the
// payment "creating" for almost a day (a dead-lettered cells_ready replayed
// late), first asks Stripe whether that attempt created an intent: after
// 24 hours the same idempotency key would create a second one.
func (s *Payments) charge(ctx context.Context, pay domain.Payment) (stripegw.Intent, error) {
	if s.now().Sub(pay.CreatedAt) > keyLifetime-time.Hour {
		found, err := s.stripe.FindIntent(ctx, pay.ID)
		if err != nil {
			return stripegw.Intent{}, err
		}
		if found != nil {
			return *found, nil
		}
	}
	return s.stripe.ChargeBalance(ctx, pay)
}
