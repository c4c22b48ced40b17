package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	"github.com/saisei-health/platform/pkg/events/quotingv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/subject"
)

// issuedQuote is quoting's event for a new bookable quote for subject.
func issuedQuote(language, patientSubject string) *quotingv1.QuoteIssued {
	id := uuid.NewString()
	return &quotingv1.QuoteIssued{
		QuoteId: id, TreatmentId: "adipose-msc-stroke", ClinicId: ginza, Version: 1, Eligibility: "eligible",
		TreatmentName: "Adipose MSC for stroke", ClinicName: "Ginza Regenerative Cell Clinic",
		Total: yen(2_400_000), Tax: yen(218_181), Deposit: yen(720_000), Balance: yen(1_680_000), DisplayTotal: yen(2_400_000),
		// 2026-05-31 23:59 in Tokyo is still the 31st there, the 31st 14:59 UTC.
		ValidUntil: timestamppb.New(time.Date(2026, 5, 31, 14, 59, 0, 0, time.UTC)),
		Patient: &commonv1.Patient{Name: "Kim Min-jun", Email: "patient-" + id + "@example.kr", Country: "KR", Language: language,
			Subject: patientSubject},
	}
}

// call sends body (nil for none) as the holder of token.
func call(t *testing.T, method, url, token string, body any, into any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		_ = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode
}

type preferencesView struct {
	Language   string          `json:"language"`
	Emails     map[string]bool `json:"emails"`
	AlwaysSent []string        `json:"always_sent"`
}

func TestPatientsAreToldOfQuotesAndFailedChargesAsTheyChoose(t *testing.T) {
	f := startNotification(t)

	t.Run("an issued quote is emailed with its amounts and validity; an ineligible one is not", func(t *testing.T) {
		q := issuedQuote("ko", "")
		f.publish(t, uuid.NewString(), subject.Quote(ginza, subject.QuoteIssued), q, time.Now())
		m := f.waitForMail(t, q.Patient.Email, "견적서")
		for _, want := range []string{"Kim Min-jun 님께", "세금 포함 2,400,000엔", "예약금 720,000엔", "잔금 1,680,000엔",
			"2026년 5월 31일(일본 시간)까지 유효", "견적 번호: " + q.QuoteId} {
			if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
				t.Errorf("quote email lacks %q:\n%s", want, m.Text)
			}
		}
		var list struct{ Items []emailView }
		if code := get(t, f.base+"/internal/v1/emails?quote_id="+q.QuoteId, &list); code != 200 || len(list.Items) != 1 ||
			list.Items[0].Template != "quote_issued" || list.Items[0].Language != "ko" {
			t.Fatalf("quote emails: %d %+v", code, list.Items)
		}

		refused := issuedQuote("en", "")
		refused.Eligibility, refused.Deposit, refused.Balance = "ineligible", nil, nil
		f.publish(t, uuid.NewString(), subject.Quote(ginza, subject.QuoteIssued), refused, time.Now())
		after := issuedQuote("en", "")
		f.publish(t, uuid.NewString(), subject.Quote(ginza, subject.QuoteIssued), after, time.Now())
		f.waitForMail(t, after.Patient.Email, "Your quote for")
		if ms := f.mailsTo(refused.Patient.Email); len(ms) != 0 {
			t.Fatalf("an ineligible quote was emailed: %s", ms[0].Subject)
		}
	})

	t.Run("a failed balance charge says what happens next, once per failure", func(t *testing.T) {
		b := newBooking(ginza, "ja", "awaiting_balance")
		first := uuid.NewString()
		seq := f.publish(t, first, subject.Booking(ginza, subject.BalanceFailed), &bookingv1.BalanceChargeFailed{
			Booking: b, PaymentId: uuid.NewString(), RequiresAction: true, FailureCode: "authentication_required", FailedAt: timestamppb.Now()}, time.Now())
		m := f.waitForMail(t, b.Patient.Email, "残金1,680,000円を決済できませんでした")
		for _, want := range []string{"カード会社がご本人による承認を求めています", "ご請求は発生していません", "細胞は引き続きお客様のために保管いたします"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("balance-failed email lacks %q:\n%s", want, m.Text)
			}
		}
		f.redeliver(t, seq)
		// A later attempt declined outright: a new cause, a new email.
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.BalanceFailed), &bookingv1.BalanceChargeFailed{
			Booking: b, PaymentId: uuid.NewString(), FailureCode: "card_declined", FailedAt: timestamppb.Now()}, time.Now())
		devtest.Eventually(t, "the second failure's email", func() bool { return len(f.mailsTo(b.Patient.Email)) >= 2 })
		f.settle(t, ginza)
		mails := f.mailsTo(b.Patient.Email)
		if len(mails) != 2 || !strings.Contains(mails[1].Text, "カード会社が決済を承認しませんでした") {
			t.Fatalf("%d emails for two failures (one redelivered): %v", len(mails), mails)
		}
		if es := f.emails(t, b.Id); len(es) != 2 || es[0].ID != b.Id+":balance_failed:"+first {
			t.Fatalf("email records %+v", es)
		}
	})

	t.Run("preferences: only the patient's own, bounded, and money emails cannot be declined", func(t *testing.T) {
		patient := f.issuer.Token(t, identity.Principal{Subject: "patient-prefs", Role: identity.Patient})
		url := f.base + "/v1/me/notification-preferences"
		var v preferencesView
		if code := call(t, "GET", url, patient, nil, &v); code != 200 || v.Language != "" ||
			!v.Emails["quote_issued"] || !v.Emails["administered"] || len(v.Emails) != 2 ||
			!slices.Equal(v.AlwaysSent, []string{"booking_confirmed", "balance_charged", "balance_failed", "qc_failed"}) {
			t.Fatalf("defaults: %d %+v", code, v)
		}
		var problem struct {
			Status int
			Errors []struct{ Field string }
		}
		code := call(t, "PUT", url, patient, map[string]any{"language": "fr", "emails": map[string]bool{"booking_confirmed": false}}, &problem)
		fields := []string{}
		for _, e := range problem.Errors {
			fields = append(fields, e.Field)
		}
		slices.Sort(fields)
		if code != 422 || !slices.Equal(fields, []string{"emails.booking_confirmed", "language"}) {
			t.Fatalf("bad preferences: %d %v", code, fields)
		}
		many := map[string]bool{}
		for i := range 1000 {
			many[fmt.Sprintf("email_%d", i)] = false
		}
		problem.Errors = nil
		if code := call(t, "PUT", url, patient, map[string]any{"emails": many}, &problem); code != 422 || len(problem.Errors) != 1 ||
			problem.Errors[0].Field != "emails" {
			t.Fatalf("a thousand emails: %d %+v", code, problem.Errors)
		}
		if code := call(t, "PUT", url, patient, map[string]any{"language": "zh", "sms": true}, nil); code != 400 {
			t.Fatalf("unknown field: %d, want 400", code)
		}
		clinic := f.issuer.Token(t, identity.Principal{Subject: "staff-1", Role: identity.Clinic, ClinicID: ginza})
		for token, want := range map[string]int{"": 401, clinic: 403} {
			if code := call(t, "GET", url, token, nil, nil); code != want {
				t.Errorf("preferences as %q: %d, want %d", token, code, want)
			}
		}

		if code := call(t, "PUT", url, patient, map[string]any{"language": "zh", "emails": map[string]bool{"quote_issued": false}}, &v); code != 200 ||
			v.Language != "zh" || v.Emails["quote_issued"] || !v.Emails["administered"] {
			t.Fatalf("saved: %d %+v", code, v)
		}
		// Another patient's settings are untouched.
		other := f.issuer.Token(t, identity.Principal{Subject: "patient-other", Role: identity.Patient})
		if code := call(t, "GET", url, other, nil, &v); code != 200 || v.Language != "" || !v.Emails["quote_issued"] {
			t.Fatalf("another patient's settings: %d %+v", code, v)
		}

		// The declined quote email is not sent; the booking email is, in
		// the chosen language though the quote said English.
		q := issuedQuote("en", "patient-prefs")
		f.publish(t, uuid.NewString(), subject.Quote(ginza, subject.QuoteIssued), q, time.Now())
		b := newBooking(ginza, "en", "confirmed")
		b.Patient.Subject = "patient-prefs"
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
		m := f.waitForMail(t, b.Patient.Email, "预约已确认")
		if m.Headers["Content-Language"] != "zh" {
			t.Errorf("Content-Language %q", m.Headers["Content-Language"])
		}
		// The clinic's notice does not carry the patient's identity here.
		n := f.clinic(ginza).waitFor(t, b.Id, notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
		if n.notice.GetBooking().GetPatient().GetSubject() != "" || n.notice.GetBooking().GetPatient().GetEmail() != b.Patient.Email {
			t.Errorf("notice patient %v", n.notice.GetBooking().GetPatient())
		}
		f.settle(t, ginza)
		if ms := f.mailsTo(q.Patient.Email); len(ms) != 0 {
			t.Fatalf("a declined quote email was sent: %s", ms[0].Subject)
		}
	})
}
