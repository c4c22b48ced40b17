package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/inbox"
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
	if deposit.PaymentIntentID != "" && deposit.Status != domain.Succeeded && deposit.Status != domain.Failed {
		err := s.stripe.CancelIntent(ctx, bookingID, deposit.PaymentIntentID)
		if err != nil && !errors.Is(err, stripegw.ErrRefused) {
			return fmt.Errorf("%w: cancel the deposit intent: %v", ErrStripe, err) // retried, same key
		}
	}
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := inbox.Claim(ctx, tx, ExpiryConsumer, eventID)
		return err
	})
}
