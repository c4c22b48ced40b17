// Package contract reads the booking.v1 events notification follows and builds the clinic notices it publishes.
package contract

import (
	"encoding/json"
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
	subject.NoticeCancelled:              notificationv1.NoticeKind_NOTICE_KIND_CANCELLED,
	subject.NoticeExpired:                notificationv1.NoticeKind_NOTICE_KIND_EXPIRED,
	subject.NoticeReculture:              notificationv1.NoticeKind_NOTICE_KIND_RECULTURE,
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

// WebhookMoney is an amount as webhook bodies carry it: integer minor
// units (a JSON number, not protojson's string) and the currency.
type WebhookMoney struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// WebhookBooking is the booking as webhook bodies carry it: the clinic's
// view, without the patient's identity at our issuer.
type WebhookBooking struct {
	ID            string `json:"id"`
	QuoteID       string `json:"quote_id"`
	TreatmentID   string `json:"treatment_id"`
	TreatmentName string `json:"treatment_name"`
	ClinicID      string `json:"clinic_id"`
	Patient       struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Country  string `json:"country"`
		Language string `json:"language"`
	} `json:"patient"`
	Status    string       `json:"status"`
	Total     WebhookMoney `json:"total"`
	Deposit   WebhookMoney `json:"deposit"`
	Balance   WebhookMoney `json:"balance"`
	CreatedAt time.Time    `json:"created_at"`
}

// WebhookBody is a delivery's body, {"type", "timestamp", "data"} as the
// Standard Webhooks specification suggests.
type WebhookBody struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		NoticeID string         `json:"notice_id"`
		Booking  WebhookBooking `json:"booking"`
	} `json:"data"`
}

// WebhookEventType names a notice kind for webhooks: booking.<kind>.
func WebhookEventType(kind subject.NoticeKind) string { return "booking." + string(kind) }

// Webhook is the body delivered to the clinic's endpoints for a notice.
func Webhook(snap *bookingv1.Booking, kind subject.NoticeKind, at time.Time) ([]byte, error) {
	money := func(m interface {
		GetAmount() int64
		GetCurrency() string
	}) WebhookMoney {
		return WebhookMoney{Amount: m.GetAmount(), Currency: m.GetCurrency()}
	}
	var b WebhookBody
	b.Type, b.Timestamp = WebhookEventType(kind), at.UTC()
	b.Data.NoticeID = domain.NoticeID(snap.GetId(), string(kind))
	w := &b.Data.Booking
	w.ID, w.QuoteID, w.TreatmentID, w.TreatmentName, w.ClinicID = snap.GetId(), snap.GetQuoteId(), snap.GetTreatmentId(),
		snap.GetTreatmentName(), snap.GetClinicId()
	p := snap.GetPatient()
	w.Patient.Name, w.Patient.Email, w.Patient.Country, w.Patient.Language = p.GetName(), p.GetEmail(), p.GetCountry(), p.GetLanguage()
	w.Status, w.Total, w.Deposit, w.Balance = snap.GetStatus(), money(snap.GetTotal()), money(snap.GetDeposit()), money(snap.GetBalance())
	w.CreatedAt = snap.GetCreatedAt().AsTime().UTC()
	return json.Marshal(b)
}
