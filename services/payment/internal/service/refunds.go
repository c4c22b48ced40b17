package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

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

// RefundConsumer names the durable consumer (and inbox) of cancellations.
const RefundConsumer = "payment-refunds"

// RefundCancelled returns to the patient what a cancelled booking's policy
// refunds, across its payments (the balance first), and makes sure its
// balance is never charged.
//
// A refund is an external effect, so it follows the balance charge's
// steps: (1) record the refunds, keyed on the cancellation event and the
// payment; (2) ask Stripe under booking:<id>:refund:<refund id>; (3) store
// the answers, post and announce them, and claim the inbox row in one
// transaction. A crash anywhere repeats the steps, and step 2 then returns
// the first refund instead of refunding twice.
func (s *Payments) RefundCancelled(ctx context.Context, e *bookingv1.BookingCancelled) error {
	eventID := bus.MessageOf(ctx).ID
	if done, err := inbox.Seen(ctx, s.pool, RefundConsumer, eventID); err != nil || done {
		return err
	}
	b := e.GetBooking()
	amount, err := wire.FromMoney(e.GetRefund())
	if err != nil {
		return bus.Permanent(fmt.Errorf("booking %s: refund: %w", b.GetId(), err))
	}
	var refunds []domain.Refund
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.store.Plan(ctx, tx, b.GetId(), true); errors.Is(err, store.ErrNotFound) {
			return bus.Permanent(fmt.Errorf("booking %s: %w", b.GetId(), domain.ErrNoPlan))
		} else if err != nil {
			return err
		}
		// A cancelled booking's balance is never charged, and a payment
		// that succeeds after all is refunded.
		if err := s.store.ClosePlan(ctx, tx, b.GetId(), e.GetCancelledAt().AsTime()); err != nil {
			return err
		}
		if refunds, err = s.store.RefundsByCause(ctx, tx, eventID); err != nil || len(refunds) > 0 {
			return err
		}
		pays, err := s.store.Payments(ctx, tx, b.GetId())
		if err != nil {
			return err
		}
		refunded, err := s.store.RefundedByPayment(ctx, tx, b.GetId())
		if err != nil {
			return err
		}
		planned, err := domain.PlanRefunds(eventID, amount, pays, refunded, func() string { return uuid.Must(uuid.NewV7()).String() }, s.now().UTC())
		if err != nil {
			return bus.Permanent(fmt.Errorf("booking %s: %w", b.GetId(), err))
		}
		for _, r := range planned {
			r.Trace = telemetry.Inject(ctx)
			if err := s.store.InsertRefund(ctx, tx, r); err != nil {
				return err
			}
		}
		refunds, err = s.store.RefundsByCause(ctx, tx, eventID)
		return err
	})
	if err != nil {
		return err
	}

	// An open intent (the patient never paid it) can no longer be paid;
	// one paid at this very moment is refunded when its success arrives.
	for _, stage := range []domain.Stage{domain.Deposit, domain.Balance} {
		pay, err := s.store.PaymentByStage(ctx, s.pool, b.GetId(), stage, false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if pay.PaymentIntentID == "" || pay.Status == domain.Succeeded {
			continue
		}
		if err := s.stripe.CancelIntent(ctx, b.GetId(), stage, pay.PaymentIntentID); err != nil && !errors.Is(err, stripegw.ErrRefused) {
			return fmt.Errorf("%w: cancel the %s intent: %v", ErrStripe, stage, err)
		}
	}
	answers := map[string]domain.RefundState{}
	for _, r := range refunds {
		if r.Status != domain.RefundCreating {
			continue // answered before a crash, or by a webhook
		}
		st, err := s.stripe.Refund(ctx, r)
		if errors.Is(err, stripegw.ErrRefused) {
			return bus.Permanent(fmt.Errorf("booking %s: refund %s: %w", r.BookingID, r.ID, err))
		}
		if err != nil {
			return fmt.Errorf("%w: refund: %v", ErrStripe, err) // retried with backoff, same keys
		}
		answers[r.ID] = st
	}
	return pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := inbox.Claim(ctx, tx, RefundConsumer, eventID)
		if err != nil || !fresh {
			return err
		}
		for id, st := range answers {
			r, err := s.store.RefundByID(ctx, tx, id, true)
			if err != nil {
				return err
			}
			if r.Status != domain.RefundCreating {
				continue // a webhook got there first; it decided from the refund's state
			}
			if err := s.applyRefund(ctx, tx, &r, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// applyRefund moves a refund to Stripe's state, and posts and announces
// what that did: a refund that succeeded is debited to the booking, one
// that failed after succeeding is reversed.
func (s *Payments) applyRefund(ctx context.Context, tx pgx.Tx, r *domain.Refund, st domain.RefundState) error {
	wasSucceeded := r.Status == domain.RefundSucceeded
	out := r.Apply(st)
	if err := s.store.UpdateRefund(ctx, tx, *r); err != nil {
		return err
	}
	switch out {
	case domain.RefundBecameSucceeded:
		if _, err := s.store.PostLedger(ctx, tx, domain.Refunded(*r)); err != nil {
			return err
		}
		return outbox.Enqueue(ctx, tx, contract.RefundSucceeded(*r))
	case domain.RefundBecameFailed:
		if wasSucceeded {
			if _, err := s.store.PostLedger(ctx, tx, domain.RefundReversed(*r)); err != nil {
				return err
			}
		}
		return outbox.Enqueue(ctx, tx, contract.RefundFailed(*r))
	}
	return nil
}

// handleRefundEvent applies a refund.* webhook to the refund it names (by
// Stripe's id, or by the refund id in its metadata when the event overtook
// the answer to the call that created it).
func (s *Payments) handleRefundEvent(ctx context.Context, ev stripegw.Event, payload []byte) (string, error) {
	st := *ev.Refund
	r, err := s.findRefund(ctx, s.pool, st, false)
	if errors.Is(err, store.ErrNotFound) {
		return s.recordOnly(ctx, ev, st.PaymentIntentID, OutcomeUnknown, payload)
	}
	if err != nil {
		return "", err
	}
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, r.Trace, "stripe "+ev.Type,
		trace.WithAttributes(attribute.String("stripe.event_id", ev.ID), attribute.String("booking.id", r.BookingID)))
	defer span.End()
	outcome := OutcomeApplied
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := s.store.RecordEvent(ctx, tx, ev.ID, ev.Type, st.PaymentIntentID, ev.Created, OutcomeApplied, payload)
		if err != nil {
			return err
		}
		if !fresh {
			outcome = OutcomeDuplicate
			return nil
		}
		locked, err := s.findRefund(ctx, tx, st, true)
		if err != nil {
			return err
		}
		return s.applyRefund(ctx, tx, &locked, st)
	})
	span.SetAttributes(attribute.String("stripe.outcome", outcome))
	return outcome, err
}

// handleChargeRefunded reads the refunds of a refunded charge from Stripe
// (the event's charge does not list them) and applies each one the
// platform made.
func (s *Payments) handleChargeRefunded(ctx context.Context, ev stripegw.Event, payload []byte) (string, error) {
	states, err := s.stripe.RefundsOfCharge(ctx, ev.RefundedCharge)
	if err != nil {
		return "", fmt.Errorf("%w: read the refunds of %s: %v", ErrStripe, ev.RefundedCharge, err)
	}
	outcome := OutcomeApplied
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := s.store.RecordEvent(ctx, tx, ev.ID, ev.Type, "", ev.Created, OutcomeApplied, payload)
		if err != nil {
			return err
		}
		if !fresh {
			outcome = OutcomeDuplicate
			return nil
		}
		applied := 0
		for _, st := range states {
			r, err := s.findRefund(ctx, tx, st, true)
			if errors.Is(err, store.ErrNotFound) {
				continue // a refund made outside the platform, in the dashboard
			}
			if err != nil {
				return err
			}
			if err := s.applyRefund(ctx, tx, &r, st); err != nil {
				return err
			}
			applied++
		}
		if applied == 0 {
			outcome = OutcomeUnknown
			return s.store.SetEventOutcome(ctx, tx, ev.ID, OutcomeUnknown)
		}
		return nil
	})
	return outcome, err
}

func (s *Payments) findRefund(ctx context.Context, db pgdb.Querier, st domain.RefundState, forUpdate bool) (domain.Refund, error) {
	r, err := s.store.RefundByStripeID(ctx, db, st.ID, forUpdate)
	if !errors.Is(err, store.ErrNotFound) || uuid.Validate(st.RefundID) != nil {
		return r, err
	}
	r, err = s.store.RefundByID(ctx, db, st.RefundID, forUpdate)
	if err == nil && r.StripeRefundID != "" && r.StripeRefundID != st.ID {
		return r, store.ErrNotFound // metadata names a refund Stripe knows by another id
	}
	return r, err
}

// refundLate queues the full refund of a payment that succeeded after its
// plan was closed (in the transaction that recorded the success); the
// refund sweeper sends it.
func (s *Payments) refundLate(ctx context.Context, tx pgx.Tx, p domain.Payment) error {
	plan, err := s.store.Plan(ctx, tx, p.BookingID, false)
	if err != nil {
		return err
	}
	r := domain.LateRefund(plan, p, uuid.Must(uuid.NewV7()).String(), s.now().UTC())
	if r == nil {
		return nil
	}
	r.Trace = telemetry.Inject(ctx)
	return s.store.InsertRefund(ctx, tx, *r)
}

func (s *Payments) nudgeRefunds() {
	select {
	case s.refundsDue <- struct{}{}:
	default:
	}
}

// RefundSweep is how often refunds left unsent are looked for.
const RefundSweep = 30 * time.Second

// KeepRefunding sends refunds left creating: a late payment's refund,
// queued with the success that made it late, and any whose call was never
// answered. It runs when nudged and every RefundSweep.
func (s *Payments) KeepRefunding(ctx context.Context) {
	t := time.NewTicker(RefundSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.refundsDue:
		}
		if err := s.sendStaleRefunds(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "could not send pending refunds", "err", err)
		}
	}
}

func (s *Payments) sendStaleRefunds(ctx context.Context) error {
	stale, err := s.store.StaleRefunds(ctx, s.pool, s.now().UTC().Add(-time.Minute), 50)
	if err != nil {
		return err
	}
	for _, r := range stale {
		rctx, span := telemetry.ContinueTrace(ctx, s.tracer, r.Trace, "payment refund",
			trace.WithAttributes(attribute.String("booking.id", r.BookingID)))
		st, err := s.stripe.Refund(rctx, r)
		if err == nil {
			err = pgdb.InTx(rctx, s.pool, func(tx pgx.Tx) error {
				locked, err := s.store.RefundByID(rctx, tx, r.ID, true)
				if err != nil || locked.Status != domain.RefundCreating {
					return err
				}
				return s.applyRefund(rctx, tx, &locked, st)
			})
		}
		span.End()
		if err != nil {
			return fmt.Errorf("refund %s: %w", r.ID, err)
		}
	}
	return nil
}

// settleOverpayment applies the overpayment policy after a bank transfer
// paid a payment in full: what the patient transferred beyond it stays on
// their Stripe customer balance, and is refunded to them unless the policy
// keeps it there (for their next payment). A failure is logged: the money
// stays on the customer balance, where finance sees it.
func (s *Payments) settleOverpayment(ctx context.Context, p domain.Payment) {
	if s.overpayment == domain.KeepOverpayment || p.CustomerID == "" {
		return
	}
	extra, err := s.stripe.CashBalance(ctx, p.CustomerID)
	if err != nil || !extra.IsPositive() {
		if err != nil {
			s.log.WarnContext(ctx, "could not read the customer's cash balance after a bank transfer", "booking_id", p.BookingID, "err", err)
		}
		return
	}
	plan, err := s.store.Plan(ctx, s.pool, p.BookingID, false)
	if err != nil {
		s.log.WarnContext(ctx, "could not refund an overpayment", "booking_id", p.BookingID, "err", err)
		return
	}
	id, err := s.stripe.RefundCashBalance(ctx, p.BookingID, p.CustomerID, plan.PatientEmail, extra)
	if err != nil {
		s.log.WarnContext(ctx, "could not refund an overpayment", "booking_id", p.BookingID, "amount", extra.String(), "err", err)
		return
	}
	s.log.InfoContext(ctx, "overpaid bank transfer refunded", "booking_id", p.BookingID, "amount", extra.String(), "refund", id)
}
