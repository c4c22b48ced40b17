package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/devstack"
)

// bookConfirmed takes a fresh quote to a confirmed booking and returns the
// booking id, its deposit intent and the amounts.
func (p *platform) bookConfirmed(t *testing.T, name string) (bookingID string, deposit, balance int64) {
	t.Helper()
	var quote response
	eventually(t, "a quote", func() bool {
		quote = p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY",
			"patient":   map[string]any{"name": name, "email": strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com", "country": "US", "language": "en"},
			"screening": fit}, nil)
		return quote.Status == 201
	})
	deposit, _ = money(quote.Body["deposit"])
	balance, _ = money(quote.Body["balance"])
	created := p.mustCall(t, 201, "POST", "/v1/bookings", map[string]any{"quote_id": quote.Body["id"]},
		map[string]string{"Idempotency-Key": uuid.NewString()})
	bookingID = fmt.Sprint(created.Body["id"])
	intent := fmt.Sprint(obj(created.Body["deposit"])["payment_intent_id"])
	payload, sig := stripeEvent(t, "evt_dep_"+bookingID, "payment_intent.succeeded", map[string]any{
		"id": intent, "object": "payment_intent", "amount": deposit, "amount_received": deposit, "currency": "jpy",
		"status": "succeeded", "payment_method": "pm_card_" + bookingID[:8]})
	p.webhook(t, payload, sig)
	p.waitForStatus(t, bookingID, "confirmed")
	return bookingID, deposit, balance
}

func TestRefusalsAndFailuresLeaveNothingHalfDone(t *testing.T) {
	p := startPlatform(t)
	validPatient := map[string]any{"name": "Ana Silva", "email": "ana@example.com", "country": "BR", "language": "en"}

	t.Run("bad requests are 4xx problems naming the field", func(t *testing.T) {
		cases := []struct {
			method, path string
			body         any
			status       int
			field        string
		}{
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient, "coupon": "X"}, 400, "coupon"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": "lots", "currency": "JPY", "patient": validPatient}, 400, "dose_cells"},
			{"POST", "/v1/quotes", []byte(`{"treatment_id": `), 400, "body"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": 7, "currency": "JPY", "patient": validPatient}, 422, "dose_cells"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "BTC", "patient": validPatient}, 422, "currency"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": "no-such-treatment", "dose_cells": dose, "currency": "JPY", "patient": validPatient}, 422, "treatment_id"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY",
				"patient": map[string]any{"name": "A", "email": "not-an-email", "country": "Brazil", "language": "en"}}, 422, "patient.email"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient,
				"extras": []any{map[string]any{"code": "hotel"}}}, 422, "extras[0].nights"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient,
				"extras": []any{map[string]any{"code": "interpreter", "days": 2, "nights": 3}}}, 422, "extras[0].nights"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient,
				"screening": map[string]any{"diagnosis_confirmed": true, "severe_organ_disease": false}}, 422, "screening.can_travel"},
			{"POST", "/v1/quotes", map[string]any{"treatment_id": "takanawa-bone-marrow-msc-subacute-sci", "dose_cells": 100000000, "currency": "JPY",
				"patient": validPatient, "screening": map[string]any{"diagnosis_confirmed": true, "severe_organ_disease": false,
					"can_travel": true, "cord_severed": false, "injury_date": "1 May"}}, 422, "screening.injury_date"},
			{"GET", "/v1/treatments?condition=baldness", nil, 422, "condition"},
			{"POST", "/v1/bookings", map[string]any{"quote_id": uuid.NewString()}, 422, "quote_id"},
			{"POST", "/v1/bookings", map[string]any{"quote_id": "42"}, 422, "quote_id"},
			{"POST", "/v1/webhooks/stripe", []byte(`{}`), 400, "Stripe-Signature"},
		}
		for _, c := range cases {
			r := p.call(t, c.method, c.path, c.body, map[string]string{"Idempotency-Key": uuid.NewString()})
			if r.Status != c.status || r.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.Raw), `"field":"`+c.field+`"`) {
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
		key := map[string]string{"Idempotency-Key": uuid.NewString()}
		var q1, q2 response
		eventually(t, "two quotes", func() bool {
			q1 = p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient, "screening": fit}, nil)
			q2 = p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient, "screening": fit}, nil)
			return q1.Status == 201 && q2.Status == 201
		})
		p.mustCall(t, 201, "POST", "/v1/bookings", map[string]any{"quote_id": q1.Body["id"]}, key)
		r := p.mustCall(t, 422, "POST", "/v1/bookings", map[string]any{"quote_id": q2.Body["id"]}, key)
		must(t, strings.HasSuffix(fmt.Sprint(r.Body["type"]), "/idempotency-key-reused"), "reuse named")
	})

	t.Run("a booking whose deposit intent failed is finished by the retry", func(t *testing.T) {
		var quote response
		eventually(t, "a quote", func() bool {
			quote = p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient, "screening": fit}, nil)
			return quote.Status == 201
		})
		key := map[string]string{"Idempotency-Key": uuid.NewString()}
		p.stripe.FailNext("POST", "/v1/customers", 400, devstack.StripeError{Type: "invalid_request_error", Message: "simulated outage"})
		failed := p.mustCall(t, 503, "POST", "/v1/bookings", map[string]any{"quote_id": quote.Body["id"]}, key)
		must(t, strings.Contains(fmt.Sprint(failed.Body["detail"]), "retry with the same Idempotency-Key"), "the answer says to retry")
		retried := p.mustCall(t, 201, "POST", "/v1/bookings", map[string]any{"quote_id": quote.Body["id"]}, key)
		must(t, strings.Contains(fmt.Sprint(failed.Body["detail"]), fmt.Sprint(retried.Body["id"])), "the retry finished the same booking")
		must(t, strings.HasPrefix(fmt.Sprint(obj(retried.Body["deposit"])["payment_intent_id"]), "pi_"), "with its deposit intent")
		customers := 0
		for _, r := range p.stripe.Requests() {
			if r.Path == "/v1/customers" && r.IdempotencyKey == "booking:"+fmt.Sprint(retried.Body["id"])+":customer" {
				customers++
			}
		}
		must(t, customers == 2, fmt.Sprintf("customer creation tried %d times with the same idempotency key, want 2", customers))
	})

	t.Run("webhooks out of order, with a wrong amount, or for someone else change nothing", func(t *testing.T) {
		bookingID, deposit, _ := p.bookConfirmed(t, "Li Wei")
		b := p.mustCall(t, 200, "GET", "/v1/bookings/"+bookingID, nil, nil)
		intent := fmt.Sprint(obj(list(b.Body["payments"])[0])["payment_intent_id"])
		// A failure of an earlier attempt, delivered after the success.
		payload, sig := stripeEvent(t, "evt_late_fail_"+bookingID, "payment_intent.payment_failed", map[string]any{
			"id": intent, "object": "payment_intent", "amount": deposit, "amount_received": 0, "currency": "jpy",
			"status": "requires_payment_method", "last_payment_error": map[string]any{"type": "card_error", "code": "card_declined", "message": "declined"}})
		must(t, p.webhook(t, payload, sig).Status == 200, "late failure accepted")
		after := p.mustCall(t, 200, "GET", "/v1/bookings/"+bookingID, nil, nil)
		must(t, after.Body["status"] == "confirmed" && obj(list(after.Body["payments"])[0])["status"] == "succeeded", "late failure ignored")

		// Someone else's intent on the same Stripe account.
		payload, sig = stripeEvent(t, "evt_foreign", "payment_intent.succeeded", map[string]any{
			"id": "pi_not_ours", "object": "payment_intent", "amount": 500, "amount_received": 500, "currency": "jpy", "status": "succeeded"})
		must(t, p.webhook(t, payload, sig).Body["outcome"] == "unknown_payment_intent", "foreign intent recorded and ignored")

		// A short payment for a new booking does not confirm it.
		var quote response
		eventually(t, "a quote", func() bool {
			quote = p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "JPY", "patient": validPatient, "screening": fit}, nil)
			return quote.Status == 201
		})
		created := p.mustCall(t, 201, "POST", "/v1/bookings", map[string]any{"quote_id": quote.Body["id"]}, map[string]string{"Idempotency-Key": uuid.NewString()})
		short := deposit - 1
		payload, sig = stripeEvent(t, "evt_short", "payment_intent.succeeded", map[string]any{
			"id": obj(created.Body["deposit"])["payment_intent_id"], "object": "payment_intent", "amount": short,
			"amount_received": short, "currency": "jpy", "status": "succeeded"})
		must(t, p.webhook(t, payload, sig).Body["outcome"] == "amount_mismatch", "short payment flagged")
		time.Sleep(300 * time.Millisecond)
		still := p.mustCall(t, 200, "GET", fmt.Sprint("/v1/bookings/", created.Body["id"]), nil, nil)
		must(t, still.Body["status"] == "awaiting_deposit", "short payment does not confirm")
	})

	t.Run("cells failing QC are never charged the balance", func(t *testing.T) {
		bookingID, deposit, _ := p.bookConfirmed(t, "Maria Garcia")
		p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/harvest", nil, nil)
		r := p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/cells-ready",
			map[string]any{"cell_count": 110_000_000, "viability_pct": "91", "sterility": "fail", "endotoxin": "pass"}, nil)
		must(t, r.Body["status"] == "qc_failed" && obj(r.Body["quality_report"])["passed"] == false, "QC failed")
		eventually(t, "finance to cancel the balance", func() bool {
			fin := p.call(t, "GET", "/v1/finance/bookings/"+bookingID, nil, nil).Body
			return obj(fin["balance"])["status"] == "cancelled"
		})
		fin := p.mustCall(t, 200, "GET", "/v1/finance/bookings/"+bookingID, nil, nil).Body
		exp, _ := money(fin["expected"])
		out, _ := money(fin["outstanding"])
		must(t, exp == deposit && out == 0 && fin["settled"] == true, fmt.Sprintf("finance after failed QC: %v", fin))
		_, charged := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+bookingID+":balance")
		must(t, !charged, "no balance charge was attempted")
		p.mustCall(t, 409, "POST", "/v1/clinic/bookings/"+bookingID+"/administered", nil, nil)
	})

	t.Run("a Stripe outage during the balance charge is retried with the same key", func(t *testing.T) {
		bookingID, _, balance := p.bookConfirmed(t, "Olivia Brown")
		p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/harvest", nil, nil)
		p.stripe.FailNext("POST", "/v1/payment_intents", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/cells-ready",
			map[string]any{"cell_count": 150_000_000, "viability_pct": 90, "sterility": "pass", "endotoxin": "pass"}, nil)
		var balanceIntent string
		eventually(t, "the retried balance charge to be recorded", func() bool {
			for _, pay := range list(p.call(t, "GET", "/v1/bookings/"+bookingID, nil, nil).Body["payments"]) {
				if obj(pay)["stage"] == "balance" && obj(pay)["status"] == "processing" {
					balanceIntent = fmt.Sprint(obj(pay)["payment_intent_id"])
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
		payload, sig := stripeEvent(t, "evt_bal_"+bookingID, "payment_intent.succeeded", map[string]any{
			"id": balanceIntent, "object": "payment_intent", "amount": balance, "amount_received": balance, "currency": "jpy", "status": "succeeded"})
		p.webhook(t, payload, sig)
		p.waitForStatus(t, bookingID, "ready_for_administration")
	})

	t.Run("a card that needs authentication leaves the balance awaiting the patient", func(t *testing.T) {
		bookingID, _, balance := p.bookConfirmed(t, "Sato Hana")
		p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/harvest", nil, nil)
		p.stripe.FailNext("POST", "/v1/payment_intents", 402, devstack.StripeError{Type: "card_error",
			Code: "authentication_required", DeclineCode: "authentication_required", Message: "This payment requires authentication."})
		p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/cells-ready",
			map[string]any{"cell_count": 101_000_000, "viability_pct": 88, "sterility": "pass", "endotoxin": "pass"}, nil)
		var b response
		eventually(t, "the booking to record the failed balance", func() bool {
			b = p.call(t, "GET", "/v1/bookings/"+bookingID, nil, nil)
			return strings.HasPrefix(fmt.Sprint(b.Body["balance_failure"]), "authentication_required")
		})
		must(t, b.Body["status"] == "awaiting_balance", "still awaiting the balance")
		var balancePay map[string]any
		for _, pay := range list(b.Body["payments"]) {
			if obj(pay)["stage"] == "balance" {
				balancePay = obj(pay)
			}
		}
		must(t, balancePay["status"] == "requires_action" && balancePay["failure_code"] == "authentication_required", fmt.Sprintf("balance payment %v", balancePay))
		fin := p.mustCall(t, 200, "GET", "/v1/finance/bookings/"+bookingID, nil, nil).Body
		out, _ := money(fin["outstanding"])
		must(t, out == balance && fin["settled"] == false, "balance outstanding")
	})
}
