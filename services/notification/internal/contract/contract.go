// Package contract reads the booking.v1 events notification follows and builds the clinic notices it publishes.
package contract

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	"github.com/saisei-health/platform/pkg/events/quotingv1"
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
		PatientSubject: b.GetPatient().GetSubject(),
		Status:         b.GetStatus(), Total: total, Deposit: deposit, Balance: balance,
	}, nil
}

// Quote reads an issued quote as what its email is about.
func Quote(q *quotingv1.QuoteIssued) (domain.Booking, error) {
	if q.GetQuoteId() == "" || q.GetValidUntil() == nil {
		return domain.Booking{}, fmt.Errorf("quote event is incomplete")
	}
	total, err1 := wire.FromMoney(q.GetTotal())
	deposit, err2 := wire.FromMoney(q.GetDeposit())
	balance, err3 := wire.FromMoney(q.GetBalance())
	if err := errors.Join(err1, err2, err3); err != nil {
		return domain.Booking{}, fmt.Errorf("quote %s: amounts: %w", q.GetQuoteId(), err)
	}
	p := q.GetPatient()
	return domain.Booking{
		ID: q.GetQuoteId(), ClinicID: q.GetClinicId(), ClinicName: q.GetClinicName(), TreatmentName: q.GetTreatmentName(),
		PatientName: p.GetName(), PatientEmail: p.GetEmail(), Language: p.GetLanguage(), PatientSubject: p.GetSubject(),
		Total: total, Deposit: deposit, Balance: balance, ValidUntil: q.GetValidUntil().AsTime(),
	}, nil
}

var kinds = map[subject.NoticeKind]notificationv1.NoticeKind{
	subject.NoticeConfirmed:              notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED,
	subject.NoticeReadyForAdministration: notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION,
	subject.NoticeAdministered:           notificationv1.NoticeKind_NOTICE_KIND_ADMINISTERED,
}

// ClinicNotice is the notice telling a clinic about its booking, on the
// clinic's own subject. The patient's identity at our issuer is ours, not
// the clinic's: it is left out.
func ClinicNotice(snap *bookingv1.Booking, kind subject.NoticeKind, at time.Time) bus.Event {
	id := domain.NoticeID(snap.GetId(), string(kind))
	if snap.GetPatient().GetSubject() != "" {
		snap = proto.CloneOf(snap)
		snap.Patient.Subject = ""
	}
	return bus.Event{
		ID:      id,
		Subject: subject.ClinicNotice(snap.GetClinicId(), kind),
		Message: &notificationv1.ClinicBookingNotice{
			NoticeId: id, Kind: kinds[kind], Booking: snap, OccurredAt: timestamppb.New(at),
		},
	}
}
