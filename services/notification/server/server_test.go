package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/egress"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/notification/server"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

const (
	// ginzaAnnex extends ginza's id, so a filter that matched on a prefix
	// rather than on whole subject tokens would leak between the two.
	ginza      = "ginza-regenerative"
	ginzaAnnex = "ginza-regenerative-annex"
	sender     = "Saisei Care <care@saisei.health>"
)

func TestBookingEventsBecomeClinicNoticesAndPatientEmailsOnce(t *testing.T) {
	f := startNotification(t)

	t.Run("the retired payments consumer is gone after start, other consumers stay", func(t *testing.T) {
		ctx := context.Background()
		if _, err := f.js.Consumer(ctx, bus.StreamPayment, "notification-payments"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("notification-payments after start: %v, want ErrConsumerNotFound", err)
		}
		if _, err := f.js.Consumer(ctx, bus.StreamPayment, "finance-audit"); err != nil {
			t.Fatalf("a consumer notification does not own was removed too: %v", err)
		}
	})

	t.Run("a confirmed booking is announced to its clinic and emailed to the patient", func(t *testing.T) {
		b := newBooking(ginza, "en", "confirmed")
		at := time.Date(2026, 3, 14, 9, 30, 15, 123456789, time.UTC)
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, at)

		n := f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
		if n.subject != "clinic.v1."+ginza+".booking.confirmed" {
			t.Errorf("notice published on %s", n.subject)
		}
		wantID := "notice:" + b.Id + ":confirmed"
		if n.eventID != wantID || n.notice.GetNoticeId() != wantID {
			t.Errorf("notice ids: event %q, notice %q, want %q", n.eventID, n.notice.GetNoticeId(), wantID)
		}
		if n.eventType != "saisei.notification.v1.ClinicBookingNotice" {
			t.Errorf("notice type header %q", n.eventType)
		}
		if !proto.Equal(n.notice.GetBooking(), b) {
			t.Errorf("notice carries booking\n%v\nwant the whole snapshot\n%v", n.notice.GetBooking(), b)
		}
		if got := n.notice.GetOccurredAt().AsTime(); !got.Equal(at) {
			t.Errorf("notice occurred_at %s, want the event's %s", got, at)
		}

		m := f.waitForMail(t, b.Patient.Email, "Your booking at Ginza Regenerative Cell Clinic is confirmed")
		if !slices.Equal(m.To, []string{b.Patient.Email}) || m.From != "care@saisei.health" {
			t.Errorf("mail from %s to %v", m.From, m.To)
		}
		if m.MessageID != "<"+b.Id+":booking_confirmed@saisei.health>" {
			t.Errorf("Message-ID %q", m.MessageID)
		}
		for _, want := range []string{"Dear Emily Carter", "deposit of ¥720,000", "balance of ¥1,680,000", "Total for the treatment: ¥2,400,000", "Booking reference: " + b.Id} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("body lacks %q:\n%s", want, m.Text)
			}
		}

		e := f.waitForEmailStatus(t, b.Id, "booking_confirmed", "sent")
		if e.ID != b.Id+":booking_confirmed" || e.Language != "en" || e.To != b.Patient.Email ||
			e.Subject != m.Subject || e.Attempts != 1 || e.LastError != "" || e.SentAt == nil {
			t.Errorf("email view %+v", e)
		}
	})

	t.Run("a redelivered or re-issued confirmation has no second effect", func(t *testing.T) {
		b := newBooking(ginza, "en", "confirmed")
		first := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
		seq := f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, first)
		f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
		f.waitForMail(t, b.Patient.Email, "is confirmed")

		// The very same event again, as when booking's relay re-publishes an
		// outbox row after JetStream's duplicate window has passed: only the
		// consumer's own bookkeeping can tell it was handled.
		f.redeliver(t, seq)
		// The same decision under a new event id (booking re-publishing its
		// outbox after a restore, say): deterministic notice and email ids
		// make it a no-op.
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, first.Add(time.Hour))
		f.settle(t, ginza)

		notices := f.clinic(ginza).forBooking(b.Id)
		if len(notices) != 1 {
			t.Fatalf("%d notices for one confirmation, want 1", len(notices))
		}
		if got := notices[0].notice.GetOccurredAt().AsTime(); !got.Equal(first) {
			t.Errorf("the surviving notice occurred at %s, want the first event's %s", got, first)
		}
		if mails := f.mailsTo(b.Patient.Email); len(mails) != 1 {
			t.Fatalf("%d emails for one confirmation, want 1", len(mails))
		}
		if es := f.emails(t, b.Id); len(es) != 1 || es[0].Attempts != 1 || es[0].Status != "sent" {
			t.Fatalf("emails %+v, want one sent on the first attempt", es)
		}
	})

	t.Run("a balance charged when the cells are ready is emailed with its amount", func(t *testing.T) {
		b := newBooking(ginza, "en", "ready_for_administration")
		at := time.Date(2026, 4, 20, 8, 0, 0, 0, time.UTC)
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.ReadyForAdministration),
			&bookingv1.BookingReadyForAdministration{Booking: b, BalancePaymentId: uuid.NewString()}, at)

		n := f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION)
		if n.subject != "clinic.v1."+ginza+".booking.ready_for_administration" || n.eventID != "notice:"+b.Id+":ready_for_administration" {
			t.Errorf("notice %s on %s", n.eventID, n.subject)
		}
		if !n.notice.GetOccurredAt().AsTime().Equal(at) || n.notice.GetBooking().GetStatus() != "ready_for_administration" {
			t.Errorf("notice %v", n.notice)
		}

		m := f.waitForMail(t, b.Patient.Email, "Balance of")
		if m.Subject != "Balance of ¥1,680,000 charged: your cells are ready" {
			t.Errorf("subject %q", m.Subject)
		}
		for _, want := range []string{"charged the balance of ¥1,680,000", "deposit of ¥720,000", "treatment (¥2,400,000) is now paid in full"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("body lacks %q:\n%s", want, m.Text)
			}
		}
		e := f.waitForEmailStatus(t, b.Id, "balance_charged", "sent")
		if e.Subject != m.Subject || e.Attempts != 1 || e.To != b.Patient.Email {
			t.Errorf("email view %+v", e)
		}
	})

	t.Run("a booking paid in full up front is announced but gets no balance email", func(t *testing.T) {
		b := newBooking(ginza, "en", "ready_for_administration")
		b.Deposit, b.Balance = yen(2_400_000), yen(0)
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.ReadyForAdministration),
			&bookingv1.BookingReadyForAdministration{Booking: b}, time.Now())

		f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION)
		f.settle(t, ginza)
		if es := f.emails(t, b.Id); len(es) != 0 {
			t.Fatalf("emails %+v for a booking with no balance to charge", es)
		}
		if mails := f.mailsTo(b.Patient.Email); len(mails) != 0 {
			t.Fatalf("patient received %q", mails[0].Subject)
		}
	})

	t.Run("an administered booking is announced to the clinic, and the patient gets the follow-up dates", func(t *testing.T) {
		b := newBooking(ginza, "en", "administered")
		at := time.Date(2026, 5, 2, 14, 45, 0, 0, time.UTC)
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Administered),
			&bookingv1.BookingAdministered{Booking: b, AdministeredAt: timestamppb.New(at)}, at)

		n := f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_ADMINISTERED)
		if n.subject != "clinic.v1."+ginza+".booking.administered" || n.eventID != "notice:"+b.Id+":administered" || !proto.Equal(n.notice.GetBooking(), b) {
			t.Errorf("notice %s on %s: %v", n.eventID, n.subject, n.notice)
		}
		// 2 May 2026 23:45 in Tokyo: check-ups on 2 June, 2 August, 2 November.
		m := f.waitForMail(t, b.Patient.Email, "is complete: your follow-up visits")
		for _, d := range []string{"on 2 May 2026", "2 June 2026", "2 August 2026", "2 November 2026"} {
			if !strings.Contains(m.Text, d) || !strings.Contains(m.HTML, d) {
				t.Errorf("the administered email lacks %q:\n%s", d, m.Text)
			}
		}
		f.settle(t, ginza)
		if es := f.emails(t, b.Id); len(es) != 1 || es[0].Template != "administered" {
			t.Fatalf("emails %+v for an administered booking, want the one", es)
		}
	})

	t.Run("failed quality control tells the patient nothing more is charged", func(t *testing.T) {
		b := newBooking(ginza, "ja", "qc_failed")
		report := &bookingv1.QualityReport{CellCount: 80_000_000, ViabilityBp: 6500, SterilityPassed: true, EndotoxinPassed: true}
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.QCFailed), &bookingv1.QualityCheckFailed{Booking: b, Report: report}, time.Now())
		m := f.waitForMail(t, b.Patient.Email, "品質検査に合格しませんでした")
		if !strings.Contains(m.Text, "残金1,680,000円は請求いたしません") || !strings.Contains(m.HTML, "残金1,680,000円は請求いたしません") ||
			m.Headers["Content-Language"] != "ja" {
			t.Errorf("QC email %s:\n%s", m.Headers, m.Text)
		}
		if ns := f.clinic(ginza).forBooking(b.Id); len(ns) != 0 {
			t.Errorf("a notice for failed QC: %v", ns)
		}
	})

	t.Run("events are told apart by type, not subject, and the others produce nothing", func(t *testing.T) {
		quiet := newBooking(ginza, "en", "harvested")
		report := &bookingv1.QualityReport{CellCount: 120_000_000, ViabilityBp: 9400, SterilityPassed: true, EndotoxinPassed: true}
		for _, ev := range []struct {
			subject string
			msg     proto.Message
		}{
			{subject.Booking(ginza, subject.Created), &bookingv1.BookingCreated{Booking: quiet}},
			{subject.Booking(ginza, subject.Harvested), &bookingv1.HarvestRecorded{Booking: quiet, HarvestedAt: timestamppb.Now()}},
			{subject.Booking(ginza, subject.CellsReady), &bookingv1.CellsReady{Booking: quiet, Report: report}},
			// On the confirmed subject, but a creation: still nothing.
			{subject.Booking(ginza, subject.Confirmed), &bookingv1.BookingCreated{Booking: quiet}},
		} {
			f.publish(t, uuid.NewString(), ev.subject, ev.msg, time.Now())
		}
		// On the administered subject, but a confirmation: announced as
		// one. (The consumer takes only the subjects of the events it acts
		// on; among those, the type decides.)
		misfiled := newBooking(ginza, "en", "confirmed")
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Administered),
			&bookingv1.BookingConfirmed{Booking: misfiled, DepositPaymentId: uuid.NewString()}, time.Now())

		f.clinic(ginza).waitFor(t, misfiled.Id, notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
		f.waitForMail(t, misfiled.Patient.Email, "is confirmed")
		f.settle(t, ginza)
		if ns := f.clinic(ginza).forBooking(quiet.Id); len(ns) != 0 {
			t.Fatalf("%d notices for events notification does not act on: %v", len(ns), ns[0].notice)
		}
		if es := f.emails(t, quiet.Id); len(es) != 0 {
			t.Fatalf("emails %+v for events notification does not act on", es)
		}
	})

	// The consumer takes only the subjects of the events it acts on: each of
	// those the other tests do not publish arrives on its producer's subject
	// and is acted on (a subject missing from the filter would drop it).
	t.Run("cancellations, expiries, re-cultures and reminders reach notification on their subjects", func(t *testing.T) {
		for _, c := range []struct {
			event subject.BookingEvent
			msg   func(b *bookingv1.Booking) proto.Message
			kind  notificationv1.NoticeKind
		}{
			{subject.Cancelled, func(b *bookingv1.Booking) proto.Message { return &bookingv1.BookingCancelled{Booking: b} }, notificationv1.NoticeKind_NOTICE_KIND_CANCELLED},
			{subject.Expired, func(b *bookingv1.Booking) proto.Message { return &bookingv1.BookingExpired{Booking: b} }, notificationv1.NoticeKind_NOTICE_KIND_EXPIRED},
			{subject.Reculture, func(b *bookingv1.Booking) proto.Message { return &bookingv1.RecultureStarted{Booking: b, Attempt: 2} }, notificationv1.NoticeKind_NOTICE_KIND_RECULTURE},
		} {
			b := newBooking(ginza, "en", string(c.event))
			f.publish(t, uuid.NewString(), subject.Booking(ginza, c.event), c.msg(b), time.Now())
			f.clinic(ginza).waitFor(t, b.Id, c.kind)
		}
		b := newBooking(ginza, "en", "cells_ready")
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.BalanceReminder),
			&bookingv1.BalanceReminder{Booking: b, PayBy: timestamppb.New(time.Now().Add(72 * time.Hour)), RemindedAt: timestamppb.Now()}, time.Now())
		f.waitForMail(t, b.Patient.Email, "Reminder: We could not charge the balance")
	})

	t.Run("each patient is written to in their language, text and HTML, and the record says which", func(t *testing.T) {
		for _, c := range []struct {
			lang, subject, greeting, deposit string
		}{
			{"ko", "Ginza Regenerative Cell Clinic 예약이 확정되었습니다", "Kim Min-jun 님께", "예약금 720,000엔"},
			{"ja", "Ginza Regenerative Cell Clinicのご予約が確定しました", "Kim Min-jun 様", "ご予約金720,000円"},
			{"zh", "您在Ginza Regenerative Cell Clinic的预约已确认", "尊敬的Kim Min-jun", "订金720,000日元"},
			{"en", "Your booking at Ginza Regenerative Cell Clinic is confirmed", "Dear Kim Min-jun", "deposit of ¥720,000"},
			{"fr", "Your booking at Ginza Regenerative Cell Clinic is confirmed", "Dear Kim Min-jun", "deposit of ¥720,000"}, // English fallback
		} {
			b := newBooking(ginza, c.lang, "confirmed")
			b.Patient.Name, b.Patient.Country = "Kim Min-jun", "KR"
			f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
				&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
			m := f.waitForMail(t, b.Patient.Email, c.subject)
			if !strings.Contains(m.Text, c.greeting) || !strings.Contains(m.Text, c.deposit) ||
				!strings.Contains(m.HTML, c.greeting) || !strings.Contains(m.HTML, c.deposit) || !strings.HasPrefix(m.HTML, "<!DOCTYPE html>") {
				t.Errorf("%s: text:\n%s\nhtml:\n%s", c.lang, m.Text, m.HTML)
			}
			want := c.lang
			if want == "fr" {
				want = "en"
			}
			if m.Headers["Content-Language"] != want || !strings.HasPrefix(m.Headers["Content-Type"], "multipart/alternative") {
				t.Errorf("%s: headers %v", c.lang, m.Headers)
			}
			if e := f.waitForEmailStatus(t, b.Id, "booking_confirmed", "sent"); e.Language != want {
				t.Errorf("%s: email recorded in %q, want %q", c.lang, e.Language, want)
			}
		}
	})

	t.Run("an incomplete snapshot is dead-lettered without blocking the events behind it", func(t *testing.T) {
		b := newBooking(ginza, "en", "confirmed")
		b.ClinicId = ""
		seq := f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
		f.settle(t, ginza)

		var advisory struct {
			Stream    string `json:"stream"`
			Consumer  string `json:"consumer"`
			StreamSeq uint64 `json:"stream_seq"`
		}
		devtest.Eventually(t, "the incomplete event to be dead-lettered", func() bool {
			for _, raw := range f.streamMessages(t, bus.StreamDeadLetter, ">") {
				if json.Unmarshal(raw.Data, &advisory) == nil && advisory.StreamSeq == seq && advisory.Stream == bus.StreamBooking {
					return true
				}
			}
			return false
		})
		if advisory.Consumer != "notification-bookings" {
			t.Errorf("dead-lettered by %q", advisory.Consumer)
		}
		if ns := f.clinic(ginza).forBooking(b.Id); len(ns) != 0 {
			t.Errorf("%d notices for an incomplete booking", len(ns))
		}
		if es := f.emails(t, b.Id); len(es) != 0 {
			t.Errorf("emails %+v for an incomplete booking", es)
		}
	})

	t.Run("a clinic's notices never appear on another clinic's subjects", func(t *testing.T) {
		ours, theirs := newBooking(ginza, "en", "confirmed"), newBooking(ginzaAnnex, "en", "confirmed")
		theirs.ClinicName = "Ginza Regenerative Annex"
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: ours, DepositPaymentId: uuid.NewString()}, time.Now())
		f.publish(t, uuid.NewString(), subject.Booking(ginzaAnnex, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: theirs, DepositPaymentId: uuid.NewString()}, time.Now())
		f.clinic(ginzaAnnex).waitFor(t, theirs.Id, notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
		f.settle(t, ginza)
		f.settle(t, ginzaAnnex)

		if len(f.clinic(ginza).forBooking(theirs.Id)) != 0 || len(f.clinic(ginzaAnnex).forBooking(ours.Id)) != 0 {
			t.Fatal("a notice reached the other clinic's reader")
		}
		for clinic, reader := range map[string]*clinicReader{ginza: f.clinic(ginza), ginzaAnnex: f.clinic(ginzaAnnex)} {
			for _, n := range reader.all() {
				if n.notice.GetBooking().GetClinicId() != clinic {
					t.Errorf("%s's reader got %s's booking %s on %s", clinic, n.notice.GetBooking().GetClinicId(), n.notice.GetBooking().GetId(), n.subject)
				}
			}
		}
		// The whole stream, not just what two readers saw: every notice sits
		// under its own clinic's subject tree.
		all := f.streamMessages(t, bus.StreamClinic, subject.ClinicTree)
		if len(all) < 2 {
			t.Fatalf("%d notices in the clinic stream", len(all))
		}
		for _, raw := range all {
			var n notificationv1.ClinicBookingNotice
			if err := proto.Unmarshal(raw.Data, &n); err != nil {
				t.Fatal(err)
			}
			if want := "clinic.v1." + n.GetBooking().GetClinicId() + ".booking."; !strings.HasPrefix(raw.Subject, want) {
				t.Errorf("notice for %s's booking %s on %s", n.GetBooking().GetClinicId(), n.GetBooking().GetId(), raw.Subject)
			}
		}
	})

	t.Run("the emails API names a bad booking_id and lists none for an unknown booking", func(t *testing.T) {
		for _, q := range []string{"?booking_id=not-a-uuid", ""} {
			req, _ := http.NewRequest(http.MethodGet, f.base+"/internal/v1/emails"+q, nil)
			req.Header.Set("Authorization", "Bearer "+supportToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var problem struct {
				Type   string
				Status int
				Errors []struct{ Field string }
			}
			err = json.NewDecoder(resp.Body).Decode(&problem)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 422 || resp.Header.Get("Content-Type") != "application/problem+json" ||
				problem.Type != "https://saisei.health/problems/validation" || problem.Status != 422 ||
				len(problem.Errors) != 1 || problem.Errors[0].Field != "booking_id" {
				t.Errorf("emails%s: %d %s %+v %v", q, resp.StatusCode, resp.Header.Get("Content-Type"), problem, err)
			}
		}
		var list struct{ Items []emailView }
		if code := get(t, f.base+"/internal/v1/emails?booking_id="+uuid.NewString(), &list); code != 200 || list.Items == nil || len(list.Items) != 0 {
			t.Fatalf("unknown booking: %d %+v", code, list.Items)
		}
		// Patients' addresses are for services only, as every internal route.
		for who, want := range map[string]int{"": 401, f.issuer.Token(t, identity.Principal{Subject: "p-1", Role: identity.Patient}): 403,
			f.issuer.Token(t, identity.Principal{Subject: "operator-1", Role: identity.Admin}):            403,
			f.issuer.Token(t, identity.Principal{Subject: "s-1", Role: identity.Clinic, ClinicID: ginza}): 403} {
			req, _ := http.NewRequest(http.MethodGet, f.base+"/internal/v1/emails?booking_id="+uuid.NewString(), nil)
			if who != "" {
				req.Header.Set("Authorization", "Bearer "+who)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("emails as %q: %d, want %d", who, resp.StatusCode, want)
			}
		}
	})

	// Last: it takes the SMTP server away for good.
	t.Run("an unreachable SMTP server leaves the email pending with its error, the notice goes out", func(t *testing.T) {
		sent := len(f.mail.Messages())
		if err := f.mail.Close(); err != nil {
			t.Fatal(err)
		}
		b := newBooking(ginza, "en", "ready_for_administration")
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.ReadyForAdministration),
			&bookingv1.BookingReadyForAdministration{Booking: b, BalancePaymentId: uuid.NewString()}, time.Now())

		f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION)
		var e emailView
		devtest.Eventually(t, "a failed send to be recorded", func() bool {
			es := f.emails(t, b.Id)
			if len(es) == 1 {
				e = es[0]
			}
			return e.Attempts > 0
		})
		if e.Status != "pending" || e.Attempts != 1 || e.LastError == "" || e.SentAt != nil || e.Template != "balance_charged" {
			t.Fatalf("after one failed send: %+v, want pending for a retry with the error kept", e)
		}
		if got := len(f.mail.Messages()); got != sent {
			t.Fatalf("the closed sink received %d more messages", got-sent)
		}
	})

	// Across everything above: no email went out twice.
	seen := map[string]bool{}
	for _, m := range f.mail.Messages() {
		if seen[m.MessageID] {
			t.Errorf("%s sent twice", m.MessageID)
		}
		seen[m.MessageID] = true
	}
}

// fixture is notification running against real Postgres, JetStream and an
// SMTP sink, with a publisher standing in for booking.
type fixture struct {
	base   string
	admin  string // the superuser DSN of the test's database
	js     jetstream.JetStream
	mail   *devstack.MailSink
	issuer *devtest.Issuer

	readers map[string]*clinicReader
	clock   *devtest.Clock
	spans   *tracetest.InMemoryExporter
}

func startNotification(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	admin := devtest.NewDatabase(t)
	dsn := devtest.ServiceDSN(t, admin, "notification")
	natsURL, natsTrust := devtest.SecureNATS(t)
	nc, js, err := bus.Connect(natsURL, "test", devtest.Observer(t, natsTrust))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	f := &fixture{admin: admin, js: js, mail: devtest.MailSink(t), readers: map[string]*clinicReader{}, clock: &devtest.Clock{},
		spans: tracetest.NewInMemoryExporter()}

	// The durable notification ran on payment events before the balance
	// email followed ready_for_administration, beside another team's.
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	for _, durable := range []string{"notification-payments", "finance-audit"} {
		if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamPayment, jetstream.ConsumerConfig{
			Durable: durable, FilterSubject: subject.PaymentTree, AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, clinic := range []string{ginza, ginzaAnnex} {
		f.readers[clinic] = readClinic(t, js, clinic)
	}

	addr, base := devtest.Addr(t)
	iss := devtest.NewIssuer(t, "notification")
	supportToken = iss.Token(t, identity.Principal{Subject: "support-tool", Role: identity.Service})
	f.issuer = iss
	cfg := server.Config{Config: servicehost.Config{Name: "notification", Identity: iss.Config("notification"), HTTPAddr: addr, DatabaseURL: dsn, NATSURL: natsURL, NATSCreds: devtest.ServiceCreds(t, natsTrust, "notification"), StreamReplicas: 1},
		DataKeyset: devtest.Keyset(t), Webhooks: egress.Policy{AllowLoopbackHTTP: true}}
	cfg.Mail.SMTPAddr, cfg.Mail.From, cfg.Mail.AllowPlaintext = f.mail.Addr(), sender, true
	deps := devtest.Deps(t, "notification", f.spans)
	deps.Now = f.clock.Now
	devtest.RunService(t, base, func(ctx context.Context) error { return server.Run(ctx, cfg, deps) })
	f.base = base
	return f
}

func yen(amount int64) *commonv1.Money { return &commonv1.Money{Amount: amount, Currency: "JPY"} }

// newBooking is booking's snapshot of a fresh booking; each patient has an
// address of their own, so mail to them belongs to this booking alone.
func newBooking(clinicID, language, status string) *bookingv1.Booking {
	id := uuid.NewString()
	return &bookingv1.Booking{
		Id: id, QuoteId: uuid.NewString(), TreatmentId: "adipose-msc-stroke", TreatmentName: "Adipose MSC for stroke",
		ClinicId: clinicID, ClinicName: "Ginza Regenerative Cell Clinic",
		Patient: &commonv1.Patient{Name: "Emily Carter", Email: "patient-" + id + "@example.com", Country: "GB", Language: language},
		Status:  status, Total: yen(2_400_000), Deposit: yen(720_000), Balance: yen(1_680_000),
		CreatedAt: timestamppb.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
	}
}

// publish sends msg into the BOOKING stream as booking's outbox relay does
// and returns its stream sequence.
func (f *fixture) publish(t *testing.T, eventID, subj string, msg proto.Message, occurredAt time.Time) uint64 {
	t.Helper()
	return devtest.Publish(t, f.js, bus.Event{ID: eventID, Subject: subj, Message: msg}, occurredAt)
}

// redeliver stores the message at seq again, byte for byte and with the same
// event id, under a fresh Nats-Msg-Id so JetStream does not drop it as a
// duplicate: the consumer receives the event a second time.
func (f *fixture) redeliver(t *testing.T, seq uint64) {
	t.Helper()
	ctx := context.Background()
	stream, err := f.js.Stream(ctx, bus.StreamBooking)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(raw.Subject)
	msg.Data = raw.Data
	for k, v := range raw.Header {
		msg.Header[k] = slices.Clone(v)
	}
	ack, err := f.js.PublishMsg(ctx, msg, jetstream.WithMsgID(raw.Header.Get(bus.HeaderEventID)+"/again"))
	if err != nil || ack.Duplicate {
		t.Fatalf("redelivery not stored: %+v %v", ack, err)
	}
}

// settle confirms one more booking at clinic and waits for its notice and
// email. The consumer handles events in stream order, the relay publishes
// notices in commit order and the mailer sends in queue order, so anything
// the events published before would have caused is visible by then.
func (f *fixture) settle(t *testing.T, clinic string) {
	t.Helper()
	b := newBooking(clinic, "en", "confirmed")
	f.publish(t, uuid.NewString(), subject.Booking(clinic, subject.Confirmed),
		&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
	f.clinic(clinic).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
	f.waitForMail(t, b.Patient.Email, "is confirmed")
}

// streamMessages reads every message of stream on filter, in order.
func (f *fixture) streamMessages(t *testing.T, stream, filter string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := f.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if subject.Overlaps(filter, raw.Subject) {
			out = append(out, raw)
		}
	}
	return out
}

// clinicNotice is a notice as a clinic receives it.
type clinicNotice struct {
	subject, eventID, eventType string
	notice                      *notificationv1.ClinicBookingNotice
}

// clinicReader reads a clinic's notices the way the clinic would: on its
// own subjects, clinic.v1.<clinic_id>.>, in stream order.
type clinicReader struct {
	mu  sync.Mutex
	got []clinicNotice
}

func readClinic(t *testing.T, js jetstream.JetStream, clinicID string) *clinicReader {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, bus.StreamClinic, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject.Clinic(clinicID)}})
	if err != nil {
		t.Fatal(err)
	}
	r := &clinicReader{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		n := &notificationv1.ClinicBookingNotice{}
		if err := proto.Unmarshal(m.Data(), n); err != nil {
			n = nil // kept, and matching no booking: a notice a clinic cannot read is a failure
		}
		r.mu.Lock()
		r.got = append(r.got, clinicNotice{subject: m.Subject(), eventID: m.Headers().Get(bus.HeaderEventID),
			eventType: m.Headers().Get(bus.HeaderEventType), notice: n})
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

// clinic is the reader of one of the test's clinics.
func (f *fixture) clinic(clinicID string) *clinicReader { return f.readers[clinicID] }

func (r *clinicReader) all() []clinicNotice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *clinicReader) forBooking(bookingID string) []clinicNotice {
	var out []clinicNotice
	for _, n := range r.all() {
		if n.notice.GetBooking().GetId() == bookingID {
			out = append(out, n)
		}
	}
	return out
}

func (r *clinicReader) waitFor(t *testing.T, bookingID string, kind notificationv1.NoticeKind) clinicNotice {
	t.Helper()
	var found clinicNotice
	devtest.Eventually(t, kind.String()+" notice for "+bookingID, func() bool {
		for _, n := range r.forBooking(bookingID) {
			if n.notice.GetKind() == kind {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

func (f *fixture) mailsTo(addr string) []devstack.Mail {
	var out []devstack.Mail
	for _, m := range f.mail.Messages() {
		if slices.Contains(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

func (f *fixture) waitForMail(t *testing.T, to, subjectPart string) devstack.Mail {
	t.Helper()
	var found devstack.Mail
	devtest.Eventually(t, "an email to "+to+" about "+subjectPart, func() bool {
		for _, m := range f.mailsTo(to) {
			if strings.Contains(m.Subject, subjectPart) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// emailView is one item of GET /internal/v1/emails.
type emailView struct {
	ID        string     `json:"id"`
	Template  string     `json:"template"`
	Language  string     `json:"language"`
	To        string     `json:"to"`
	Subject   string     `json:"subject"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	SentAt    *time.Time `json:"sent_at"`
}

func (f *fixture) emails(t *testing.T, bookingID string) []emailView {
	t.Helper()
	var list struct{ Items []emailView }
	if code := get(t, f.base+"/internal/v1/emails?booking_id="+bookingID, &list); code != 200 {
		t.Fatalf("emails of %s: %d", bookingID, code)
	}
	return list.Items
}

// waitForEmailStatus polls the emails API: the sink has the message a moment
// before the mailer records it as sent.
func (f *fixture) waitForEmailStatus(t *testing.T, bookingID, template, status string) emailView {
	t.Helper()
	var found emailView
	devtest.Eventually(t, template+" email of "+bookingID+" to be "+status, func() bool {
		for _, e := range f.emails(t, bookingID) {
			if e.Template == template && e.Status == status {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// supportToken is a service's token: the emails list is internal.
var supportToken string

func get(t *testing.T, url string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+supportToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// advance moves the service's clock on by d and wakes its senders, as the
// passing of real time would: they sleep until their next delivery or
// retry falls due by the real clock, which a test does not wait for.
func (f *fixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	f.clock.Advance(d)
	conn, err := pgx.Connect(context.Background(), f.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `SELECT pg_notify('notification_webhooks', ''), pg_notify('notification_emails', '')`); err != nil {
		t.Fatal(err)
	}
}
