// Package contract maps payments onto the payment.v1 event contract.
package contract

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/paymentv1"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

func stage(s domain.Stage) paymentv1.Stage {
	if s == domain.Deposit {
		return paymentv1.Stage_STAGE_DEPOSIT
	}
	return paymentv1.Stage_STAGE_BALANCE
}

func stageToken(s domain.Stage) subject.Stage {
	if s == domain.Deposit {
		return subject.Deposit
	}
	return subject.Balance
}

// Succeeded announces a received payment, once per payment.
func Succeeded(p domain.Payment) bus.Event {
	return bus.Event{
		ID:      "payment:" + p.ID + ":succeeded",
		Subject: subject.Payment(p.ClinicID, stageToken(p.Stage), subject.Succeeded),
		Message: &paymentv1.PaymentSucceeded{
			PaymentId: p.ID, BookingId: p.BookingID, ClinicId: p.ClinicID, Stage: stage(p.Stage),
			Amount: wire.Money(p.AmountReceived), PaymentIntentId: p.PaymentIntentID, PaymentMethodId: p.PaymentMethodID,
			SucceededAt: timestamppb.New(*p.SucceededAt),
		},
	}
}

// Requested announces a charge sent to Stripe whose outcome will come by
// webhook, once per payment.
func Requested(p domain.Payment) bus.Event {
	return bus.Event{
		ID:      "payment:" + p.ID + ":requested",
		Subject: subject.Payment(p.ClinicID, stageToken(p.Stage), subject.Requested),
		Message: &paymentv1.PaymentRequested{
			PaymentId: p.ID, BookingId: p.BookingID, ClinicId: p.ClinicID, Stage: stage(p.Stage),
			Amount: wire.Money(p.Amount), PaymentIntentId: p.PaymentIntentID, RequestedAt: timestamppb.New(p.UpdatedAt),
		},
	}
}

// Failed announces a failed attempt (or one needing the patient on-session).
// Each attempt is its own event: the id includes when Stripe reported it.
func Failed(p domain.Payment, requiresAction bool) bus.Event {
	return bus.Event{
		ID:      "payment:" + p.ID + ":failed:" + p.LastEventAt.UTC().Format("20060102T150405.000000000"),
		Subject: subject.Payment(p.ClinicID, stageToken(p.Stage), subject.Failed),
		Message: &paymentv1.PaymentFailed{
			PaymentId: p.ID, BookingId: p.BookingID, ClinicId: p.ClinicID, Stage: stage(p.Stage),
			Amount: wire.Money(p.Amount), PaymentIntentId: p.PaymentIntentID, FailureCode: p.FailureCode,
			FailureMessage: p.FailureMessage, RequiresAction: requiresAction, FailedAt: timestamppb.New(p.LastEventAt),
		},
	}
}

// ForOutcome returns the events an applied intent state calls for.
func ForOutcome(p domain.Payment, o domain.Outcome) []bus.Event {
	switch o {
	case domain.BecameSucceeded:
		return []bus.Event{Succeeded(p)}
	case domain.BecameFailed:
		return []bus.Event{Failed(p, false)}
	case domain.NeedsAction:
		return []bus.Event{Failed(p, true)}
	}
	return nil
}

// RefundSucceeded announces money returned, once per refund.
func RefundSucceeded(r domain.Refund) bus.Event {
	return bus.Event{
		ID:      "refund:" + r.ID + ":succeeded",
		Subject: subject.Payment(r.ClinicID, subject.Refund, subject.Succeeded),
		Message: &paymentv1.RefundSucceeded{
			RefundId: r.ID, BookingId: r.BookingID, ClinicId: r.ClinicID, PaymentId: r.PaymentID, Stage: stage(r.Stage),
			Amount: wire.Money(r.Amount), StripeRefundId: r.StripeRefundID, SucceededAt: timestamppb.New(*r.SucceededAt),
		},
	}
}

// RefundFailed announces a refund that did not reach the patient, once.
func RefundFailed(r domain.Refund) bus.Event {
	return bus.Event{
		ID:      "refund:" + r.ID + ":failed",
		Subject: subject.Payment(r.ClinicID, subject.Refund, subject.Failed),
		Message: &paymentv1.RefundFailed{
			RefundId: r.ID, BookingId: r.BookingID, ClinicId: r.ClinicID, PaymentId: r.PaymentID, Stage: stage(r.Stage),
			Amount: wire.Money(r.Amount), StripeRefundId: r.StripeRefundID, FailureReason: r.FailureReason,
			FailedAt: timestamppb.New(r.UpdatedAt),
		},
	}
}
