// Package contract maps bookings onto the booking.v1 event contract and
// reads the payment.v1 events booking follows.
package contract

import (
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/booking/internal/domain"
)

// Snapshot is the booking as every booking event carries it.
func Snapshot(b domain.Booking) *bookingv1.Booking {
	return &bookingv1.Booking{
		Id: b.ID, QuoteId: b.QuoteID, TreatmentId: b.TreatmentID, TreatmentName: b.TreatmentName,
		ClinicId: b.ClinicID, ClinicName: b.ClinicName,
		Patient: &commonv1.Patient{Name: b.Patient.Name, Email: b.Patient.Email, Country: b.Patient.Country, Language: b.Patient.Language,
			Subject: b.PatientSubject},
		Status: string(b.Status), Total: wire.Money(b.Total), Deposit: wire.Money(b.Deposit), Balance: wire.Money(b.Balance),
		CreatedAt: timestamppb.New(b.CreatedAt),
	}
}

func qualityReport(r *domain.QualityReport) *bookingv1.QualityReport {
	if r == nil {
		return nil
	}
	return &bookingv1.QualityReport{CellCount: r.CellCount, ViabilityBp: r.ViabilityBP,
		SterilityPassed: r.SterilityPassed, EndotoxinPassed: r.EndotoxinPassed, ReportedAt: timestamppb.New(r.ReportedAt)}
}

// Event is the event announcing that b entered its current status. Its id
// is the booking and the status, which a booking enters at most once, so
// re-running a decision cannot announce it twice.
func Event(b domain.Booking) (bus.Event, error) {
	snap := Snapshot(b)
	var msg proto.Message
	var name subject.BookingEvent
	switch b.Status {
	case domain.AwaitingDeposit:
		name, msg = subject.Created, &bookingv1.BookingCreated{Booking: snap}
	case domain.Confirmed:
		name, msg = subject.Confirmed, &bookingv1.BookingConfirmed{Booking: snap, DepositPaymentId: b.DepositPaymentID}
	case domain.Culturing:
		name, msg = subject.Harvested, &bookingv1.HarvestRecorded{Booking: snap, HarvestedAt: timestamppb.New(*b.HarvestedAt)}
	case domain.AwaitingBalance:
		name, msg = subject.CellsReady, &bookingv1.CellsReady{Booking: snap, Report: qualityReport(b.QC)}
	case domain.QCFailed:
		name, msg = subject.QCFailed, &bookingv1.QualityCheckFailed{Booking: snap, Report: qualityReport(b.QC)}
	case domain.ReadyForAdministration:
		name, msg = subject.ReadyForAdministration, &bookingv1.BookingReadyForAdministration{Booking: snap, BalancePaymentId: b.BalancePaymentID}
	case domain.Administered:
		name, msg = subject.Administered, &bookingv1.BookingAdministered{Booking: snap, AdministeredAt: timestamppb.New(*b.AdministeredAt)}
	case domain.Expired:
		name, msg = subject.Expired, &bookingv1.BookingExpired{Booking: snap, DepositDueAt: timestamppb.New(b.DepositDueAt),
			ExpiredAt: timestamppb.New(b.UpdatedAt)}
	case domain.Cancelled:
		c := b.Cancellation
		if c == nil {
			return bus.Event{}, fmt.Errorf("booking %s is cancelled without a cancellation", b.ID)
		}
		name, msg = subject.Cancelled, &bookingv1.BookingCancelled{Booking: snap, Reason: reasons[c.Reason],
			Refund: wire.Money(c.Refund), Retained: wire.Money(c.Retained), Explanation: c.Explanation,
			PolicyVersion: int32(b.Terms.PolicyVersion), CancelledAt: timestamppb.New(c.At)}
	default:
		return bus.Event{}, fmt.Errorf("no event for status %s", b.Status)
	}
	id := "booking:" + b.ID + ":" + string(name)
	if b.CultureAttempt > 1 && (name == subject.CellsReady || name == subject.QCFailed || name == subject.ReadyForAdministration ||
		name == subject.Administered || name == subject.Cancelled) {
		// A second culture enters these statuses again: its events are its own.
		id += ":" + strconv.Itoa(b.CultureAttempt)
	}
	return bus.Event{ID: id, Subject: subject.Booking(b.ClinicID, name), Message: msg}, nil
}

// Reculture announces a free second culture after a failed QC; once per
// attempt.
func Reculture(b domain.Booking, at time.Time) bus.Event {
	return bus.Event{
		ID:      "booking:" + b.ID + ":" + string(subject.Reculture) + ":" + strconv.Itoa(b.CultureAttempt),
		Subject: subject.Booking(b.ClinicID, subject.Reculture),
		Message: &bookingv1.RecultureStarted{Booking: Snapshot(b), Attempt: int32(b.CultureAttempt), StartedAt: timestamppb.New(at)},
	}
}

var reasons = map[domain.CancellationReason]bookingv1.CancellationReason{
	domain.CancelledByPatient:     bookingv1.CancellationReason_CANCELLATION_REASON_PATIENT,
	domain.FoundIneligible:        bookingv1.CancellationReason_CANCELLATION_REASON_INELIGIBLE,
	domain.RefundedAfterQCFailure: bookingv1.CancellationReason_CANCELLATION_REASON_QC_FAILED,
	domain.BalanceUnpaid:          bookingv1.CancellationReason_CANCELLATION_REASON_BALANCE_UNPAID,
	domain.PlanStopped:            bookingv1.CancellationReason_CANCELLATION_REASON_PLAN_STOPPED,
}

// BalanceFailed announces that the balance charge paymentID failed: the
// booking still awaits its balance and the patient must act. One event per
// failed charge (the payment event's id is where the failure was decided).
func BalanceFailed(b domain.Booking, paymentEventID, paymentID, failureCode string, requiresAction bool, at time.Time) bus.Event {
	return bus.Event{
		ID:      "booking:" + b.ID + ":" + string(subject.BalanceFailed) + ":" + paymentEventID,
		Subject: subject.Booking(b.ClinicID, subject.BalanceFailed),
		Message: &bookingv1.BalanceChargeFailed{Booking: Snapshot(b), PaymentId: paymentID, RequiresAction: requiresAction,
			FailureCode: failureCode, FailedAt: timestamppb.New(at), PayBy: payBy(b)},
	}
}

func payBy(b domain.Booking) *timestamppb.Timestamp {
	if b.BalanceActionDueAt == nil {
		return nil
	}
	return timestamppb.New(*b.BalanceActionDueAt)
}

// Reminder reminds the patient that the balance still waits for them; one
// per reminder decided (its time is in the id).
func Reminder(b domain.Booking) bus.Event {
	return bus.Event{
		ID:      "booking:" + b.ID + ":" + string(subject.BalanceReminder) + ":" + b.LastReminderAt.UTC().Format("20060102T150405"),
		Subject: subject.Booking(b.ClinicID, subject.BalanceReminder),
		Message: &bookingv1.BalanceReminder{Booking: Snapshot(b), PayBy: payBy(b), RemindedAt: timestamppb.New(*b.LastReminderAt)},
	}
}
