package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
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
	var pay domain.Payment
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		plan, err := s.store.Plan(ctx, tx, b.GetId(), true)
		if errors.Is(err, store.ErrNotFound) {
			return bus.Permanent(fmt.Errorf("booking %s has no payment plan", b.GetId()))
		}
		if err != nil {
			return err
		}
		if plan.Balance.IsZero() {
			return bus.Permanent(fmt.Errorf("booking %s was paid in full with the deposit", b.GetId()))
		}
		if plan.BalanceCancelledAt != nil {
			return bus.Permanent(fmt.Errorf("booking %s: balance was cancelled (cells failed QC)", b.GetId()))
		}
		if plan.Balance.Amount != b.GetBalance().GetAmount() || string(plan.Balance.Currency) != b.GetBalance().GetCurrency() {
			return bus.Permanent(fmt.Errorf("booking %s says balance %d %s, plan says %s", b.GetId(),
				b.GetBalance().GetAmount(), b.GetBalance().GetCurrency(), plan.Balance))
		}
		deposit, err := s.store.PaymentByStage(ctx, tx, b.GetId(), domain.Deposit, false)
		if err != nil {
			return err
		}
		if deposit.Status != domain.Succeeded || deposit.PaymentMethodID == "" {
			return bus.Permanent(fmt.Errorf("booking %s: no card saved by a succeeded deposit", b.GetId()))
		}
		pay, err = s.store.InsertPayment(ctx, tx, domain.Payment{
			ID: uuid.Must(uuid.NewV7()).String(), BookingID: plan.BookingID, ClinicID: plan.ClinicID,
			Stage: domain.Balance, Amount: plan.Balance, Status: domain.Creating,
			CustomerID: plan.CustomerID, PaymentMethodID: deposit.PaymentMethodID,
			Trace: telemetry.Inject(ctx), CreatedAt: s.now().UTC(),
		})
		return err
	})
	if err != nil {
		return err
	}

	var events []bus.Event
	intent, err := s.stripe.ChargeBalance(ctx, pay)
	var card *stripegw.CardError
	switch {
	case errors.As(err, &card):
		// Declined, or the bank wants 3-D Secure: the patient must pay
		// on-session. Recorded and announced; not retried.
		st := domain.IntentState{Status: "requires_payment_method", FailureCode: card.Code, FailureMessage: card.Message, At: s.now().UTC()}
		if card.Intent != nil {
			st.ID = card.Intent.ID
		}
		out, _ := pay.Apply(st)
		events = contract.ForOutcome(pay, out)
	case err != nil:
		return fmt.Errorf("%w: charge balance: %v", ErrStripe, err) // retried with backoff, same key
	default:
		pay.PaymentIntentID = intent.ID
		if intent.State.Status == "succeeded" {
			out, err := pay.Apply(intent.State)
			if err != nil {
				return bus.Permanent(err)
			}
			events = contract.ForOutcome(pay, out)
		} else if pay.Status == domain.Creating {
			// Submitted; the outcome arrives by webhook.
			pay.Status, pay.UpdatedAt = domain.Processing, s.now().UTC()
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
		return outbox.Enqueue(ctx, tx, events...)
	})
}

// CancelBalance reacts to cells failing QC: the balance is not owed and is
// never charged. Runs in the inbox transaction.
func (s *Payments) CancelBalance(ctx context.Context, tx pgx.Tx, e *bookingv1.QualityCheckFailed) error {
	_, err := s.store.CancelBalance(ctx, tx, e.GetBooking().GetId(), e.GetReport().GetReportedAt().AsTime())
	return err
}
