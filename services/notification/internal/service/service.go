// Package service turns booking events into clinic notices and patient
// emails, each exactly once: every handler runs in the inbox transaction of
// its consumer, and notices and emails have deterministic ids.
package service

import (
	"context"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/quotingv1"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/notification/internal/contract"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// EmailQueue is where emails wait for the mailer, and where patients'
// preferences are kept.
type EmailQueue interface {
	QueueEmail(ctx context.Context, db pgdb.Querier, e domain.Email, trace map[string]string) error
	Preferences(ctx context.Context, db pgdb.Querier, patient string) (domain.Preferences, error)
}

// WebhookQueue is where deliveries to clinics' endpoints wait for the sender.
type WebhookQueue interface {
	QueueDeliveries(ctx context.Context, db pgdb.Querier, clinic string, d store.Delivery, newID func() string) error
}

// Notifier handles the events.
type Notifier struct {
	emails   EmailQueue
	webhooks WebhookQueue
	appURL   string
}

// New returns a Notifier; appURL is the patients' app, which emails link to.
func New(emails EmailQueue, webhooks WebhookQueue, appURL string) *Notifier {
	if appURL == "" {
		appURL = "https://app.saisei.health"
	}
	return &Notifier{emails: emails, webhooks: webhooks, appURL: strings.TrimSuffix(appURL, "/")}
}

// payURL is where the patient pays a booking's balance on-session.
func (n *Notifier) payURL(bookingID string) string {
	return n.appURL + "/bookings/" + url.PathEscape(bookingID) + "/pay"
}

// BookingConfirmed tells the clinic and emails the patient that the deposit
// was received.
func (n *Notifier) BookingConfirmed(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingConfirmed) error {
	if err := n.notifyClinic(ctx, tx, e.GetBooking(), subject.NoticeConfirmed); err != nil {
		return err
	}
	return n.queueEmail(ctx, tx, domain.TemplateBookingConfirmed, e.GetBooking(), "", nil)
}

// BookingReadyForAdministration tells the clinic the cells may be given and,
// when a balance was charged to get there, emails the patient about it. The
// event carries the booking, so nothing has to be looked up or waited for.
func (n *Notifier) BookingReadyForAdministration(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingReadyForAdministration) error {
	if err := n.notifyClinic(ctx, tx, e.GetBooking(), subject.NoticeReadyForAdministration); err != nil {
		return err
	}
	if e.GetBalancePaymentId() == "" {
		return nil // paid in full with the deposit: no balance was charged
	}
	return n.queueEmail(ctx, tx, domain.TemplateBalanceCharged, e.GetBooking(), "", nil)
}

// BookingAdministered tells the clinic's systems the booking is complete,
// and the patient when the follow-up visits are.
func (n *Notifier) BookingAdministered(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingAdministered) error {
	if err := n.notifyClinic(ctx, tx, e.GetBooking(), subject.NoticeAdministered); err != nil {
		return err
	}
	return n.queueEmail(ctx, tx, domain.TemplateAdministered, e.GetBooking(), "", func(b *domain.Booking) {
		b.AdministeredAt = e.GetAdministeredAt().AsTime()
	})
}

// BookingCancelled tells the clinic the booking ended before administration.
func (n *Notifier) BookingCancelled(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingCancelled) error {
	return n.notifyClinic(ctx, tx, e.GetBooking(), subject.NoticeCancelled)
}

// RecultureStarted tells the clinic to culture the cells again.
func (n *Notifier) RecultureStarted(ctx context.Context, tx pgx.Tx, e *bookingv1.RecultureStarted) error {
	return n.notifyClinic(ctx, tx, e.GetBooking(), subject.NoticeReculture)
}

// BookingExpired tells the clinic the booking's deposit was never paid.
func (n *Notifier) BookingExpired(ctx context.Context, tx pgx.Tx, e *bookingv1.BookingExpired) error {
	return n.notifyClinic(ctx, tx, e.GetBooking(), subject.NoticeExpired)
}

// QualityCheckFailed tells the patient that the cells will not be given
// and nothing more is charged.
func (n *Notifier) QualityCheckFailed(ctx context.Context, tx pgx.Tx, e *bookingv1.QualityCheckFailed) error {
	// Keyed on the event: a second culture that fails too is its own cause.
	return n.queueEmail(ctx, tx, domain.TemplateQCFailed, e.GetBooking(), bus.MessageOf(ctx).ID, nil)
}

// QuoteIssued sends the patient the quote with its validity. A quote that
// cannot be booked (ineligible) is answered in the response only.
func (n *Notifier) QuoteIssued(ctx context.Context, tx pgx.Tx, e *quotingv1.QuoteIssued) error {
	if e.GetDeposit() == nil || e.GetPatient().GetEmail() == "" {
		return nil
	}
	b, err := contract.Quote(e)
	if err != nil {
		return bus.Permanent(err)
	}
	return n.compose(ctx, tx, domain.TemplateQuoteIssued, b, func(m *domain.Email) { m.QuoteID = b.ID })
}

// BalanceChargeFailed tells the patient the balance could not be charged
// and what happens next. Each failed charge is its own cause, so the email
// is keyed on the event.
func (n *Notifier) BalanceChargeFailed(ctx context.Context, tx pgx.Tx, e *bookingv1.BalanceChargeFailed) error {
	return n.queueEmail(ctx, tx, domain.TemplateBalanceFailed, e.GetBooking(), bus.MessageOf(ctx).ID, func(b *domain.Booking) {
		b.RequiresAction = e.GetRequiresAction()
		b.PayURL = n.payURL(b.ID)
		if e.GetPayBy() != nil {
			b.PayBy = e.GetPayBy().AsTime()
		}
	})
}

// BalanceReminder reminds the patient, once per reminder, that the
// balance still waits for them and by when.
func (n *Notifier) BalanceReminder(ctx context.Context, tx pgx.Tx, e *bookingv1.BalanceReminder) error {
	return n.queueEmail(ctx, tx, domain.TemplateBalanceFailed, e.GetBooking(), bus.MessageOf(ctx).ID, func(b *domain.Booking) {
		b.Reminder, b.PayURL = true, n.payURL(b.ID)
		if e.GetPayBy() != nil {
			b.PayBy = e.GetPayBy().AsTime()
		}
	})
}

func (n *Notifier) notifyClinic(ctx context.Context, tx pgx.Tx, snap *bookingv1.Booking, kind subject.NoticeKind) error {
	if _, err := contract.Booking(snap); err != nil {
		return bus.Permanent(err)
	}
	at := bus.MessageOf(ctx).OccurredAt
	if err := outbox.Enqueue(ctx, tx, contract.ClinicNotice(snap, kind, at)); err != nil {
		return err
	}
	// The same notice to each of the clinic's endpoints that wants it, in
	// the same transaction: exactly once per endpoint, however often the
	// event is redelivered.
	body, err := contract.Webhook(snap, kind, at)
	if err != nil {
		return err
	}
	return n.webhooks.QueueDeliveries(ctx, tx, snap.GetClinicId(), store.Delivery{
		WebhookID: domain.NoticeID(snap.GetId(), string(kind)), EventType: contract.WebhookEventType(kind),
		Payload: body, Trace: telemetry.Inject(ctx)}, uuid.NewString)
}

// queueEmail composes template about the booking in snap. cause, when a
// booking may have several (each failed charge), makes the email's id
// distinct per cause; with adds what the event tells beyond the booking.
func (n *Notifier) queueEmail(ctx context.Context, tx pgx.Tx, template string, snap *bookingv1.Booking, cause string, with func(*domain.Booking)) error {
	b, err := contract.Booking(snap)
	if err != nil {
		return bus.Permanent(err)
	}
	if with != nil {
		with(&b)
	}
	return n.compose(ctx, tx, template, b, func(m *domain.Email) {
		m.BookingID = b.ID
		if cause != "" {
			m.ID += ":" + cause
		}
	})
}

// compose writes template for b as the patient wants it (their language,
// and not at all if they declined an optional email) and queues it.
func (n *Notifier) compose(ctx context.Context, tx pgx.Tx, template string, b domain.Booking, edits ...func(*domain.Email)) error {
	if b.PatientSubject != "" {
		prefs, err := n.emails.Preferences(ctx, tx, b.PatientSubject)
		if err != nil {
			return err
		}
		if !prefs.Wants(template) {
			return nil
		}
		b.Language = prefs.LanguageFor(b.Language)
	}
	e, err := domain.ComposeEmail(template, b)
	if err != nil {
		return bus.Permanent(err)
	}
	for _, edit := range edits {
		edit(&e)
	}
	return n.emails.QueueEmail(ctx, tx, e, telemetry.Inject(ctx))
}
