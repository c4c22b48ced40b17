package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
	pkgmoney "github.com/saisei-health/platform/pkg/money"
)

// The treatment and dose the journey books: adipose MSC for stroke in Ginza
// at 100 million cells, ¥3,000,000 in all.
const (
	treatmentID = "ginza-adipose-msc-stroke-iv"
	dose        = int64(100_000_000)
)

var patient = Patient{Name: "Kim Min-jun", Email: "minjun.kim@example.kr", Country: "KR", Language: "ko"}

// fit is a screening questionnaire that passes every rule.
var fit = Screening{DiagnosisConfirmed: ptr(true), SevereOrganDisease: ptr(false), CanTravel: ptr(true)}

func TestPatientJourneyFromQuoteToAdministration(t *testing.T) {
	p := startPlatform(t)

	// 1. The patient finds the treatment.
	found := p.SearchTreatments(t, "condition=stroke&city=tokyo").Expect(t, 200)
	i := slices.IndexFunc(found.Value.Items, func(tr Treatment) bool { return tr.ID == treatmentID })
	if i < 0 {
		t.Fatalf("%s is not among Tokyo stroke treatments: %s", treatmentID, found.Raw)
	}
	tr := found.Value.Items[i]
	if tr.Clinic.City != "tokyo" || tr.PlanNumber == "" || tr.RiskClass != "II" || !tr.Bookable {
		t.Fatalf("treatment = %+v", tr)
	}
	inJPY := func(name string, m Money) int64 { must(t, m.Currency == "JPY", name+" in JPY"); return m.Amount }
	var culture, listed int64
	for _, d := range tr.DoseOptions {
		if d.Cells == dose {
			culture, listed = d.Culture.Amount, d.Price.Amount
		}
	}
	sessions := int64(tr.Sessions)
	preAdministration := inJPY("consultation", tr.Prices.Consultation) + inJPY("harvest", tr.Prices.Harvest) + culture +
		inJPY("quality_testing", tr.Prices.QualityTesting)
	administration := inJPY("administration_per_session", tr.Prices.AdministrationPerSession) * sessions
	must(t, listed == 3_000_000 && preAdministration+administration == listed, fmt.Sprintf("listed ¥%d", listed))
	extraPrice := map[string]int64{}
	for _, e := range tr.Clinic.Extras {
		extraPrice[e.Code] = e.Price.Amount
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
	quote := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "usd", Patient: patient, Screening: &fit,
		Extras: []ExtraRequest{{Code: "hotel", Nights: ptr(5)}, {Code: "interpreter", Days: ptr(2)}}})
	q := quote.Value
	must(t, q.Deposit != nil && q.Balance != nil, fmt.Sprintf("a bookable quote has a deposit and a balance: %s", quote.Raw))
	total, deposit, balance, subtotal, tax := q.Total.Amount, q.Deposit.Amount, q.Balance.Amount, q.Subtotal.Amount, q.Tax.Amount
	must(t, q.Status == "issued" && q.Total.Currency == "JPY" && q.Eligibility.Status == "eligible" && q.Version == 1,
		fmt.Sprintf("quote issued in JPY, eligible, version 1: %s", quote.Raw))
	must(t, subtotal == wantSubtotal && tax == wantTax && total == wantTotal && deposit == wantDeposit && balance == wantBalance &&
		total == deposit+balance, fmt.Sprintf("quote subtotal ¥%d tax ¥%d total ¥%d deposit ¥%d balance ¥%d; want %d %d %d %d %d",
		subtotal, tax, total, deposit, balance, wantSubtotal, wantTax, wantTotal, wantDeposit, wantBalance))
	var sum int64
	codes := map[string]bool{}
	for _, l := range q.Lines {
		must(t, l.Amount.Currency == "JPY" && l.Code != "" && l.Description != "", "line is coded and in JPY")
		codes[l.Code] = true
		sum += l.Amount.Amount
	}
	must(t, sum == total, fmt.Sprintf("lines (tax included) sum to ¥%d, total ¥%d", sum, total))
	for _, c := range []string{"consultation", "harvest", "cell_culture", "quality_testing", "administration", "hotel", "interpreter", "consumption_tax"} {
		must(t, codes[c], "line "+c)
	}
	// The patient reads Korean: the quote is emailed in Korean, yen written 엔,
	// with its validity.
	won := func(n int64) string { return strings.TrimPrefix(pkgmoney.Yen(n).Format(), "¥") + "엔" }
	quoteMail := p.waitForMail(t, patient.Email, "견적서")
	must(t, strings.Contains(quoteMail.Text, won(total)) && strings.Contains(quoteMail.Text, won(deposit)) &&
		strings.Contains(quoteMail.Text, "까지 유효합니다") && strings.Contains(quoteMail.Text, q.ID),
		"the quote email states the amounts, validity and reference:\n"+quoteMail.Text)
	rate, err := pkgmoney.ParseRate(pkgmoney.USD, pkgmoney.JPY, q.FX.Rate)
	if err != nil {
		t.Fatal(err)
	}
	wantDisplay, _ := rate.Convert(pkgmoney.Yen(total))
	must(t, q.DisplayTotal.Currency == "USD" && q.DisplayTotal.Amount == wantDisplay.Amount,
		fmt.Sprintf("display total %+v, want %v", q.DisplayTotal, wantDisplay))
	must(t, q.ValidUntil.After(time.Now().Add(13*24*time.Hour)), "valid for about two weeks")
	quoteID := q.ID
	p.Quote(t, quoteID).Expect(t, 200)

	clinic := p.subscribeClinic(t, tr.Clinic.ID)

	// 3. Booking, with an Idempotency-Key: a retry gets the same booking.
	noKey := p.Book(t, quoteID, "").Expect(t, 400)
	must(t, noKey.Problem.Mentions("Idempotency-Key") && noKey.Header.Get("Content-Type") == "application/problem+json", "missing key named")
	key := "journey-" + quoteID
	created := p.Book(t, quoteID, key).Expect(t, 201)
	bookingID := created.Value.ID
	dep := created.Value.Deposit
	depositIntent := dep.PaymentIntentID
	must(t, created.Value.Status == "awaiting_deposit", "awaiting deposit")
	must(t, dep.Amount == yen(deposit), fmt.Sprintf("deposit %+v", dep.Amount))
	must(t, strings.HasPrefix(depositIntent, "pi_") && dep.ClientSecret != "", "deposit intent with client secret")
	again := p.Book(t, quoteID, key).Expect(t, 201)
	must(t, again.Value.ID == bookingID && again.Value.Deposit.PaymentIntentID == depositIntent &&
		again.Header.Get("Idempotent-Replayed") == "true", "same key, same booking and intent")
	other := p.Book(t, quoteID, "another-key").Expect(t, 409)
	must(t, other.Problem.Slug() == "quote-already-booked", "a quote is booked once")

	// Stripe was asked for a customer and a deposit intent that saves the card.
	reqs := p.stripe.Requests()
	cust, ok := findRequest(reqs, "POST", "/v1/customers", "booking:"+bookingID+":customer")
	must(t, ok && cust.Form.Get("email") == patient.Email, "customer created with the patient's email")
	pi, ok := findRequest(reqs, "POST", "/v1/payment_intents", "booking:"+bookingID+":deposit")
	must(t, ok, "deposit intent created with a deterministic idempotency key")
	must(t, pi.Form.Get("amount") == fmt.Sprint(deposit) && pi.Form.Get("currency") == "jpy" &&
		pi.Form.Get("setup_future_usage") == "off_session" && pi.Form.Get("customer") != "" &&
		pi.Form.Get("metadata[booking_id]") == bookingID && pi.StripeVersion == "2023-10-16",
		fmt.Sprintf("deposit intent form %v", pi.Form))
	customerID := pi.Form.Get("customer")

	// 4. Stripe reports the deposit paid; the card is saved for the balance.
	const savedCard = "pm_1SavedVisa4242"
	depositPaid := paymentIntent{ID: depositIntent, Amount: deposit, AmountReceived: deposit, Currency: "jpy", Status: "succeeded",
		Customer: customerID, PaymentMethod: savedCard, Metadata: map[string]string{"booking_id": bookingID}}
	payload, sig := stripeEvent(t, "evt_deposit_1", "payment_intent.succeeded", depositPaid)
	forged := p.StripeWebhook(t, payload, strings.Replace(sig, "v1=", "v1=00", 1))
	must(t, forged.Status == 400 && forged.Problem.Slug() == "invalid-signature", "forged signature refused")
	must(t, p.StripeWebhook(t, payload, sig).Value.Outcome == "applied", "deposit webhook applied")
	confirmed := p.waitForStatus(t, bookingID, "confirmed")
	// Stripe delivers the same event again: nothing changes.
	must(t, p.StripeWebhook(t, payload, sig).Value.Outcome == "duplicate", "duplicate webhook recognised")
	pays := confirmed.Value.Payments
	must(t, len(pays) == 1 && pays[0].Stage == "deposit" && pays[0].Status == "succeeded" &&
		pays[0].PaymentIntentID == depositIntent, fmt.Sprintf("payments after deposit: %+v", pays))

	devtest.Eventually(t, "the clinic to be told of the confirmed booking", func() bool {
		return slices.Contains(clinic.kindsFor(bookingID), notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED)
	})
	// The booking emails are in Korean too.
	confirmMail := p.waitForMail(t, patient.Email, "예약이 확정되었습니다")
	must(t, strings.Contains(confirmMail.Text, won(deposit)) && strings.Contains(confirmMail.Text, won(balance)) &&
		strings.Contains(confirmMail.HTML, won(deposit)) && confirmMail.Headers["Content-Language"] == "ko",
		"confirmation states deposit and balance, in Korean, text and HTML:\n"+confirmMail.Text)

	// 5. The clinic harvests and cultures the cells; they pass QC.
	p.ReportHarvest(t, bookingID).Expect(t, 200)
	p.waitForStatus(t, bookingID, "culturing")
	early := p.ReportAdministered(t, bookingID).Expect(t, 409)
	must(t, early.Problem.Slug() == "invalid-transition", "cannot administer while culturing")
	bad := p.ReportCellsReady(t, bookingID, CellsReport{CellCount: 120_000_000, ViabilityPct: 101, Sterility: "pass", Endotoxin: "ok"}).Expect(t, 422)
	must(t, bad.Problem.Names("viability_pct") && bad.Problem.Names("endotoxin"), "bad QC fields named")
	ready := p.ReportCellsReady(t, bookingID, CellsReport{CellCount: 112_000_000, ViabilityPct: 94.5, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
	must(t, ready.Value.Status == "awaiting_balance", "awaiting balance after passing QC")

	// 6. Payment charges the balance off-session on the saved card.
	var balanceReq devstack.StripeRequest
	devtest.Eventually(t, "the balance charge", func() bool {
		balanceReq, ok = findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+bookingID+":balance")
		return ok
	})
	must(t, balanceReq.Form.Get("amount") == fmt.Sprint(balance) && balanceReq.Form.Get("currency") == "jpy" &&
		balanceReq.Form.Get("off_session") == "true" && balanceReq.Form.Get("confirm") == "true" &&
		balanceReq.Form.Get("payment_method") == savedCard && balanceReq.Form.Get("customer") == customerID,
		fmt.Sprintf("balance charged off-session with the deposit's card: %v", balanceReq.Form))
	var balanceIntent string
	devtest.Eventually(t, "the balance payment to be recorded", func() bool {
		b := p.Booking(t, bookingID)
		if b.Status != 200 {
			return false
		}
		for _, pay := range b.Value.Payments {
			if pay.Stage == "balance" && pay.PaymentIntentID != "" {
				balanceIntent = pay.PaymentIntentID
				return pay.OffSession
			}
		}
		return false
	})
	balancePaid := paymentIntent{ID: balanceIntent, Amount: balance, AmountReceived: balance, Currency: "jpy", Status: "succeeded",
		Customer: customerID, PaymentMethod: savedCard}
	payload, sig = stripeEvent(t, "evt_balance_1", "payment_intent.succeeded", balancePaid)
	must(t, p.StripeWebhook(t, payload, sig).Value.Outcome == "applied", "balance webhook applied")
	p.waitForStatus(t, bookingID, "ready_for_administration")
	must(t, p.StripeWebhook(t, payload, sig).Value.Outcome == "duplicate", "duplicate balance webhook recognised")
	balanceMail := p.waitForMail(t, patient.Email, "잔금")
	must(t, strings.Contains(balanceMail.Subject, won(balance)), "balance email states the amount: "+balanceMail.Subject)

	// 7. The cells are administered.
	done := p.ReportAdministered(t, bookingID).Expect(t, 200)
	must(t, done.Value.Status == "administered", "administered")
	final := p.waitForStatus(t, bookingID, "administered")
	var path []string
	for _, h := range final.Value.History {
		path = append(path, h.To)
	}
	must(t, slices.Equal(path, []string{"awaiting_deposit", "confirmed", "culturing", "awaiting_balance", "ready_for_administration", "administered"}),
		fmt.Sprintf("history %v", path))

	// 8. Finance: every yen expected was received, once.
	fin := p.Finance(t, bookingID).Expect(t, 200).Value
	must(t, fin.Expected == yen(total) && fin.Received == yen(total) && fin.Outstanding == yen(0) && fin.Settled &&
		fin.Deposit.Received == yen(deposit) && fin.Balance.Received == yen(balance), fmt.Sprintf("finance %+v", fin))

	p.waitForMail(t, patient.Email, "치료가 완료되었습니다")

	// 9. Exactly once: three notices to the clinic, four emails to the patient
	// (the quote, confirmed, balance charged, administered with the follow-up
	// visits).
	devtest.Eventually(t, "the clinic's three notices", func() bool { return len(clinic.kindsFor(bookingID)) >= 3 })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	must(t, slices.Equal(clinic.kindsFor(bookingID), []notificationv1.NoticeKind{
		notificationv1.NoticeKind_NOTICE_KIND_BOOKING_CONFIRMED,
		notificationv1.NoticeKind_NOTICE_KIND_READY_FOR_ADMINISTRATION,
		notificationv1.NoticeKind_NOTICE_KIND_ADMINISTERED,
	}), fmt.Sprintf("clinic notices %v", clinic.kindsFor(bookingID)))
	var mails int
	for _, m := range p.mail.Messages() {
		if slices.Contains(m.To, patient.Email) {
			mails++
		}
	}
	must(t, mails == 4, fmt.Sprintf("%d emails to the patient, want 4", mails))

	// 10. One trace: the booking's spans from every service share its id.
	p.assertOneTrace(t, bookingID)

	// 11. The events went where the subject map says they go.
	p.assertSubjectsAgree(t)

	// 12. No span anywhere carries the patient's name, email or answers.
	p.assertNoPersonalDataInSpans(t, patient.Name, patient.Email, "diagnosis_confirmed", "severe_organ_disease", "can_travel")
}

// issueWhenKnown issues the quote once quoting answers 201: quoting learns
// the catalog from events, so right after start-up it may need a moment.
func (p *platform) issueWhenKnown(t *testing.T, req QuoteRequest) Result[Quote] {
	t.Helper()
	var q Result[Quote]
	devtest.Eventually(t, "quoting to issue a quote for "+req.TreatmentID, func() bool {
		q = p.IssueQuote(t, req)
		return q.Status == 201
	})
	return q
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
	devtest.Eventually(t, "an email to "+to+" about "+subjectPart, func() bool {
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
