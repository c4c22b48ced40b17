// Package contract reads the booking.v1 events notification follows and builds the clinic notices it publishes.
package contract

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/notification/internal/domain"
)

// Booking reads a booking snapshot.
func Booking(b *bookingv1.Booking) (domain.Booking, error) {
	if b.GetId() == "" || b.GetClinicId() == "" {
		return domain.Booking{}, fmt.Errorf("booking snapshot is incomplete")
	}
	// Amounts keep the currency the event states: an email must never print
	// a price in the wrong unit.
	total, err1 := wire.FromMoney(b.GetTotal())
	deposit, err2 := wire.FromMoney(b.GetDeposit())
	balance, err3 := wire.FromMoney(b.GetBalance())
	if err := errors.Join(err1, err2, err3); err != nil {
		return domain.Booking{}, fmt.Errorf("booking %s: amounts: %w", b.GetId(), err)
	}
	return domain.Booking{
		ID: b.GetId(), ClinicID: b.GetClinicId(), ClinicName: b.GetClinicName(), TreatmentName: b.GetTreatmentName(),
		PatientName: b.GetPatient().GetName(), PatientEmail: b.GetPatient().GetEmail(), Language: b.GetPatient().GetLanguage(),
		Status: b.GetStatus(), Total: total, Deposit: deposit, Balance: balance,
	}, nil
}

var kinds = map[subject.NoticeKind]notificationv1.NoticeKind{
	subject.NoticeConfirmed:              notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED,
	subject.NoticeReadyForAdministration: notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION,
	subject.NoticeAdministered:           notificationv1.NoticeKind_NOTICE_KIND_ADMINISTERED,
}

// ClinicNotice is the notice telling a clinic about its booking, on the
// clinic's own subject.
func ClinicNotice(snap *bookingv1.Booking, kind subject.NoticeKind, at time.Time) bus.Event {
	id := domain.NoticeID(snap.GetId(), string(kind))
	return bus.Event{
		ID:      id,
		Subject: subject.ClinicNotice(snap.GetClinicId(), kind),
		Message: &notificationv1.ClinicBookingNotice{
			NoticeId: id, Kind: kinds[kind], Booking: snap, OccurredAt: timestamppb.New(at),
		},
	}
}
