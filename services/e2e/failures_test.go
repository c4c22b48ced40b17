package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/subject"
)

// countEvents counts the BOOKING stream's events on filter about a booking.
func countEvents(t *testing.T, p *platform, filter, bookingID string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := p.js.OrderedConsumer(ctx, bus.StreamBooking, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if bytes.Contains(m.Data(), []byte(bookingID)) {
				n++
			}
		}
		if got == 0 {
			return n
		}
	}
}

// bookConfirmed takes a fresh quote to a confirmed booking and returns the
// booking id and the amounts.
func (p *platform) bookConfirmed(t *testing.T, name string) (bookingID string, deposit, balance int64) {
	t.Helper()
	quote := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY",
		Patient:   Patient{Name: name, Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com", Country: "US", Language: "en"},
		Screening: &fit})
	if quote.Value.Deposit == nil || quote.Value.Balance == nil {
		t.Fatalf("a bookable quote without a deposit or a balance: %s", quote.Raw)
	}
	deposit, balance = quote.Value.Deposit.Amount, quote.Value.Balance.Amount
	created := p.Book(t, quote.Value.ID, uuid.NewString()).Expect(t, 201)
	bookingID = created.Value.ID
	payload, sig := stripeEvent(t, "evt_dep_"+bookingID, "payment_intent.succeeded", paymentIntent{
		ID: created.Value.Deposit.PaymentIntentID, Amount: deposit, AmountReceived: deposit, Currency: "jpy",
		Status: "succeeded", PaymentMethod: "pm_card_" + bookingID[:min(8, len(bookingID))]})
	p.StripeWebhook(t, payload, sig)
	p.waitForStatus(t, bookingID, "confirmed")
	return bookingID, deposit, balance
}

func TestRefusalsAndFailuresLeaveNothingHalfDone(t *testing.T) {
	p := startPlatform(t)
	validPatient := Patient{Name: "Ana Silva", Email: "ana@example.com", Country: "BR", Language: "en"}
	fitQuote := QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: validPatient, Screening: &fit}
	quoteWith := func(change func(*QuoteRequest)) QuoteRequest {
		r := QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: validPatient}
		change(&r)
		return r
	}

	t.Run("bad requests are 4xx problems naming the field", func(t *testing.T) {
		// Bodies a client type cannot express (unknown members, wrong
		// types, broken JSON) go as maps or bytes.
		cases := []struct {
			method, path string
			body         any
			status       int
			field        string
		}{
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient, "coupon": "X"}, 400, "coupon"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": "lots", "currency": "JPY", "patient": validPatient}, 400, "dose_cells"},
			{"POST", "/v1/quotes", []byte(`{"treatment_id": `), 400, "body"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) { r.DoseCells = 7 }), 422, "dose_cells"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) { r.Currency = "BTC" }), 422, "currency"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) { r.TreatmentID = "no-such-treatment" }), 422, "treatment_id"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) {
				r.Patient = Patient{Name: "A", Email: "not-an-email", Country: "Brazil", Language: "en"}
			}), 422, "patient.email"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) { r.Extras = []ExtraRequest{{Code: "hotel"}} }), 422, "extras[0].nights"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) {
				r.Extras = []ExtraRequest{{Code: "interpreter", Days: ptr(2), Nights: ptr(3)}}
			}), 422, "extras[0].nights"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) {
				r.Screening = &Screening{DiagnosisConfirmed: ptr(true), SevereOrganDisease: ptr(false)}
			}), 422, "screening.can_travel"},
			{"POST", "/v1/quotes", quoteWith(func(r *QuoteRequest) {
				r.TreatmentID, r.DoseCells = "takanawa-bone-marrow-msc-subacute-sci", 100000000
				r.Screening = &Screening{DiagnosisConfirmed: ptr(true), SevereOrganDisease: ptr(false),
					CanTravel: ptr(true), CordSevered: ptr(false), InjuryDate: ptr("1 May")}
			}), 422, "screening.injury_date"},
			{"GET", "/v1/treatments?condition=baldness", nil, 422, "condition"},
			{"POST", "/v1/bookings", BookingRequest{QuoteID: uuid.NewString()}, 422, "quote_id"},
			{"POST", "/v1/bookings", BookingRequest{QuoteID: "42"}, 422, "quote_id"},
			{"POST", "/v1/webhooks/stripe", []byte(`{}`), 400, "Stripe-Signature"},
		}
		for _, c := range cases {
			r := decode[json.RawMessage](t, p.call(t, c.method, c.path, c.body, map[string]string{"Idempotency-Key": uuid.NewString()}))
			if r.Status != c.status || r.Header.Get("Content-Type") != "application/problem+json" || !r.Problem.Names(c.field) {
				t.Errorf("%s %s = %d %s; want %d naming %q", c.method, c.path, r.Status, r.Raw, c.status, c.field)
			}
		}
		for _, path := range []string{"/v1/treatments/no-such-treatment", "/v1/quotes/not-a-uuid", "/v1/quotes/" + uuid.NewString(),
			"/v1/bookings/" + uuid.NewString(), "/v1/bookings/not-a-uuid", "/v1/finance/bookings/" + uuid.NewString(),
			"/internal/v1/payments?booking_id=" + uuid.NewString()} {
			if r := p.call(t, "GET", path, nil, nil); r.Status != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("GET %s = %d %s, want a 404 problem", path, r.Status, r.Raw)
			}
		}
	})

	t.Run("a reused Idempotency-Key for another quote is refused", func(t *testing.T) {
		key := uuid.NewString()
		var q1, q2 Result[Quote]
		devtest.Eventually(t, "two quotes", func() bool {
			q1 = p.IssueQuote(t, fitQuote)
			q2 = p.IssueQuote(t, fitQuote)
			return q1.Status == 201 && q2.Status == 201
		})
		p.Book(t, q1.Value.ID, key).Expect(t, 201)
		r := p.Book(t, q2.Value.ID, key).Expect(t, 422)
		must(t, r.Problem.Slug() == "idempotency-key-reused", "reuse named")
	})

	t.Run("a booking whose deposit intent failed is finished by the retry", func(t *testing.T) {
		quote := p.issueWhenKnown(t, fitQuote)
		key := uuid.NewString()
		p.stripe.FailNext("POST", "/v1/customers", 400, devstack.StripeError{Type: "invalid_request_error", Message: "simulated outage"})
		failed := p.Book(t, quote.Value.ID, key).Expect(t, 503)
		must(t, strings.Contains(failed.Problem.Detail, "retry with the same Idempotency-Key"), "the answer says to retry")
		retried := p.Book(t, quote.Value.ID, key).Expect(t, 201)
		id := retried.Value.ID
		must(t, id != "" && strings.Contains(failed.Problem.Detail, id), "the retry finished the same booking")
		must(t, strings.HasPrefix(retried.Value.Deposit.PaymentIntentID, "pi_"), "with its deposit intent")
		customers := 0
		for _, r := range p.stripe.Requests() {
			if r.Path == "/v1/customers" && r.IdempotencyKey == "booking:"+id+":customer" {
				customers++
			}
		}
		must(t, customers == 2, fmt.Sprintf("customer creation tried %d times with the same idempotency key, want 2", customers))
	})

	t.Run("webhooks out of order, with a wrong amount, or for someone else change nothing", func(t *testing.T) {
		bookingID, deposit, _ := p.bookConfirmed(t, "Li Wei")
		b := p.Booking(t, bookingID).Expect(t, 200)
		must(t, len(b.Value.Payments) > 0, fmt.Sprintf("a confirmed booking has its deposit payment: %s", b.Raw))
		intent := b.Value.Payments[0].PaymentIntentID
		// A failure of an earlier attempt, delivered after the success.
		payload, sig := stripeEvent(t, "evt_late_fail_"+bookingID, "payment_intent.payment_failed", paymentIntent{
			ID: intent, Amount: deposit, AmountReceived: 0, Currency: "jpy", Status: "requires_payment_method",
			LastPaymentError: &paymentError{Type: "card_error", Code: "card_declined", Message: "declined"}})
		must(t, p.StripeWebhook(t, payload, sig).Status == 200, "late failure accepted")
		after := p.Booking(t, bookingID).Expect(t, 200).Value
		must(t, after.Status == "confirmed" && len(after.Payments) > 0 && after.Payments[0].Status == "succeeded", "late failure ignored")

		// Someone else's intent on the same Stripe account.
		payload, sig = stripeEvent(t, "evt_foreign", "payment_intent.succeeded", paymentIntent{
			ID: "pi_not_ours", Amount: 500, AmountReceived: 500, Currency: "jpy", Status: "succeeded"})
		must(t, p.StripeWebhook(t, payload, sig).Value.Outcome == "unknown_payment_intent", "foreign intent recorded and ignored")

		// A short payment for a new booking does not confirm it.
		quote := p.issueWhenKnown(t, fitQuote)
		created := p.Book(t, quote.Value.ID, uuid.NewString()).Expect(t, 201)
		short := deposit - 1
		payload, sig = stripeEvent(t, "evt_short", "payment_intent.succeeded", paymentIntent{
			ID: created.Value.Deposit.PaymentIntentID, Amount: short, AmountReceived: short, Currency: "jpy", Status: "succeeded"})
		must(t, p.StripeWebhook(t, payload, sig).Value.Outcome == "amount_mismatch", "short payment flagged")
		time.Sleep(300 * time.Millisecond)
		still := p.Booking(t, created.Value.ID).Expect(t, 200)
		must(t, still.Value.Status == "awaiting_deposit", "short payment does not confirm")
	})

	t.Run("cells failing QC are never charged the balance", func(t *testing.T) {
		bookingID, deposit, _ := p.bookConfirmed(t, "Maria Garcia")
		p.ReportHarvest(t, bookingID).Expect(t, 200)
		r := p.ReportCellsReady(t, bookingID, CellsReport{CellCount: 110_000_000, ViabilityPct: "91", Sterility: "fail", Endotoxin: "pass"}).Expect(t, 200)
		must(t, r.Value.Status == "qc_failed" && r.Value.QualityReport != nil && r.Has("quality_report", "passed") && !r.Value.QualityReport.Passed,
			"QC failed")
		devtest.Eventually(t, "finance to cancel the balance", func() bool {
			fin := p.Finance(t, bookingID)
			return fin.Status == 200 && fin.Value.Balance.Status == "cancelled"
		})
		fin := p.Finance(t, bookingID).Expect(t, 200).Value
		must(t, fin.Expected == yen(deposit) && fin.Outstanding == yen(0) && fin.Settled, fmt.Sprintf("finance after failed QC: %+v", fin))
		_, charged := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+bookingID+":balance")
		must(t, !charged, "no balance charge was attempted")
		p.ReportAdministered(t, bookingID).Expect(t, 409)
	})

	t.Run("a Stripe outage during the balance charge is retried with the same key", func(t *testing.T) {
		bookingID, _, balance := p.bookConfirmed(t, "Olivia Brown")
		p.ReportHarvest(t, bookingID).Expect(t, 200)
		p.stripe.FailNext("POST", "/v1/payment_intents", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		p.ReportCellsReady(t, bookingID, CellsReport{CellCount: 150_000_000, ViabilityPct: 90, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
		var balanceIntent string
		devtest.Eventually(t, "the retried balance charge to be recorded", func() bool {
			b := p.Booking(t, bookingID)
			if b.Status != 200 {
				return false
			}
			for _, pay := range b.Value.Payments {
				if pay.Stage == "balance" && pay.Status == "processing" {
					balanceIntent = pay.PaymentIntentID
					return true
				}
			}
			return false
		})
		attempts := 0
		for _, r := range p.stripe.Requests() {
			if r.IdempotencyKey == "booking:"+bookingID+":balance" {
				attempts++
				must(t, r.Form.Get("amount") == fmt.Sprint(balance), "same amount on every attempt")
			}
		}
		must(t, attempts == 2, fmt.Sprintf("%d balance attempts, want 2 (the failure and the retry)", attempts))
		payload, sig := stripeEvent(t, "evt_bal_"+bookingID, "payment_intent.succeeded", paymentIntent{
			ID: balanceIntent, Amount: balance, AmountReceived: balance, Currency: "jpy", Status: "succeeded"})
		p.StripeWebhook(t, payload, sig)
		p.waitForStatus(t, bookingID, "ready_for_administration")
	})

	authFails := func(t *testing.T, name string) (bookingID, intent string, balance int64) {
		t.Helper()
		bookingID, _, balance = p.bookConfirmed(t, name)
		p.ReportHarvest(t, bookingID).Expect(t, 200)
		intent = "pi_auth_" + strings.ReplaceAll(uuid.NewString(), "-", "")
		p.stripe.FailNext("POST", "/v1/payment_intents", 402, devstack.StripeError{Type: "card_error",
			Code: "authentication_required", DeclineCode: "authentication_required", Message: "This payment requires authentication.",
			PaymentIntent: map[string]any{"id": intent, "object": "payment_intent", "status": "requires_action", "amount": balance,
				"currency": "jpy", "client_secret": intent + "_secret_x",
				"last_payment_error": map[string]any{"code": "authentication_required", "type": "card_error"}}})
		p.ReportCellsReady(t, bookingID, CellsReport{CellCount: 101_000_000, ViabilityPct: 88, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
		return bookingID, intent, balance
	}

	t.Run("a card that needs authentication waits for the patient, who pays on-session", func(t *testing.T) {
		bookingID, intent, balance := authFails(t, "Sato Hana")
		var b Result[BookingWithPayments]
		devtest.Eventually(t, "the booking to record the failed balance", func() bool {
			b = p.Booking(t, bookingID)
			return b.Status == 200 && strings.HasPrefix(b.Value.BalanceFailure, "authentication_required")
		})
		must(t, b.Value.Status == "balance_action_required" && b.Value.BalancePayBy != nil, "waiting for the patient, with a deadline")
		var balancePay Payment
		for _, pay := range b.Value.Payments {
			if pay.Stage == "balance" {
				balancePay = pay
			}
		}
		must(t, balancePay.Status == "requires_action" && balancePay.FailureCode == "authentication_required" &&
			balancePay.PaymentIntentID == intent, fmt.Sprintf("balance payment %+v", balancePay))
		fin := p.Finance(t, bookingID).Expect(t, 200)
		must(t, fin.Value.Outstanding == yen(balance) && fin.Has("settled") && !fin.Value.Settled, "balance outstanding")
		mail := p.waitForMail(t, "sato.hana@example.com", "We could not charge the balance")
		must(t, strings.Contains(mail.Text, "/bookings/"+bookingID+"/pay") && strings.Contains(mail.Text, "cancellation policy") &&
			strings.Contains(mail.Text, "Confirm the payment with your bank"), "the email links to the payment and states the deadline:\n"+mail.Text)

		// The patient's app asks how to pay, and confirms the intent itself.
		session := p.call(t, "POST", "/v1/bookings/"+bookingID+"/balance-payment", nil, nil)
		var pay struct {
			PaymentIntentID string `json:"payment_intent_id"`
			ClientSecret    string `json:"client_secret"`
			Amount          Money  `json:"amount"`
		}
		_ = json.Unmarshal(session.Raw, &pay)
		must(t, session.Status == 200 && pay.PaymentIntentID == intent && pay.ClientSecret != "" && pay.Amount == yen(balance),
			fmt.Sprintf("balance payment session: %d %s", session.Status, session.Raw))
		other := p.call(t, "POST", "/v1/bookings/"+bookingID+"/balance-payment", nil,
			map[string]string{"Authorization": "Bearer " + p.token(t, identity.Principal{Subject: "patient-ana", Role: identity.Patient})})
		must(t, other.Status == 404, fmt.Sprintf("another patient: %d", other.Status))
		payload, sig := stripeEvent(t, "evt_onsession_"+bookingID, "payment_intent.succeeded", paymentIntent{
			ID: intent, Amount: balance, AmountReceived: balance, Currency: "jpy", Status: "succeeded"})
		p.StripeWebhook(t, payload, sig)
		p.waitForStatus(t, bookingID, "ready_for_administration")
		again := p.call(t, "POST", "/v1/bookings/"+bookingID+"/balance-payment", nil, nil)
		must(t, again.Status == 409, fmt.Sprintf("a paid balance: %d %s", again.Status, again.Raw))
	})

	t.Run("a balance the patient never pays is reminded daily, then cancelled under the policy", func(t *testing.T) {
		bookingID, intent, _ := authFails(t, "Ito Ren")
		p.waitForStatus(t, bookingID, "balance_action_required")
		p.clock.Advance(25 * time.Hour)
		devtest.Eventually(t, "a reminder", func() bool {
			return countEvents(t, p, subject.Booking(subject.Any, subject.BalanceReminder), bookingID) == 1
		})
		p.clock.Advance(48 * time.Hour)
		cancelled := p.waitForStatus(t, bookingID, "cancelled")
		must(t, cancelled.Value.Cancellation != nil && cancelled.Value.Cancellation.Reason == "balance_unpaid",
			fmt.Sprintf("cancellation %+v", cancelled.Value.Cancellation))
		devtest.Eventually(t, "the balance intent to be cancelled", func() bool {
			_, ok := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents/"+intent+"/cancel", "booking:"+bookingID+":cancel-balance")
			return ok
		})
	})
}
