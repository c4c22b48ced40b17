package e2e

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/notificationv1"
)

// refundsAsked are the refunds payment asked Stripe for on a booking, by amount.
func (p *platform) refundsAsked(bookingID string) []string {
	var out []string
	for _, r := range p.stripe.Requests() {
		if r.Method == "POST" && r.Path == "/v1/refunds" && strings.HasPrefix(r.IdempotencyKey, "booking:"+bookingID+":refund:") {
			out = append(out, r.Form.Get("amount")+"@"+r.Form.Get("payment_intent"))
		}
	}
	return out
}

// refunded is what the ledger says went back to the booking's patient.
func (p *platform) refunded(t *testing.T, bookingID string) int64 {
	t.Helper()
	r := p.call(t, "GET", "/v1/finance/ledger?account=booking:"+bookingID+":refunded", nil, nil)
	var page struct {
		Totals []struct {
			Balance Money `json:"balance"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(r.Raw, &page); err != nil || r.Status != 200 {
		t.Fatalf("ledger: %d %s", r.Status, r.Raw)
	}
	if len(page.Totals) == 0 {
		return 0
	}
	return page.Totals[0].Balance.Amount
}

// paidBalance walks a confirmed booking through harvest and a passing QC,
// and has Stripe report its balance paid.
func (p *platform) paidBalance(t *testing.T, bookingID string, balance int64) {
	t.Helper()
	p.ReportHarvest(t, bookingID).Expect(t, 200)
	p.ReportCellsReady(t, bookingID, CellsReport{CellCount: 112_000_000, ViabilityPct: 94.5, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
	var intent string
	devtest.Eventually(t, "the balance charge", func() bool {
		for _, pay := range p.Booking(t, bookingID).Value.Payments {
			if pay.Stage == "balance" && pay.PaymentIntentID != "" {
				intent = pay.PaymentIntentID
				return true
			}
		}
		return false
	})
	payload, sig := stripeEvent(t, "evt_bal_"+bookingID, "payment_intent.succeeded", paymentIntent{ID: intent, Amount: balance,
		AmountReceived: balance, Currency: "jpy", Status: "succeeded"})
	p.StripeWebhook(t, payload, sig)
	p.waitForStatus(t, bookingID, "ready_for_administration")
}

// Every point at which a booking can end before administration, through
// the gateway: the answer states what is refunded and why, payment asks
// Stripe for exactly that, once, and the ledger records it.
func TestEachCancellationPointRefundsWhatThePolicySays(t *testing.T) {
	p := startPlatform(t)
	quoted := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
	terms := quoted.Value.CancellationTerms
	if terms == nil || terms.PolicyVersion < 1 || terms.CancellationFee.Amount != 100_000 || terms.ConsultationFee.Amount <= 0 ||
		terms.CultureCost.Amount != quoted.Value.Deposit.Amount {
		t.Fatalf("the quote's cancellation terms: %s", quoted.Raw)
	}
	expectRefund := func(t *testing.T, bookingID string, amount int64) {
		t.Helper()
		devtest.Eventually(t, "the refund in the ledger", func() bool { return p.refunded(t, bookingID) == amount })
		var total int64
		for _, r := range p.refundsAsked(bookingID) {
			n, err := strconv.ParseInt(strings.Split(r, "@")[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total != amount {
			t.Fatalf("Stripe was asked to refund %v, want ¥%d in all", p.refundsAsked(bookingID), amount)
		}
	}

	t.Run("before the deposit: nothing was charged, nothing is refunded", func(t *testing.T) {
		q := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
		b := p.Book(t, q.Value.ID, uuid.NewString()).Expect(t, 201)
		c := p.CancelBooking(t, b.Value.ID).Expect(t, 200).Value
		if c.Status != "cancelled" || c.Cancellation == nil || c.Cancellation.Refund.Amount != 0 || c.Cancellation.Reason != "patient" {
			t.Fatalf("cancelled: %+v", c)
		}
		if again := p.CancelBooking(t, b.Value.ID).Expect(t, 409); again.Problem.Slug() != "invalid-transition" {
			t.Fatalf("cancelling twice: %s", again.Raw)
		}
		if n := len(p.refundsAsked(b.Value.ID)); n != 0 {
			t.Fatalf("%d refunds for a booking that paid nothing", n)
		}
	})

	t.Run("before the harvest: the deposit less the clinic's cancellation fee", func(t *testing.T) {
		id, deposit, _ := p.bookConfirmed(t, "Lee Ji-woo")
		c := p.CancelBooking(t, id).Expect(t, 200).Value
		want := deposit - 100_000
		if c.Cancellation.Refund.Amount != want || c.Cancellation.Retained.Amount != 100_000 ||
			!strings.Contains(c.Cancellation.Explanation, "¥100,000") || c.CancellationTerms.PolicyVersion != terms.PolicyVersion {
			t.Fatalf("cancellation %+v under terms %+v", c.Cancellation, c.CancellationTerms)
		}
		expectRefund(t, id, want)
		if f := p.Finance(t, id).Expect(t, 200).Value; f.Balance.Status != "cancelled" {
			t.Fatalf("the balance of a cancelled booking: %+v", f.Balance)
		}
	})

	t.Run("found ineligible at the consultation: the deposit less the consultation", func(t *testing.T) {
		id, deposit, _ := p.bookConfirmed(t, "Park Seo-yeon")
		if r := p.FindIneligible(t, id, "").Expect(t, 422); !r.Problem.Names("reason") {
			t.Fatalf("without a reason: %s", r.Raw)
		}
		c := p.FindIneligible(t, id, "Uncontrolled hypertension found at the examination").Expect(t, 200).Value
		want := deposit - terms.ConsultationFee.Amount
		if c.Status != "cancelled" || c.Cancellation.Reason != "ineligible" || c.Cancellation.Refund.Amount != want ||
			c.Cancellation.ClinicNote == "" {
			t.Fatalf("cancellation %+v", c.Cancellation)
		}
		expectRefund(t, id, want)
	})

	t.Run("after the balance was paid: the culture is kept, the rest refunded", func(t *testing.T) {
		id, deposit, balance := p.bookConfirmed(t, "Choi Min-ho")
		p.paidBalance(t, id, balance)
		c := p.CancelBooking(t, id).Expect(t, 200).Value
		want := deposit + balance - terms.CultureCost.Amount
		if c.Cancellation.Refund.Amount != want || c.Cancellation.Retained.Amount != terms.CultureCost.Amount {
			t.Fatalf("cancellation %+v", c.Cancellation)
		}
		expectRefund(t, id, want)
	})

	t.Run("the cells failed QC: everything paid comes back", func(t *testing.T) {
		id, deposit, _ := p.bookConfirmed(t, "Jung Ha-eun")
		p.ReportHarvest(t, id).Expect(t, 200)
		p.ReportCellsReady(t, id, CellsReport{CellCount: 112_000_000, ViabilityPct: 94.5, Sterility: "fail", Endotoxin: "pass"}).Expect(t, 200)
		p.waitForStatus(t, id, "qc_failed")
		c := p.CancelBooking(t, id).Expect(t, 200).Value
		if c.Cancellation.Reason != "qc_failed" || c.Cancellation.Refund.Amount != deposit || c.Cancellation.Retained.Amount != 0 {
			t.Fatalf("cancellation %+v", c.Cancellation)
		}
		expectRefund(t, id, deposit)
	})
}

// A booking whose deposit is not paid by its deadline expires: its intent
// is cancelled at Stripe, its quote is released for the patient to book
// again, the clinic is told, and a deposit paid as the deadline passed is
// refunded in full.
func TestAnUnpaidBookingExpiresAndALateDepositIsRefunded(t *testing.T) {
	p := startPlatform(t)
	q := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
	created := p.Book(t, q.Value.ID, uuid.NewString()).Expect(t, 201).Value
	id, deposit := created.ID, created.Deposit.Amount.Amount
	if due := created.DepositDueAt.Sub(created.CreatedAt); due != 72*time.Hour {
		t.Fatalf("deposit due %v after booking, want 72h", due)
	}
	clinic := p.subscribeClinic(t, created.ClinicID)

	p.clock.Advance(72*time.Hour + time.Minute)
	expired := p.waitForStatus(t, id, "expired")
	if last := expired.Value.History[len(expired.Value.History)-1]; !strings.Contains(last.Cause, "not paid by") {
		t.Fatalf("history %+v", expired.Value.History)
	}
	devtest.Eventually(t, "the deposit intent to be cancelled", func() bool {
		_, ok := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents/"+created.Deposit.PaymentIntentID+"/cancel", "booking:"+id+":cancel-deposit")
		return ok
	})
	devtest.Eventually(t, "the clinic to be told", func() bool {
		return slices.Contains(clinic.kindsFor(id), notificationv1.NoticeKind_NOTICE_KIND_EXPIRED)
	})
	devtest.Eventually(t, "the quote to be released", func() bool { return p.Quote(t, q.Value.ID).Value.Status == "issued" })
	again := p.Book(t, q.Value.ID, uuid.NewString()).Expect(t, 201)
	if again.Value.ID == id || again.Value.Status != "awaiting_deposit" {
		t.Fatalf("booking the released quote again: %+v", again.Value.Booking)
	}

	// The patient's payment went through as the deadline passed.
	payload, sig := stripeEvent(t, "evt_late_"+id, "payment_intent.succeeded", paymentIntent{ID: created.Deposit.PaymentIntentID,
		Amount: deposit, AmountReceived: deposit, Currency: "jpy", Status: "succeeded"})
	p.StripeWebhook(t, payload, sig)
	devtest.Eventually(t, "the late deposit to be refunded", func() bool { return p.refunded(t, id) == deposit })
	if got := p.refundsAsked(id); len(got) != 1 || !strings.HasPrefix(got[0], strconv.FormatInt(deposit, 10)+"@") {
		t.Fatalf("refunds asked: %v", got)
	}
	if b := p.Booking(t, id).Value; b.Status != "expired" {
		t.Fatalf("a late deposit revived the booking: %s", b.Status)
	}
}

// After the cells fail QC the patient may choose a free second culture
// instead of the refund: the clinic is told, and the balance is owed again
// once the new cells pass.
func TestAFailedCultureCanBeRedoneForFree(t *testing.T) {
	p := startPlatform(t)
	id, _, balance := p.bookConfirmed(t, "Han Seo-jun")
	clinicID := p.Booking(t, id).Value.ClinicID
	clinic := p.subscribeClinic(t, clinicID)
	p.ReportHarvest(t, id).Expect(t, 200)
	p.ReportCellsReady(t, id, CellsReport{CellCount: 112_000_000, ViabilityPct: 62, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
	p.waitForStatus(t, id, "qc_failed")
	devtest.Eventually(t, "payment to cancel the balance", func() bool { return p.Finance(t, id).Value.Balance.Status == "cancelled" })

	again := send[Booking](p, t, "POST", "/v1/bookings/"+id+"/reculture", nil, nil).Expect(t, 200).Value
	if again.Status != "culturing" || again.QualityReport != nil {
		t.Fatalf("after choosing a re-culture: %+v", again)
	}
	devtest.Eventually(t, "the clinic to be told", func() bool {
		return slices.Contains(clinic.kindsFor(id), notificationv1.NoticeKind_NOTICE_KIND_RECULTURE)
	})
	devtest.Eventually(t, "the balance to be owed again", func() bool { return p.Finance(t, id).Value.Balance.Status == "not_started" })
	p.ReportCellsReady(t, id, CellsReport{CellCount: 118_000_000, ViabilityPct: 93, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
	devtest.Eventually(t, "the balance charge", func() bool {
		r, ok := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+id+":balance")
		return ok && r.Form.Get("amount") == strconv.FormatInt(balance, 10)
	})
	if r := send[Booking](p, t, "POST", "/v1/bookings/"+id+"/reculture", nil, nil); r.Status != 409 {
		t.Fatalf("a re-culture of cells that passed: %d %s", r.Status, r.Raw)
	}
}

// A patient may pay the deposit by Japanese bank transfer: the booking's
// answer says where to transfer it.
func TestABookingShowsWhereToTransferTheDeposit(t *testing.T) {
	p := startPlatform(t)
	q := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
	r := p.call(t, "POST", "/v1/bookings", map[string]string{"quote_id": q.Value.ID, "deposit_method": "bank_transfer"},
		map[string]string{"Idempotency-Key": uuid.NewString()})
	var created struct {
		ID      string `json:"id"`
		Deposit struct {
			BankTransfer struct {
				BankName        string `json:"bank_name"`
				AccountNumber   string `json:"account_number"`
				Reference       string `json:"reference"`
				AmountRemaining Money  `json:"amount_remaining"`
			} `json:"bank_transfer"`
		} `json:"deposit"`
	}
	if err := json.Unmarshal(r.Raw, &created); err != nil || r.Status != 201 || created.Deposit.BankTransfer.AccountNumber == "" ||
		created.Deposit.BankTransfer.Reference == "" || created.Deposit.BankTransfer.AmountRemaining != *q.Value.Deposit {
		t.Fatalf("booking by bank transfer: %d %s", r.Status, r.Raw)
	}
	b := p.Booking(t, created.ID).Expect(t, 200)
	if len(b.Value.Payments) != 1 || b.Value.Payments[0].Status != "awaiting_transfer" {
		t.Fatalf("the deposit payment: %+v", b.Value.Payments)
	}
	bad := p.call(t, "POST", "/v1/bookings", map[string]string{"quote_id": q.Value.ID, "deposit_method": "cheque"},
		map[string]string{"Idempotency-Key": uuid.NewString()})
	if bad.Status != 422 || !strings.Contains(string(bad.Raw), "deposit_method") {
		t.Fatalf("a deposit by cheque: %d %s", bad.Status, bad.Raw)
	}
}

// A treatment whose provision plan is suspended can no longer be provided:
// the bookings still awaiting their deposit are cancelled, and a deposit
// paid as it happened is refunded, not silently kept.
func TestASuspendedPlanCancelsTheBookingsAwaitingTheirDeposit(t *testing.T) {
	p := startPlatform(t)
	q := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
	created := p.Book(t, q.Value.ID, uuid.NewString()).Expect(t, 201).Value
	plan := p.Treatment(t, treatmentID).Expect(t, 200).Value.PlanNumber
	p.PatchPlan(t, plan, map[string]any{"status": "suspended"}, admin()).Expect(t, 200)

	b := p.waitForStatus(t, created.ID, "cancelled")
	if b.Value.Cancellation == nil || b.Value.Cancellation.Reason != "plan_stopped" || b.Value.Cancellation.Refund.Amount != 0 {
		t.Fatalf("cancellation %+v", b.Value.Cancellation)
	}
	devtest.Eventually(t, "the deposit intent to be cancelled", func() bool {
		_, ok := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents/"+created.Deposit.PaymentIntentID+"/cancel",
			"booking:"+created.ID+":cancel-deposit")
		return ok
	})
	deposit := created.Deposit.Amount.Amount
	payload, sig := stripeEvent(t, "evt_late_plan_"+created.ID, "payment_intent.succeeded", paymentIntent{ID: created.Deposit.PaymentIntentID,
		Amount: deposit, AmountReceived: deposit, Currency: "jpy", Status: "succeeded"})
	p.StripeWebhook(t, payload, sig)
	devtest.Eventually(t, "the late deposit to be refunded", func() bool { return p.refunded(t, created.ID) == deposit })
}
