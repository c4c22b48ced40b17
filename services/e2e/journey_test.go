package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	pkgmoney "github.com/saisei-health/platform/pkg/money"
)

// The treatment and dose the journey books: adipose MSC for stroke in Ginza
// at 100 million cells, ¥3,000,000 in all.
const (
	treatmentID = "ginza-adipose-msc-stroke-iv"
	dose        = int64(100_000_000)
)

var patient = map[string]any{"name": "Kim Min-jun", "email": "minjun.kim@example.kr", "country": "KR", "language": "ko"}

// fit is a screening questionnaire that passes every rule.
var fit = map[string]any{"diagnosis_confirmed": true, "cancer_free_years": nil, "severe_organ_disease": false, "can_travel": true}

func TestPatientJourneyFromQuoteToAdministration(t *testing.T) {
	p := startPlatform(t)

	// 1. The patient finds the treatment.
	found := p.mustCall(t, 200, "GET", "/v1/treatments?condition=stroke&city=tokyo", nil, nil)
	var tr map[string]any
	for _, item := range list(found.Body["items"]) {
		if obj(item)["id"] == treatmentID {
			tr = obj(item)
		}
	}
	if tr == nil {
		t.Fatalf("%s is not among Tokyo stroke treatments: %s", treatmentID, found.Raw)
	}
	if obj(tr["clinic"])["city"] != "tokyo" || tr["plan_number"] == "" || tr["risk_class"] != "II" || tr["bookable"] != true {
		t.Fatalf("treatment = %v", tr)
	}
	prices := obj(tr["prices"])
	amount := func(key string) int64 { a, c := money(prices[key]); must(t, c == "JPY", key+" in JPY"); return a }
	var culture, listed int64
	for _, d := range list(tr["dose_options"]) {
		if num(obj(d)["cells"]) == dose {
			culture, _ = money(obj(d)["culture"])
			listed, _ = money(obj(d)["price"])
		}
	}
	sessions := num(tr["sessions"])
	preAdministration := amount("consultation") + amount("harvest") + culture + amount("quality_testing")
	administration := amount("administration_per_session") * sessions
	must(t, listed == 3_000_000 && preAdministration+administration == listed, fmt.Sprintf("listed ¥%d", listed))
	extraPrice := map[string]int64{}
	for _, e := range list(obj(tr["clinic"])["extras"]) {
		extraPrice[fmt.Sprint(obj(e)["code"])], _ = money(obj(e)["price"])
	}
	must(t, extraPrice["hotel"] > 0 && extraPrice["interpreter"] > 0, "the clinic prices its extras")

	// Every price is before tax; consumption tax (10%) is added once on the
	// taxable lines, rounded down. The deposit is what is spent before
	// administration, with its tax; extras go with the balance.
	extras := 5*extraPrice["hotel"] + 2*extraPrice["interpreter"]
	wantSubtotal := listed + extras
	wantTax := wantSubtotal / 10
	wantTotal := wantSubtotal + wantTax
	wantDeposit := preAdministration + preAdministration/10
	wantBalance := wantTotal - wantDeposit

	// 2. A quote, displayed in US dollars, with a screening and extras.
	// Quoting learns the catalog from events, so right after start-up it may
	// need a moment.
	var quote response
	eventually(t, "quoting to know the catalog", func() bool {
		quote = p.call(t, "POST", "/v1/quotes", map[string]any{"treatment_id": treatmentID, "dose_cells": dose, "currency": "usd",
			"patient": patient, "screening": fit,
			"extras": []any{map[string]any{"code": "hotel", "nights": 5}, map[string]any{"code": "interpreter", "days": 2}}}, nil)
		return quote.Status == 201
	})
	q := quote.Body
	total, cur := money(q["total"])
	deposit, _ := money(q["deposit"])
	balance, _ := money(q["balance"])
	subtotal, _ := money(q["subtotal"])
	tax, _ := money(q["tax"])
	must(t, q["status"] == "issued" && cur == "JPY" && obj(q["eligibility"])["status"] == "eligible" && q["version"] == json.Number("1"),
		fmt.Sprintf("quote issued in JPY, eligible, version 1: %s", quote.Raw))
	must(t, subtotal == wantSubtotal && tax == wantTax && total == wantTotal && deposit == wantDeposit && balance == wantBalance &&
		total == deposit+balance, fmt.Sprintf("quote subtotal ¥%d tax ¥%d total ¥%d deposit ¥%d balance ¥%d; want %d %d %d %d %d",
		subtotal, tax, total, deposit, balance, wantSubtotal, wantTax, wantTotal, wantDeposit, wantBalance))
	var sum int64
	codes := map[string]bool{}
	for _, l := range list(q["lines"]) {
		a, c := money(obj(l)["amount"])
		must(t, c == "JPY" && obj(l)["code"] != "" && obj(l)["description"] != "", "line is coded and in JPY")
		codes[fmt.Sprint(obj(l)["code"])] = true
		sum += a
	}
	must(t, sum == total, fmt.Sprintf("lines (tax included) sum to ¥%d, total ¥%d", sum, total))
	for _, c := range []string{"consultation", "harvest", "cell_culture", "quality_testing", "administration", "hotel", "interpreter", "consumption_tax"} {
		must(t, codes[c], "line "+c)
	}
	fx := obj(q["fx"])
	rate, err := pkgmoney.ParseRate(pkgmoney.USD, pkgmoney.JPY, fmt.Sprint(fx["rate"]))
	if err != nil {
		t.Fatal(err)
	}
	wantDisplay, _ := rate.Convert(pkgmoney.Yen(total))
	display, displayCur := money(q["display_total"])
	must(t, displayCur == "USD" && display == wantDisplay.Amount, fmt.Sprintf("display total %d %s, want %v", display, displayCur, wantDisplay))
	validUntil, _ := time.Parse(time.RFC3339, fmt.Sprint(q["valid_until"]))
	must(t, validUntil.After(time.Now().Add(13*24*time.Hour)), "valid for about two weeks")
	quoteID := fmt.Sprint(q["id"])
	p.mustCall(t, 200, "GET", "/v1/quotes/"+quoteID, nil, nil)

	clinicID := fmt.Sprint(obj(tr["clinic"])["id"])
	clinic := p.subscribeClinic(t, clinicID)

	// 3. Booking, with an Idempotency-Key: a retry gets the same booking.
	noKey := p.mustCall(t, 400, "POST", "/v1/bookings", map[string]any{"quote_id": quoteID}, nil)
	must(t, strings.Contains(string(noKey.Raw), "Idempotency-Key") && noKey.Header.Get("Content-Type") == "application/problem+json", "missing key named")
	key := map[string]string{"Idempotency-Key": "journey-" + quoteID}
	created := p.mustCall(t, 201, "POST", "/v1/bookings", map[string]any{"quote_id": quoteID}, key)
	bookingID := fmt.Sprint(created.Body["id"])
	dep := obj(created.Body["deposit"])
	depAmount, depCur := money(dep["amount"])
	depositIntent := fmt.Sprint(dep["payment_intent_id"])
	must(t, created.Body["status"] == "awaiting_deposit", "awaiting deposit")
	must(t, depAmount == deposit && depCur == "JPY", fmt.Sprintf("deposit ¥%d", depAmount))
	must(t, strings.HasPrefix(depositIntent, "pi_") && dep["client_secret"] != "", "deposit intent with client secret")
	again := p.mustCall(t, 201, "POST", "/v1/bookings", map[string]any{"quote_id": quoteID}, key)
	must(t, again.Body["id"] == bookingID && obj(again.Body["deposit"])["payment_intent_id"] == depositIntent &&
		again.Header.Get("Idempotent-Replayed") == "true", "same key, same booking and intent")
	other := p.mustCall(t, 409, "POST", "/v1/bookings", map[string]any{"quote_id": quoteID}, map[string]string{"Idempotency-Key": "another-key"})
	must(t, strings.HasSuffix(fmt.Sprint(other.Body["type"]), "/quote-already-booked"), "a quote is booked once")

	// Stripe was asked for a customer and a deposit intent that saves the card.
	reqs := p.stripe.Requests()
	cust, ok := findRequest(reqs, "POST", "/v1/customers", "booking:"+bookingID+":customer")
	must(t, ok && cust.Form.Get("email") == patient["email"], "customer created with the patient's email")
	pi, ok := findRequest(reqs, "POST", "/v1/payment_intents", "booking:"+bookingID+":deposit")
	must(t, ok, "deposit intent created with a deterministic idempotency key")
	must(t, pi.Form.Get("amount") == fmt.Sprint(deposit) && pi.Form.Get("currency") == "jpy" &&
		pi.Form.Get("setup_future_usage") == "off_session" && pi.Form.Get("customer") != "" &&
		pi.Form.Get("metadata[booking_id]") == bookingID && pi.StripeVersion == "2023-10-16",
		fmt.Sprintf("deposit intent form %v", pi.Form))
	customerID := pi.Form.Get("customer")

	// 4. Stripe reports the deposit paid; the card is saved for the balance.
	const savedCard = "pm_1SavedVisa4242"
	depositPaid := map[string]any{"id": depositIntent, "object": "payment_intent", "amount": deposit, "amount_received": deposit,
		"currency": "jpy", "status": "succeeded", "customer": customerID, "payment_method": savedCard,
		"metadata": map[string]any{"booking_id": bookingID}}
	payload, sig := stripeEvent(t, "evt_deposit_1", "payment_intent.succeeded", depositPaid)
	forged := p.webhook(t, payload, strings.Replace(sig, "v1=", "v1=00", 1))
	must(t, forged.Status == 400 && strings.HasSuffix(fmt.Sprint(forged.Body["type"]), "/invalid-signature"), "forged signature refused")
	must(t, p.webhook(t, payload, sig).Body["outcome"] == "applied", "deposit webhook applied")
	confirmed := p.waitForStatus(t, bookingID, "confirmed")
	// Stripe delivers the same event again: nothing changes.
	must(t, p.webhook(t, payload, sig).Body["outcome"] == "duplicate", "duplicate webhook recognised")
	pays := list(confirmed.Body["payments"])
	must(t, len(pays) == 1 && obj(pays[0])["stage"] == "deposit" && obj(pays[0])["status"] == "succeeded" &&
		obj(pays[0])["payment_intent_id"] == depositIntent, fmt.Sprintf("payments after deposit: %v", pays))

	eventually(t, "the clinic to be told of the confirmed booking", func() bool {
		return slices.Contains(clinic.kindsFor(bookingID), notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
	})
	confirmMail := p.waitForMail(t, patient["email"].(string), "is confirmed")
	must(t, strings.Contains(confirmMail.Text, pkgmoney.Yen(deposit).Format()) && strings.Contains(confirmMail.Text, pkgmoney.Yen(balance).Format()),
		"confirmation states deposit and balance:\n"+confirmMail.Text)

	// 5. The clinic harvests and cultures the cells; they pass QC.
	p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/harvest", nil, nil)
	p.waitForStatus(t, bookingID, "culturing")
	early := p.mustCall(t, 409, "POST", "/v1/clinic/bookings/"+bookingID+"/administered", nil, nil)
	must(t, strings.HasSuffix(fmt.Sprint(early.Body["type"]), "/invalid-transition"), "cannot administer while culturing")
	bad := p.mustCall(t, 422, "POST", "/v1/clinic/bookings/"+bookingID+"/cells-ready",
		map[string]any{"cell_count": 120_000_000, "viability_pct": 101, "sterility": "pass", "endotoxin": "ok"}, nil)
	must(t, strings.Contains(string(bad.Raw), `"viability_pct"`) && strings.Contains(string(bad.Raw), `"endotoxin"`), "bad QC fields named")
	ready := p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/cells-ready",
		map[string]any{"cell_count": 112_000_000, "viability_pct": 94.5, "sterility": "pass", "endotoxin": "pass"}, nil)
	must(t, ready.Body["status"] == "awaiting_balance", "awaiting balance after passing QC")

	// 6. Payment charges the balance off-session on the saved card.
	var balanceReq devstack.StripeRequest
	eventually(t, "the balance charge", func() bool {
		balanceReq, ok = findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+bookingID+":balance")
		return ok
	})
	must(t, balanceReq.Form.Get("amount") == fmt.Sprint(balance) && balanceReq.Form.Get("currency") == "jpy" &&
		balanceReq.Form.Get("off_session") == "true" && balanceReq.Form.Get("confirm") == "true" &&
		balanceReq.Form.Get("payment_method") == savedCard && balanceReq.Form.Get("customer") == customerID,
		fmt.Sprintf("balance charged off-session with the deposit's card: %v", balanceReq.Form))
	var balanceIntent string
	eventually(t, "the balance payment to be recorded", func() bool {
		for _, pay := range list(p.call(t, "GET", "/v1/bookings/"+bookingID, nil, nil).Body["payments"]) {
			if obj(pay)["stage"] == "balance" && obj(pay)["payment_intent_id"] != "" {
				balanceIntent = fmt.Sprint(obj(pay)["payment_intent_id"])
				return obj(pay)["off_session"] == true
			}
		}
		return false
	})
	balancePaid := map[string]any{"id": balanceIntent, "object": "payment_intent", "amount": balance, "amount_received": balance,
		"currency": "jpy", "status": "succeeded", "customer": customerID, "payment_method": savedCard}
	payload, sig = stripeEvent(t, "evt_balance_1", "payment_intent.succeeded", balancePaid)
	must(t, p.webhook(t, payload, sig).Body["outcome"] == "applied", "balance webhook applied")
	p.waitForStatus(t, bookingID, "ready_for_administration")
	must(t, p.webhook(t, payload, sig).Body["outcome"] == "duplicate", "duplicate balance webhook recognised")
	balanceMail := p.waitForMail(t, patient["email"].(string), "Balance of")
	must(t, strings.Contains(balanceMail.Subject, pkgmoney.Yen(balance).Format()), "balance email states the amount: "+balanceMail.Subject)

	// 7. The cells are administered.
	done := p.mustCall(t, 200, "POST", "/v1/clinic/bookings/"+bookingID+"/administered", nil, nil)
	must(t, done.Body["status"] == "administered", "administered")
	final := p.waitForStatus(t, bookingID, "administered")
	var path []string
	for _, h := range list(final.Body["history"]) {
		path = append(path, fmt.Sprint(obj(h)["to"]))
	}
	must(t, slices.Equal(path, []string{"awaiting_deposit", "confirmed", "culturing", "awaiting_balance", "ready_for_administration", "administered"}),
		fmt.Sprintf("history %v", path))

	// 8. Finance: every yen expected was received, once.
	fin := p.mustCall(t, 200, "GET", "/v1/finance/bookings/"+bookingID, nil, nil).Body
	exp, _ := money(fin["expected"])
	rec, _ := money(fin["received"])
	out, _ := money(fin["outstanding"])
	dRec, _ := money(obj(fin["deposit"])["received"])
	bRec, _ := money(obj(fin["balance"])["received"])
	must(t, exp == total && rec == total && out == 0 && fin["settled"] == true && dRec == deposit && bRec == balance,
		fmt.Sprintf("finance %v", fin))

	// 9. Exactly once: three notices to the clinic, two emails to the patient.
	eventually(t, "the clinic's three notices", func() bool { return len(clinic.kindsFor(bookingID)) >= 3 })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	must(t, slices.Equal(clinic.kindsFor(bookingID), []notificationv1.NoticeKind{
		notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED,
		notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION,
		notificationv1.NoticeKind_NOTICE_KIND_ADMINISTERED,
	}), fmt.Sprintf("clinic notices %v", clinic.kindsFor(bookingID)))
	var mails int
	for _, m := range p.mail.Messages() {
		if slices.Contains(m.To, patient["email"].(string)) {
			mails++
		}
	}
	must(t, mails == 2, fmt.Sprintf("%d emails to the patient, want 2", mails))

	// 10. One trace: the booking's spans from every service share its id.
	p.assertOneTrace(t, bookingID)

	// 11. The events went where the subject map says they go.
	p.assertSubjectsAgree(t)
}

func must(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Fatalf("expected: %s", what)
	}
}

func (p *platform) waitForMail(t *testing.T, to, subjectPart string) devstack.Mail {
	t.Helper()
	var found devstack.Mail
	eventually(t, "an email to "+to+" about "+subjectPart, func() bool {
		for _, m := range p.mail.Messages() {
			if slices.Contains(m.To, to) && strings.Contains(m.Subject, subjectPart) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}
