package service

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
	"github.com/saisei-health/platform/services/payment/internal/stripegw"
)

// Webhook errors the transport maps to problem types.
var (
	ErrBadSignature   = stripegw.ErrBadSignature
	ErrMalformedEvent = stripegw.ErrMalformedEvent
)

// Outcomes of a webhook event, recorded with it.
const (
	OutcomeApplied   = "applied"
	OutcomeDuplicate = "duplicate"
	OutcomeIgnored   = "ignored"
	OutcomeUnknown   = "unknown_payment_intent"
	OutcomeMismatch  = "amount_mismatch"
)

// HandleWebhook verifies and applies one Stripe event. Stripe delivers
// late, twice and out of order: the signature is checked (with Stripe's
// default five-minute tolerance against replays), each event id is applied
// once, and the payment follows the intent's state as of the event, never
// moving back from succeeded. The work continues the trace the payment was
// created in, so the booking stays one trace.
func (s *Payments) HandleWebhook(ctx context.Context, payload []byte, signature string) (string, error) {
	ev, err := s.stripe.VerifyWebhook(payload, signature)
	if err != nil {
		return "", err
	}
	switch {
	case ev.Refund != nil:
		return s.handleRefundEvent(ctx, ev, payload)
	case ev.RefundedCharge != "":
		return s.handleChargeRefunded(ctx, ev, payload)
	case ev.Dispute != nil:
		return s.handleDisputeEvent(ctx, ev, payload)
	case ev.Intent == nil:
		return s.recordOnly(ctx, ev, "", OutcomeIgnored, payload)
	}
	st := *ev.Intent
	pay, err := s.findPayment(ctx, s.pool, st.ID, ev.PaymentID, false)
	if errors.Is(err, store.ErrNotFound) {
		// Not ours (another integration on the account) or not stored yet;
		// recorded so finance sees it, answered 200 so Stripe stops.
		return s.recordOnly(ctx, ev, st.ID, OutcomeUnknown, payload)
	}
	if err != nil {
		return "", err
	}
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, pay.Trace, "stripe "+ev.Type,
		trace.WithAttributes(attribute.String("stripe.event_id", ev.ID), attribute.String("booking.id", pay.BookingID),
			attribute.String("payment.stage", string(pay.Stage))))
	defer span.End()

	outcome := OutcomeApplied
	var transferred *domain.Payment // a bank-transfer deposit that just succeeded
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := s.store.RecordEvent(ctx, tx, ev.ID, ev.Type, st.ID, ev.Created, OutcomeApplied, payload)
		if err != nil {
			return err
		}
		if !fresh {
			outcome = OutcomeDuplicate
			return nil
		}
		p, err := s.findPayment(ctx, tx, st.ID, pay.ID, true)
		if err != nil {
			return err
		}
		out, err := s.apply(ctx, tx, &p, st)
		if err == nil && out == domain.BecameSucceeded && p.Method == domain.ByBankTransfer {
			transferred = &p
		}
		if errors.Is(err, domain.ErrAmountMismatch) {
			// Money arrived that does not match: keep the evidence, do not
			// confirm the booking, and let finance resolve it.
			outcome = OutcomeMismatch
			return s.store.SetEventOutcome(ctx, tx, ev.ID, OutcomeMismatch)
		} else if err != nil {
			return err
		}
		return nil
	})
	span.SetAttributes(attribute.String("stripe.outcome", outcome))
	if err == nil && outcome == OutcomeApplied {
		s.nudgeRefunds() // a late payment's refund may be queued
	}
	if err == nil && transferred != nil {
		s.settleOverpayment(ctx, *transferred)
	}
	return outcome, err
}

// findPayment finds the payment of an intent by its id or, when the intent
// id is not stored yet (Stripe's webhook can overtake the response to the
// call that created the intent), by the payment id in the intent's metadata.
func (s *Payments) findPayment(ctx context.Context, db pgdb.Querier, intentID, paymentID string, forUpdate bool) (domain.Payment, error) {
	p, err := s.store.PaymentByIntent(ctx, db, intentID, forUpdate)
	if !errors.Is(err, store.ErrNotFound) || uuid.Validate(paymentID) != nil {
		return p, err
	}
	p, err = s.store.PaymentByID(ctx, db, paymentID, forUpdate)
	if err == nil && p.PaymentIntentID != "" && p.PaymentIntentID != intentID {
		return p, store.ErrNotFound // metadata names a payment that has another intent
	}
	return p, err
}

// recordOnly keeps an event the platform does not act on, for finance; a
// redelivery of it is a duplicate like any other.
func (s *Payments) recordOnly(ctx context.Context, ev stripegw.Event, intentID, outcome string, payload []byte) (string, error) {
	fresh, err := s.store.RecordEvent(ctx, s.pool, ev.ID, ev.Type, intentID, ev.Created, outcome, payload)
	if err != nil {
		return "", err
	}
	if !fresh {
		return OutcomeDuplicate, nil
	}
	return outcome, nil
}
