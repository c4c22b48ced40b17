// Package domain decides who is told what about a booking: which booking
// events become notices on the clinic's own subjects, and which become
// emails to the patient, in the patient's language. No I/O here.
package domain

import (
	"bytes"
	"fmt"
	"text/template"

	"github.com/saisei-health/platform/pkg/money"
)

// Booking is notification's read model of a booking.
type Booking struct {
	ID            string
	ClinicID      string
	ClinicName    string
	TreatmentName string
	PatientName   string
	PatientEmail  string
	Language      string
	Status        string
	Total         money.Money
	Deposit       money.Money
	Balance       money.Money
}

// NoticeID is deterministic: one notice per booking and kind, ever.
func NoticeID(bookingID, kind string) string { return "notice:" + bookingID + ":" + kind }

// Email is a message to queue.
type Email struct {
	ID       string
	Template string
	Language string
	To       string
	Subject  string
	Body     string
}

// Templates patients receive.
const (
	TemplateBookingConfirmed = "booking_confirmed"
	TemplateBalanceCharged   = "balance_charged"
)

type emailTemplate struct {
	subject, body *template.Template
}

func mustTemplate(subject, body string) emailTemplate {
	funcs := template.FuncMap{"yen": func(m money.Money) string { return m.Format() }}
	return emailTemplate{
		subject: template.Must(template.New("s").Funcs(funcs).Parse(subject)),
		body:    template.Must(template.New("b").Funcs(funcs).Parse(body)),
	}
}

// templates[name][language]; English is the fallback for every language.
var templates = map[string]map[string]emailTemplate{
	TemplateBookingConfirmed: {
		"en": mustTemplate(`Your booking at {{.ClinicName}} is confirmed`,
			`Dear {{.PatientName}},

We have received your deposit of {{yen .Deposit}} for {{.TreatmentName}} at {{.ClinicName}}. Your booking is confirmed and the clinic has been told.

What happens next
- The clinic will contact you to schedule the harvest visit.
- Your cells are then cultured, which usually takes three to five weeks, and tested before release. You will receive the certificate of analysis (cell count and viability).
- Once the cells pass testing, the balance of {{yen .Balance}} is charged to the card you paid the deposit with, and the clinic schedules the administration.

Total for the treatment: {{yen .Total}}.

Booking reference: {{.ID}}

Saisei Care`),
	},
	TemplateBalanceCharged: {
		"en": mustTemplate(`Balance of {{yen .Balance}} charged: your cells are ready`,
			`Dear {{.PatientName}},

Your cells for {{.TreatmentName}} passed quality testing, and we have charged the balance of {{yen .Balance}} to the card you used for the deposit. With the deposit of {{yen .Deposit}}, the treatment ({{yen .Total}}) is now paid in full.

{{.ClinicName}} will contact you to schedule the administration.

Booking reference: {{.ID}}

Saisei Care`),
	},
}

// ComposeEmail renders template name for b in b's language, falling back
// to English.
func ComposeEmail(name string, b Booking) (Email, error) {
	byLang, ok := templates[name]
	if !ok {
		return Email{}, fmt.Errorf("no email template %q", name)
	}
	lang := b.Language
	t, ok := byLang[lang]
	if !ok {
		lang, t = "en", byLang["en"]
	}
	var subject, body bytes.Buffer
	if err := t.subject.Execute(&subject, b); err != nil {
		return Email{}, err
	}
	if err := t.body.Execute(&body, b); err != nil {
		return Email{}, err
	}
	return Email{ID: b.ID + ":" + name, Template: name, Language: lang, To: b.PatientEmail,
		Subject: subject.String(), Body: body.String()}, nil
}
