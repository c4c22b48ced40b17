// Package subject builds every NATS subject the platform publishes or
// filters on, so producers and consumers cannot drift apart: a producer
// calls Booking(b.ClinicID, Confirmed), a consumer Booking(Any, CellsReady).
//
// Subjects begin with the owning service and version and, where the event
// concerns a clinic, the clinic id, so a clinic's credentials can be limited
// to exactly its own subjects (clinic.v1.<clinic_id>.>). Ids used as tokens
// (clinic ids, treatment ids, plan numbers) are slugs: no dots, spaces or
// wildcards, which the catalog enforces when they are created.
package subject

import "strings"

// Any stands for every value of one token in a consumer's filter.
const Any = "*"

// The subject trees, one per owning service; each is one stream.
const (
	CatalogTree = "catalog.v1.>"
	QuotingTree = "quoting.v1.>"
	BookingTree = "booking.v1.>"
	PaymentTree = "payment.v1.>"
	ClinicTree  = "clinic.v1.>"
)

// BookingEvent names the status a booking event announces.
type BookingEvent string

// Booking events, one per status a booking enters, and BalanceFailed, one
// per balance charge that failed while the booking waits for its balance.
const (
	Created                BookingEvent = "created"
	Confirmed              BookingEvent = "confirmed"
	Harvested              BookingEvent = "harvested"
	CellsReady             BookingEvent = "cells_ready"
	QCFailed               BookingEvent = "qc_failed"
	ReadyForAdministration BookingEvent = "ready_for_administration"
	Administered           BookingEvent = "administered"
	BalanceFailed          BookingEvent = "balance_failed"
	// Cancelled: the booking ended before administration; payment refunds
	// what its cancellation policy returns.
	Cancelled BookingEvent = "cancelled"
	// Expired: the deposit was not paid by its deadline.
	Expired BookingEvent = "expired"
	// BalanceReminder: the balance still waits for the patient.
	BalanceReminder BookingEvent = "balance_reminder"
	// Reculture: after a failed QC, a free second culture.
	Reculture BookingEvent = "reculture"
)

// BookingEvents lists every booking event.
var BookingEvents = []BookingEvent{Created, Confirmed, Harvested, CellsReady, QCFailed, ReadyForAdministration, Administered, BalanceFailed,
	Cancelled, Expired, BalanceReminder, Reculture}

// Booking is booking.v1.<clinic>.<event>.
func Booking(clinic string, e BookingEvent) string { return join("booking.v1", clinic, string(e)) }

// Stage is the payment stage token.
type Stage string

// Payment stages.
const (
	Deposit Stage = "deposit"
	Balance Stage = "balance"
	// Refund is money returned to the patient, whichever stage paid it.
	Refund Stage = "refund"
)

// PaymentOutcome is what happened to a payment.
type PaymentOutcome string

// Payment outcomes.
const (
	Succeeded PaymentOutcome = "succeeded"
	Failed    PaymentOutcome = "failed"
	// Requested: a charge was sent and its outcome is awaited (the
	// balance only; the deposit is requested while the patient books).
	Requested PaymentOutcome = "requested"
)

// Payment is payment.v1.<clinic>.<stage>.<outcome>.
func Payment(clinic string, s Stage, o PaymentOutcome) string {
	return join("payment.v1", clinic, string(s), string(o))
}

// QuoteEvent names a quote's lifecycle event.
type QuoteEvent string

// Quote events.
const (
	QuoteIssued    QuoteEvent = "issued"
	QuoteAccepted  QuoteEvent = "accepted"
	QuoteWithdrawn QuoteEvent = "withdrawn"
)

// Quote is quoting.v1.<clinic>.quote.<event>.
func Quote(clinic string, e QuoteEvent) string { return join("quoting.v1", clinic, "quote", string(e)) }

// Treatment is catalog.v1.treatments.<id>, the treatment's latest snapshot.
func Treatment(id string) string { return join("catalog.v1.treatments", id) }

// Plan is catalog.v1.plans.<number>.
func Plan(number string) string { return join("catalog.v1.plans", number) }

// NoticeKind names what a clinic notice tells.
type NoticeKind string

// Clinic notice kinds.
const (
	NoticeConfirmed              NoticeKind = "confirmed"
	NoticeReadyForAdministration NoticeKind = "ready_for_administration"
	NoticeCancelled              NoticeKind = "cancelled"
	NoticeExpired                NoticeKind = "expired"
	NoticeReculture              NoticeKind = "reculture"
	NoticeAdministered           NoticeKind = "administered"
)

// ClinicNotice is clinic.v1.<clinic>.booking.<kind>.
func ClinicNotice(clinic string, k NoticeKind) string {
	return join("clinic.v1", clinic, "booking", string(k))
}

// Clinic is everything a clinic may read: clinic.v1.<clinic>.>.
func Clinic(clinic string) string { return join("clinic.v1", clinic, ">") }

// Produced lists every subject a producer builds, with Any for each token
// that is an id: the whole vocabulary, for tests that hold consumers,
// streams and producers to it.
func Produced() []string {
	var out []string
	for _, e := range BookingEvents {
		out = append(out, Booking(Any, e))
	}
	for _, s := range []Stage{Deposit, Balance, Refund} {
		for _, o := range []PaymentOutcome{Succeeded, Failed} {
			out = append(out, Payment(Any, s, o))
		}
	}
	out = append(out, Payment(Any, Balance, Requested))
	for _, e := range []QuoteEvent{QuoteIssued, QuoteAccepted, QuoteWithdrawn} {
		out = append(out, Quote(Any, e))
	}
	out = append(out, Treatment(Any), Plan(Any))
	for _, k := range []NoticeKind{NoticeConfirmed, NoticeReadyForAdministration, NoticeAdministered, NoticeCancelled, NoticeExpired, NoticeReculture} {
		out = append(out, ClinicNotice(Any, k))
	}
	return out
}

// Overlaps reports whether some subject matches both a and b, each of which
// may hold NATS wildcards (* for one token, > for the rest).
func Overlaps(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		aEnd, bEnd := i == len(at), i == len(bt)
		switch {
		case aEnd || bEnd:
			return aEnd && bEnd
		case at[i] == ">" || bt[i] == ">":
			return true // both have a token here, and > takes it and the rest
		case at[i] != bt[i] && at[i] != Any && bt[i] != Any:
			return false
		}
	}
}

func join(tokens ...string) string { return strings.Join(tokens, ".") }
