package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
	"github.com/saisei-health/platform/services/payment/internal/stripegw"
)

// handleDisputeEvent applies a charge.dispute.* webhook: the dispute is
// recorded on the payment whose charge it disputes (found by the charge,
// by the intent, or, for an event that arrives before the payment's charge
// is known, by asking Stripe which intent the charge belongs to), follows
// Stripe's status, and each balance transaction it carries (money
// withdrawn or reinstated, and Stripe's fee) is posted to the ledger once.
func (s *Payments) handleDisputeEvent(ctx context.Context, ev stripegw.Event, payload []byte) (string, error) {
	st := *ev.Dispute
	pay, err := s.paymentOfDispute(ctx, st)
	if errors.Is(err, store.ErrNotFound) {
		return s.recordOnly(ctx, ev, st.PaymentIntentID, OutcomeUnknown, payload)
	}
	if err != nil {
		return "", err
	}
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, pay.Trace, "stripe "+ev.Type,
		trace.WithAttributes(attribute.String("stripe.event_id", ev.ID), attribute.String("booking.id", pay.BookingID)))
	defer span.End()
	outcome := OutcomeApplied
	var d domain.Dispute
	opened := false
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := s.store.RecordEvent(ctx, tx, ev.ID, ev.Type, pay.PaymentIntentID, ev.Created, OutcomeApplied, payload)
		if err != nil || !fresh {
			if !fresh {
				outcome = OutcomeDuplicate
			}
			return err
		}
		if d, err = s.store.InsertDispute(ctx, tx, domain.Dispute{ID: st.ID, BookingID: pay.BookingID, ClinicID: pay.ClinicID,
			PaymentID: pay.ID, ChargeID: st.ChargeID, Amount: st.Amount, Status: domain.DisputeOpen, Reason: st.Reason,
			OpenedAt: st.At}); err != nil {
			return err
		}
		opened = d.LastEventAt.Equal(st.At) && d.Status == domain.DisputeOpen
		d.Apply(st)
		for _, m := range st.Moves {
			posted, err := s.store.PostLedger(ctx, tx, domain.DisputeMoved(d, m))
			if err != nil {
				return err
			}
			if posted && m.Fee.Currency == d.Fee.Currency {
				d.Fee = money.New(d.Fee.Amount+m.Fee.Amount, d.Fee.Currency)
			}
		}
		return s.store.UpdateDispute(ctx, tx, d)
	})
	if err == nil && outcome == OutcomeApplied {
		// Finance reads the open disputes (GET /v1/finance/disputes); the
		// log is the alert.
		s.log.WarnContext(ctx, "dispute "+string(d.Status), "dispute_id", d.ID, "booking_id", d.BookingID, "clinic_id", d.ClinicID,
			"amount", d.Amount.String(), "fee", d.Fee.String(), "reason", d.Reason, "opened", opened)
	}
	span.SetAttributes(attribute.String("stripe.outcome", outcome))
	return outcome, err
}

func (s *Payments) paymentOfDispute(ctx context.Context, st domain.DisputeState) (domain.Payment, error) {
	if st.ChargeID != "" {
		if p, err := s.store.PaymentByCharge(ctx, s.pool, st.ChargeID); !errors.Is(err, store.ErrNotFound) {
			return p, err
		}
	}
	intent := st.PaymentIntentID
	if intent == "" && st.ChargeID != "" {
		var err error
		if intent, err = s.stripe.IntentOfCharge(ctx, st.ChargeID); err != nil {
			return domain.Payment{}, fmt.Errorf("%w: read charge %s: %v", ErrStripe, st.ChargeID, err)
		}
	}
	if intent == "" {
		return domain.Payment{}, store.ErrNotFound
	}
	return s.store.PaymentByIntent(ctx, s.pool, intent, false)
}

// MaxDisputesPage bounds the disputes list.
const MaxDisputesPage = 200

// Disputes lists disputes for finance, newest first; status "" lists all.
func (s *Payments) Disputes(ctx context.Context, status domain.DisputeStatus) ([]domain.Dispute, error) {
	return s.store.Disputes(ctx, s.pool, status, MaxDisputesPage)
}
