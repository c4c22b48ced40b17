package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
	"github.com/saisei-health/platform/services/payment/internal/stripegw"
)

// ExpiryConsumer names the durable consumer (and inbox) of expired bookings.
const ExpiryConsumer = "payment-expired"

// CloseExpired closes the plan of a booking whose deposit was not paid by
// its deadline and cancels its deposit's PaymentIntent at Stripe, so the
// patient can no longer pay it. If the patient paid as the deadline
// passed, Stripe refuses the cancellation; the success, when it is
// reported, finds the plan closed and is refunded in full.
func (s *Payments) CloseExpired(ctx context.Context, e *bookingv1.BookingExpired) error {
	eventID := bus.MessageOf(ctx).ID
	if done, err := inbox.Seen(ctx, s.pool, ExpiryConsumer, eventID); err != nil || done {
		return err
	}
	bookingID := e.GetBooking().GetId()
	var deposit domain.Payment
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.store.Plan(ctx, tx, bookingID, true); errors.Is(err, store.ErrNotFound) {
			return nil // booking never reached payment: nothing to close
		} else if err != nil {
			return err
		}
		if err := s.store.ClosePlan(ctx, tx, bookingID, e.GetExpiredAt().AsTime()); err != nil {
			return err
		}
		d, err := s.store.PaymentByStage(ctx, tx, bookingID, domain.Deposit, false)
		if err == nil {
			deposit = d
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A declined attempt leaves the intent open for another card: cancel it too.
	if deposit.PaymentIntentID != "" && deposit.Status != domain.Succeeded {
		err := s.stripe.CancelIntent(ctx, bookingID, domain.Deposit, deposit.PaymentIntentID)
		if err != nil && !errors.Is(err, stripegw.ErrRefused) {
			return fmt.Errorf("%w: cancel the deposit intent: %v", ErrStripe, err) // retried, same key
		}
	}
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := inbox.Claim(ctx, tx, ExpiryConsumer, eventID)
		return err
	})
}

// BalanceSession is what the patient's app needs to pay the balance
// on-session: the intent and its client secret, as Stripe has it now.
type BalanceSession struct {
	PaymentID       string
	PaymentIntentID string
	ClientSecret    string
	Amount          money.Money
	Status          domain.IntentStatus
	Transfer        *domain.TransferInstructions
}

// ErrNothingToPay means the booking's balance was paid (or never charged).
var ErrNothingToPay = errors.New("the balance has nothing to pay on-session")

// BalanceSession reads the balance's PaymentIntent from Stripe for the
// patient to pay it themselves (authenticate it, or give another card).
func (s *Payments) BalanceSession(ctx context.Context, bookingID string) (BalanceSession, error) {
	pay, err := s.store.PaymentByStage(ctx, s.pool, bookingID, domain.Balance, false)
	if errors.Is(err, store.ErrNotFound) {
		return BalanceSession{}, fmt.Errorf("%w: %q", ErrNotFound, bookingID)
	}
	if err != nil {
		return BalanceSession{}, err
	}
	if pay.Status == domain.Succeeded || pay.PaymentIntentID == "" {
		return BalanceSession{}, fmt.Errorf("%w: balance payment is %s", ErrNothingToPay, pay.Status)
	}
	intent, err := s.stripe.RetrieveIntent(ctx, pay.PaymentIntentID)
	if err != nil {
		return BalanceSession{}, fmt.Errorf("%w: read the balance intent: %v", ErrStripe, err)
	}
	if intent.State.Status == domain.IntentSucceeded || intent.State.Status == domain.IntentCanceled {
		return BalanceSession{}, fmt.Errorf("%w: the intent is %s", ErrNothingToPay, intent.State.Status)
	}
	return BalanceSession{PaymentID: pay.ID, PaymentIntentID: intent.ID, ClientSecret: intent.ClientSecret, Amount: pay.Amount,
		Status: intent.State.Status, Transfer: intent.State.Transfer}, nil
}
