package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/events/paymentv1"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/booking/internal/contract"
	"github.com/saisei-health/platform/services/booking/internal/domain"
	"github.com/saisei-health/platform/services/booking/internal/store"
)

// ApplyPaymentSucceeded moves a booking on when its deposit or balance is
// received. Runs inside the inbox transaction, so it applies once.
func (s *Bookings) ApplyPaymentSucceeded(ctx context.Context, tx pgx.Tx, e *paymentv1.PaymentSucceeded) error {
	amount, err := wire.FromMoney(e.GetAmount())
	if err != nil {
		return bus.Permanent(err)
	}
	b, err := s.store.Get(ctx, tx, e.GetBookingId(), true)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("payment %s names unknown booking %s", e.GetPaymentId(), e.GetBookingId()))
	}
	if err != nil {
		return err
	}
	at := e.GetSucceededAt().AsTime()
	var t *domain.Transition
	switch e.GetStage() {
	case paymentv1.Stage_STAGE_DEPOSIT:
		t, err = b.ConfirmDeposit(e.GetPaymentId(), amount, at)
	case paymentv1.Stage_STAGE_BALANCE:
		t, err = b.ConfirmBalance(e.GetPaymentId(), amount, at)
	default:
		return bus.Permanent(fmt.Errorf("payment %s has no stage", e.GetPaymentId()))
	}
	if err != nil {
		// A payment that does not fit the booking (wrong amount, wrong
		// state) needs a person: dead-letter it rather than retry.
		return bus.Permanent(fmt.Errorf("booking %s: %w", b.ID, err))
	}
	return s.save(ctx, tx, b, t)
}

// ApplyPaymentFailed records why the balance could not be charged.
func (s *Bookings) ApplyPaymentFailed(ctx context.Context, tx pgx.Tx, e *paymentv1.PaymentFailed) error {
	if e.GetStage() != paymentv1.Stage_STAGE_BALANCE {
		return nil // a failed deposit attempt leaves the booking awaiting its deposit
	}
	b, err := s.store.Get(ctx, tx, e.GetBookingId(), true)
	if err != nil {
		return err
	}
	reason := truncate(e.GetFailureCode()+": "+e.GetFailureMessage(), 500)
	recorded, t, err := b.RecordBalanceFailure(reason, e.GetFailedAt().AsTime(), s.balanceGrace)
	if err != nil {
		return bus.Permanent(err)
	}
	if !recorded {
		return nil
	}
	// The move to balance_action_required is announced by BalanceFailed
	// (one per failed charge), not by a status event.
	if err := s.store.Update(ctx, tx, b, t); err != nil {
		return err
	}
	// The patient is told (by notification) what happens next, and by when.
	return outbox.Enqueue(ctx, tx, contract.BalanceFailed(b, bus.MessageOf(ctx).ID, e.GetPaymentId(),
		truncate(e.GetFailureCode(), 100), e.GetRequiresAction(), e.GetFailedAt().AsTime()))
}

// ApplyPlanChanged cancels the bookings still awaiting their deposit when a
// treatment's provision plan is suspended or withdrawn: the treatment can
// no longer be provided. Runs in the inbox transaction.
func (s *Bookings) ApplyPlanChanged(ctx context.Context, tx pgx.Tx, e *catalogv1.PlanChanged) error {
	if st := e.GetPlan().GetStatus(); st != "suspended" && st != "withdrawn" {
		return nil
	}
	if len(e.GetTreatmentIds()) == 0 {
		return nil
	}
	due, err := s.store.AwaitingDepositFor(ctx, tx, e.GetTreatmentIds())
	if err != nil {
		return err
	}
	for _, b := range due {
		_, t, err := b.CancelForStoppedPlan(s.now().UTC())
		if err != nil {
			return err
		}
		if err := s.save(ctx, tx, b, &t); err != nil {
			return err
		}
	}
	return nil
}
