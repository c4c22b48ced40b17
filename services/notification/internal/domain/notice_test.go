package domain

import (
	"strings"
	"testing"

	"github.com/saisei-health/platform/pkg/money"
)

func TestEmailsStateTheAmountsInYenAndFallBackToEnglish(t *testing.T) {
	b := Booking{ID: "b1", ClinicName: "Ginza Regenerative Cell Clinic", TreatmentName: "Adipose MSC for stroke",
		PatientName: "Kim Min-jun", PatientEmail: "minjun@example.kr", Language: "ko",
		Total: money.Yen(3_000_000), Deposit: money.Yen(1_900_000), Balance: money.Yen(1_100_000)}
	e, err := ComposeEmail(TemplateBookingConfirmed, b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Language != "en" || e.To != "minjun@example.kr" || e.ID != "b1:booking_confirmed" {
		t.Fatalf("email = %+v", e)
	}
	for _, want := range []string{"¥1,900,000", "¥1,100,000", "¥3,000,000", "Kim Min-jun", "b1"} {
		if !strings.Contains(e.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, e.Body)
		}
	}
	e, _ = ComposeEmail(TemplateBalanceCharged, b)
	if e.Subject != "Balance of ¥1,100,000 charged: your cells are ready" {
		t.Fatalf("subject = %q", e.Subject)
	}
	if _, err := ComposeEmail("nope", b); err == nil {
		t.Fatal("unknown template accepted")
	}
}
