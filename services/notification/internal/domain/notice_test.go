package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

func booking(lang string) Booking {
	return Booking{ID: "b1", ClinicName: "Ginza Regenerative Cell Clinic", TreatmentName: "Adipose MSC for stroke",
		PatientName: "Kim Min-jun", PatientEmail: "minjun@example.kr", Language: lang,
		Total: money.Yen(1_540_000), Deposit: money.Yen(1_100_000), Balance: money.Yen(440_000),
		// 2027-01-31 23:30 in Tokyo, already the 31st there though the 31st 14:30 in UTC.
		AdministeredAt: time.Date(2027, 1, 31, 14, 30, 0, 0, time.UTC),
		ValidUntil:     time.Date(2026, 12, 31, 14, 59, 0, 0, time.UTC)}
}

// Every email exists in the four languages, with amounts written the same
// way throughout an email and dates on the clinic's calendar.
func TestEveryEmailIsWrittenInThePatientsLanguage(t *testing.T) {
	subjects := map[string]map[string]string{
		TemplateBookingConfirmed: {"en": "Your booking at Ginza Regenerative Cell Clinic is confirmed", "ko": "Ginza Regenerative Cell Clinic 예약이 확정되었습니다",
			"ja": "Ginza Regenerative Cell Clinicのご予約が確定しました", "zh": "您在Ginza Regenerative Cell Clinic的预约已确认"},
		TemplateBalanceCharged: {"en": "Balance of ¥440,000 charged: your cells are ready", "ko": "잔금 440,000엔 결제 완료: 세포가 준비되었습니다",
			"ja": "残金440,000円を決済しました：細胞の準備が整いました", "zh": "尾款440,000日元已扣款：您的细胞已准备就绪"},
	}
	amounts := map[string][]string{"en": {"¥1,100,000", "¥440,000", "¥1,540,000"}, "ko": {"1,100,000엔", "440,000엔", "1,540,000엔"},
		"ja": {"1,100,000円", "440,000円", "1,540,000円"}, "zh": {"1,100,000日元", "440,000日元", "1,540,000日元"}}
	for _, tmpl := range Templates {
		for _, lang := range Languages {
			e, err := ComposeEmail(tmpl, booking(lang))
			if err != nil {
				t.Fatalf("%s/%s: %v", tmpl, lang, err)
			}
			if e.Language != lang || e.To != "minjun@example.kr" || e.ID != "b1:"+tmpl || e.Subject == "" {
				t.Fatalf("%s/%s: %+v", tmpl, lang, e)
			}
			if want, ok := subjects[tmpl][lang]; ok && e.Subject != want {
				t.Errorf("%s/%s subject %q, want %q", tmpl, lang, e.Subject, want)
			}
			if !strings.Contains(e.Body, "Kim Min-jun") || !strings.Contains(e.Body, "b1") || !strings.Contains(e.HTML, `lang="`+lang+`"`) {
				t.Errorf("%s/%s body:\n%s", tmpl, lang, e.Body)
			}
			if tmpl == TemplateBookingConfirmed || tmpl == TemplateQuoteIssued {
				for _, a := range amounts[lang] {
					if !strings.Contains(e.Body, a) || !strings.Contains(e.HTML, a) {
						t.Errorf("%s/%s lacks %q", tmpl, lang, a)
					}
				}
				if lang != "en" && strings.Contains(e.Body, "¥") {
					t.Errorf("%s/%s mixes ¥ with the language's yen", tmpl, lang)
				}
			}
		}
	}
	// An unknown language is written in English.
	if e, _ := ComposeEmail(TemplateBookingConfirmed, booking("fr")); e.Language != "en" || !strings.Contains(e.Subject, "is confirmed") {
		t.Fatalf("fallback: %+v", e)
	}
	if _, err := ComposeEmail("nope", booking("en")); err == nil {
		t.Fatal("unknown template accepted")
	}
}

// The administered email gives the date it happened and the follow-ups at
// 1, 3 and 6 months, on the clinic's calendar (Tokyo).
func TestTheAdministeredEmailSchedulesTheFollowUps(t *testing.T) {
	for lang, dates := range map[string][]string{
		"en": {"31 January 2027", "28 February 2027", "30 April 2027", "31 July 2027"},
		"ko": {"2027년 1월 31일", "2027년 2월 28일", "2027년 4월 30일", "2027년 7월 31일"},
		"ja": {"2027年1月31日", "2027年2月28日", "2027年4月30日", "2027年7月31日"},
	} {
		e, err := ComposeEmail(TemplateAdministered, booking(lang))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dates {
			if !strings.Contains(e.Body, d) {
				t.Errorf("%s lacks %q:\n%s", lang, d, e.Body)
			}
		}
		if strings.Count(e.HTML, "<li>") != 3 {
			t.Errorf("%s: the follow-ups are not a list of three:\n%s", lang, e.HTML)
		}
	}
}

// The HTML part escapes what patients and clinics typed: a name is text,
// never markup.
func TestTheHTMLPartEscapesWhatWasTyped(t *testing.T) {
	b := booking("en")
	b.PatientName = `<script>alert("x")</script> & Co`
	b.ClinicName = `Clinic <b>bold</b>`
	e, err := ComposeEmail(TemplateBookingConfirmed, b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "<script>") || strings.Contains(e.HTML, "<b>") ||
		!strings.Contains(e.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co") {
		t.Fatalf("HTML part:\n%s", e.HTML)
	}
	if !strings.Contains(e.Body, `<script>alert("x")</script> & Co`) {
		t.Fatalf("the text part is changed: %s", e.Body)
	}
}

// Money emails cannot be declined; a language setting beats the quote's.
func TestPreferencesDeclineOnlyOptionalEmails(t *testing.T) {
	p := Preferences{Language: "ja", Declined: []string{TemplateQuoteIssued}}
	if p.Wants(TemplateQuoteIssued) || !p.Wants(TemplateAdministered) || !p.Wants(TemplateBalanceFailed) {
		t.Fatalf("wants: %+v", p)
	}
	if got := p.LanguageFor("ko"); got != "ja" {
		t.Fatalf("language %q", got)
	}
	if got := (Preferences{}).LanguageFor("ko"); got != "ko" {
		t.Fatalf("no setting: %q", got)
	}
	bad := Preferences{Language: "fr", Declined: []string{TemplateBalanceCharged}}
	if errs := bad.Validate(); len(errs) != 2 || errs[0].Field != "language" || errs[1].Field != "emails.balance_charged" {
		t.Fatalf("validate: %v", errs)
	}
}

func TestWebhookEventsAreBoundedKnownAndDistinct(t *testing.T) {
	for _, c := range []struct {
		events []string
		ok     bool
	}{
		{[]string{"booking.confirmed"}, true},
		{WebhookEventTypes, true},
		{nil, false},
		{[]string{"booking.confirmed", "booking.confirmed"}, false},
		{[]string{"booking.refunded"}, false},
		{make([]string, 100_000), false}, // refused before any quadratic check
	} {
		if errs := ValidateWebhookEvents(c.events); (len(errs) == 0) != c.ok || (!c.ok && errs[0].Field != "events") {
			t.Errorf("%d events: %v", len(c.events), errs)
		}
	}
}

// The schedule is Svix's, jittered by at most a tenth, and ends after the
// eighth attempt.
func TestWebhookRetriesFollowTheSchedule(t *testing.T) {
	if d, ok := RetryAfter(1); !ok || d != 0 {
		t.Fatalf("first attempt after %v", d)
	}
	for n := 2; n <= len(WebhookSchedule); n++ {
		d, ok := RetryAfter(n)
		base := WebhookSchedule[n-1]
		if !ok || d < base || d > base+base/10 {
			t.Errorf("attempt %d after %v, want %v plus at most a tenth", n, d, base)
		}
	}
	if _, ok := RetryAfter(len(WebhookSchedule) + 1); ok {
		t.Fatalf("a ninth attempt")
	}
	var total time.Duration
	for _, d := range WebhookSchedule {
		total += d
	}
	if total < 24*time.Hour {
		t.Fatalf("the schedule spans %v, less than a day", total)
	}
}
