// Package domain decides who is told what about a booking: which booking
// events become notices on the clinic's own subjects, and which become
// emails to the patient, in the patient's language. No I/O here.
package domain

import (
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Booking is what an email is about: a booking, or for the quote email a
// quote (ID is then the quote's id and ValidUntil is set).
type Booking struct {
	ID            string
	ClinicID      string
	ClinicName    string
	TreatmentName string
	PatientName   string
	PatientEmail  string
	// PatientSubject is the patient's identity, whose preferences apply.
	PatientSubject string
	Language       string
	Status         string
	Total          money.Money
	Deposit        money.Money
	Balance        money.Money
	// AdministeredAt is set for the administered email.
	AdministeredAt time.Time
	// ValidUntil is set for the quote email.
	ValidUntil time.Time
	// RequiresAction is set for the balance-failed email when the bank
	// wants the patient to authenticate the charge (otherwise it declined).
	RequiresAction bool
	// PayURL and PayBy are set when the patient must pay the balance
	// themselves: where, and by when, before the booking is cancelled.
	PayURL string
	PayBy  time.Time
	// Reminder marks a reminder of an earlier email.
	Reminder bool
}

// NoticeID is deterministic: one notice per booking and kind, ever.
func NoticeID(bookingID, kind string) string { return "notice:" + bookingID + ":" + kind }
