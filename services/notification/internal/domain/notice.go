// Package domain decides who is told what about a booking: which booking
// events become notices on the clinic's own subjects, and which become
// emails to the patient, in the patient's language. No I/O here.
package domain

import (
	"time"

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
	// AdministeredAt is set for the administered email.
	AdministeredAt time.Time
}

// NoticeID is deterministic: one notice per booking and kind, ever.
func NoticeID(bookingID, kind string) string { return "notice:" + bookingID + ":" + kind }
