package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v76/webhook"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/events/paymentv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/payment/server"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

const (
	webhookSecret = "whsec_payment_component_test"
	clinicID      = "ginza-regenerative"
	// A stroke MSC course of ¥3,110,000: the deposit funds the culture, the
	// balance is charged once the cells pass QC.
	depositYen = 1_900_000
	balanceYen = 1_210_000
	savedCard  = "pm_1SavedVisa4242"
	// The consumers payment runs on the BOOKING stream.
	balanceConsumer  = "payment-balance-charges"
	qcFailedConsumer = "payment-qc-failed"
)

func TestDepositIntentIsCreatedOnceUnderTheBookingsKeys(t *testing.T) {
	s := startPayment(t)

	t.Run("only services reach the internal API and only finance the finance view", func(t *testing.T) {
		id := uuid.NewString()
		bearer := func(p identity.Principal) map[string]string {
			return map[string]string{"Authorization": "Bearer " + s.issuer.Token(t, p)}
		}
		patient := bearer(identity.Principal{Subject: "p-1", Role: identity.Patient})
		clinic := bearer(identity.Principal{Subject: "s-1", Role: identity.Clinic, ClinicID: clinicID})
		nobody := map[string]string{"Authorization": ""}
		for _, c := range []struct {
			method, path string
			header       map[string]string
			want         int
		}{
			{"POST", "/internal/v1/deposits", nobody, 401},
			{"POST", "/internal/v1/deposits", patient, 403},
			{"GET", "/internal/v1/payments?booking_id=" + id, clinic, 403},
			{"GET", "/v1/finance/bookings/" + id, nobody, 401},
			{"GET", "/v1/finance/bookings/" + id, patient, 403},
			{"GET", "/v1/finance/bookings/" + id, clinic, 403},
		} {
			var body any
			if c.method == "POST" {
				body = depositRequest(id, clinicID, depositYen, balanceYen)
			}
			if r := s.call(t, c.method, c.path, body, c.header); r.Status != c.want {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.Status, c.want, r.Raw)
			}
		}
		if calls := s.stripeCalls("/v1/customers", "booking:"+id+":customer"); len(calls) != 0 {
			t.Fatalf("a refused request reached Stripe (%d customer calls)", len(calls))
		}
	})

	t.Run("a booking's deposit intent saves the card for the balance, once", func(t *testing.T) {
		id := uuid.NewString()
		d := s.createDeposit(t, id, depositYen, balanceYen)
		if d.BookingID != id || d.Amount != money.Yen(depositYen) || !strings.HasPrefix(d.PaymentIntentID, "pi_") ||
			d.ClientSecret == "" || d.Status != "requires_payment" || uuid.Validate(d.PaymentID) != nil {
			t.Fatalf("deposit view %+v", d)
		}

		customers := s.stripeCalls("/v1/customers", "booking:"+id+":customer")
		if len(customers) != 1 {
			t.Fatalf("%d customer creations under booking:%s:customer, want 1", len(customers), id)
		}
		if f := customers[0].Form; f.Get("email") != "minji.kim@example.com" || f.Get("name") != "Kim Minji" || f.Get("metadata[booking_id]") != id {
			t.Errorf("customer form %v", f)
		}
		intents := s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")
		if len(intents) != 1 {
			t.Fatalf("%d deposit intents under booking:%s:deposit, want 1", len(intents), id)
		}
		f := intents[0].Form
		if f.Get("amount") != "1900000" || f.Get("currency") != "jpy" || f.Get("setup_future_usage") != "off_session" ||
			!strings.HasPrefix(f.Get("customer"), "cus_") || f.Get("confirm") != "" || f.Get("off_session") != "" || intents[0].StripeVersion != "2023-10-16" {
			t.Errorf("deposit intent form %v", f)
		}
		if f.Get("metadata[payment_id]") != d.PaymentID || f.Get("metadata[booking_id]") != id ||
			f.Get("metadata[clinic_id]") != clinicID || f.Get("metadata[stage]") != "deposit" {
			t.Errorf("deposit intent metadata %v", f)
		}

		// booking asks again (its retry, or a second replica): the same intent,
		// and Stripe is not asked again.
		again := s.createDeposit(t, id, depositYen, balanceYen)
		if again != d {
			t.Errorf("second answer %+v, want the first %+v", again, d)
		}
		if n, m := len(s.stripeCalls("/v1/customers", "booking:"+id+":customer")), len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")); n != 1 || m != 1 {
			t.Errorf("after a repeated request: %d customers, %d intents; want 1 and 1", n, m)
		}

		pays := s.payments(t, id)
		if len(pays) != 1 || pays[0].PaymentID != d.PaymentID || pays[0].Stage != "deposit" || pays[0].Status != "requires_payment" ||
			pays[0].Amount != money.Yen(depositYen) || pays[0].AmountReceived != money.Yen(0) || pays[0].OffSession || pays[0].PaymentIntentID != d.PaymentIntentID {
			t.Errorf("payments %+v", pays)
		}
		fin := s.finance(t, id)
		if fin.BookingID != id || fin.ClinicID != clinicID || fin.Currency != "JPY" || fin.Settled ||
			fin.Expected != money.Yen(3_110_000) || fin.Received != money.Yen(0) || fin.Outstanding != money.Yen(3_110_000) {
			t.Errorf("finance %+v", fin)
		}
		if fin.Deposit.Expected != money.Yen(depositYen) || fin.Deposit.Status != "requires_payment" || fin.Deposit.PaymentIntentID != d.PaymentIntentID ||
			fin.Balance.Expected != money.Yen(balanceYen) || fin.Balance.Status != "not_started" || fin.Balance.Outstanding != money.Yen(balanceYen) {
			t.Errorf("finance stages: deposit %+v, balance %+v", fin.Deposit, fin.Balance)
		}
	})

	t.Run("the same booking with another plan is a conflict and changes nothing", func(t *testing.T) {
		id := uuid.NewString()
		d := s.createDeposit(t, id, depositYen, balanceYen)
		for _, c := range []struct {
			name string
			body map[string]any
		}{
			{"another deposit", depositRequest(id, clinicID, 2_000_000, balanceYen)},
			{"another balance", depositRequest(id, clinicID, depositYen, 1_110_000)},
			{"another clinic", depositRequest(id, "umeda-stem-cell", depositYen, balanceYen)},
		} {
			r := s.call(t, "POST", "/internal/v1/deposits", c.body, nil)
			if p := r.problem(t); r.Status != 409 || p.Type != "https://saisei.health/problems/payment-plan-conflict" {
				t.Errorf("%s: %d %s, want 409 payment-plan-conflict", c.name, r.Status, r.Raw)
			}
		}
		if fin := s.finance(t, id); fin.Expected != money.Yen(3_110_000) || fin.ClinicID != clinicID {
			t.Errorf("plan after conflicts: %+v", fin)
		}
		if pays := s.payments(t, id); len(pays) != 1 || pays[0].PaymentID != d.PaymentID || pays[0].Amount != money.Yen(depositYen) {
			t.Errorf("payments after conflicts: %+v", pays)
		}
		if n := len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")); n != 1 {
			t.Errorf("%d deposit intents, want 1", n)
		}
	})

	t.Run("invalid fields are 422 problems naming them, unreadable bodies 400, and nothing is created", func(t *testing.T) {
		jpy := func(n int64) map[string]any { return map[string]any{"amount": n, "currency": "JPY"} }
		cases := []struct {
			name   string
			change func(req map[string]any)
			status int
			field  string
		}{
			{"booking id is not a booking's", func(r map[string]any) { r["booking_id"] = "BK-1042" }, 422, "booking_id"},
			{"no clinic", func(r map[string]any) { r["clinic_id"] = "" }, 422, "clinic_id"},
			{"deposit in dollars", func(r map[string]any) { r["deposit"] = map[string]any{"amount": 1_290_000, "currency": "USD"} }, 422, "deposit"},
			{"deposit of nothing", func(r map[string]any) { r["deposit"] = jpy(0) }, 422, "deposit"},
			{"negative balance", func(r map[string]any) { r["balance"] = jpy(-1) }, 422, "balance"},
			{"balance in euros", func(r map[string]any) { r["balance"] = map[string]any{"amount": 750_000, "currency": "EUR"} }, 422, "balance"},
			{"no email to bill", func(r map[string]any) { r["patient"].(map[string]any)["email"] = "" }, 422, "patient.email"},
			{"more than one card payment takes", func(r map[string]any) { r["deposit"] = jpy(100_000_000) }, 422, "deposit"},
			{"a balance Stripe would refuse", func(r map[string]any) { r["balance"] = jpy(100_000_000) }, 422, "balance"},
			{"a name Stripe would refuse", func(r map[string]any) { r["patient"].(map[string]any)["name"] = strings.Repeat("A", 300) }, 422, "patient.name"},
			{"an unknown field", func(r map[string]any) { r["coupon"] = "SPRING" }, 400, "coupon"},
		}
		for _, c := range cases {
			id := uuid.NewString()
			req := depositRequest(id, clinicID, depositYen, balanceYen)
			c.change(req)
			r := s.call(t, "POST", "/internal/v1/deposits", req, nil)
			p := r.problem(t)
			if r.Status != c.status || !p.names(c.field) {
				t.Errorf("%s: %d %s, want %d naming %q", c.name, r.Status, r.Raw, c.status, c.field)
			}
			if got := s.call(t, "GET", "/v1/finance/bookings/"+id, nil, nil).Status; got != 404 {
				t.Errorf("%s: finance of the refused booking is %d, want 404 (no plan)", c.name, got)
			}
		}
		if r := s.call(t, "POST", "/internal/v1/deposits", []byte(`{"booking_id": `), nil); r.Status != 400 || !r.problem(t).names("body") {
			t.Errorf("truncated body: %d %s", r.Status, r.Raw)
		}
		if r := s.call(t, "POST", "/internal/v1/deposits", []byte(`{"booking_id":"`+uuid.NewString()+`","deposit":{"amount":1900000.5,"currency":"JPY"}}`), nil); r.Status != 400 {
			t.Errorf("fractional yen: %d %s, want 400", r.Status, r.Raw)
		}
	})

	t.Run("a Stripe outage is a 502 and the retry finishes the same deposit under the same keys", func(t *testing.T) {
		id := uuid.NewString()
		req := depositRequest(id, clinicID, depositYen, balanceYen)
		s.stripe.FailNext("POST", "/v1/customers", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		r := s.call(t, "POST", "/internal/v1/deposits", req, nil)
		if p := r.problem(t); r.Status != 502 || p.Type != "https://saisei.health/problems/payment-provider-unavailable" {
			t.Fatalf("customer outage: %d %s, want 502 payment-provider-unavailable", r.Status, r.Raw)
		}
		pays := s.payments(t, id)
		if len(pays) != 1 || pays[0].Status != "creating" || pays[0].PaymentIntentID != "" {
			t.Fatalf("payments after the outage: %+v", pays)
		}
		paymentID := pays[0].PaymentID

		s.stripe.FailNext("POST", "/v1/payment_intents", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		if r := s.call(t, "POST", "/internal/v1/deposits", req, nil); r.Status != 502 {
			t.Fatalf("intent outage: %d %s, want 502", r.Status, r.Raw)
		}
		d := s.createDeposit(t, id, depositYen, balanceYen)
		if d.PaymentID != paymentID || !strings.HasPrefix(d.PaymentIntentID, "pi_") || d.ClientSecret == "" || d.Status != "requires_payment" {
			t.Fatalf("retried deposit %+v, want payment %s with its intent", d, paymentID)
		}

		// Each Stripe call was repeated with its own deterministic key, so
		// Stripe answers the repeat with the first result: one customer and
		// one intent however many times booking retries.
		if n := len(s.stripeCalls("/v1/customers", "booking:"+id+":customer")); n != 2 {
			t.Errorf("customer creation tried %d times under its key, want 2 (the failure and the retry)", n)
		}
		intents := s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")
		if len(intents) != 2 {
			t.Fatalf("deposit intent tried %d times under its key, want 2", len(intents))
		}
		for _, in := range intents {
			if in.Form.Get("amount") != "1900000" || in.Form.Get("metadata[payment_id]") != paymentID || in.Form.Get("customer") != intents[1].Form.Get("customer") {
				t.Errorf("attempts differ: %v", in.Form)
			}
		}
	})

	t.Run("payments and finance of a malformed or unknown booking", func(t *testing.T) {
		for _, c := range []struct {
			query  string
			status int
		}{{"", 422}, {"?booking_id=", 422}, {"?booking_id=BK-1042", 422}} {
			r := s.call(t, "GET", "/internal/v1/payments"+c.query, nil, nil)
			if r.Status != c.status || !r.problem(t).names("booking_id") {
				t.Errorf("payments%s: %d %s, want %d naming booking_id", c.query, r.Status, r.Raw, c.status)
			}
		}
		if pays := s.payments(t, uuid.NewString()); len(pays) != 0 {
			t.Errorf("payments of an unknown booking: %+v", pays)
		}
		for _, id := range []string{uuid.NewString(), "BK-1042"} {
			r := s.call(t, "GET", "/v1/finance/bookings/"+id, nil, nil)
			if p := r.problem(t); r.Status != 404 || p.Type != "https://saisei.health/problems/not-found" {
				t.Errorf("finance of %s: %d %s, want 404 not-found", id, r.Status, r.Raw)
			}
		}
	})
}

func TestStripeWebhooksMovePaymentsForwardOnce(t *testing.T) {
	s := startPayment(t)
	// Stripe dates events to the second; the test's events sit well in the
	// past so their order is the one the test gives them.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()

	t.Run("unsigned, forged, stale or altered events are refused naming Stripe-Signature", func(t *testing.T) {
		id := uuid.NewString()
		d := s.createDeposit(t, id, depositYen, balanceYen)
		payload, sig := stripeEvent(t, "evt_forged_"+id, "payment_intent.succeeded", t0,
			paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard))
		forged := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: "whsec_someone_else", Timestamp: time.Now()}).Header
		stale := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: webhookSecret, Timestamp: time.Now().Add(-10 * time.Minute)}).Header
		altered := bytes.Replace(payload, []byte(`"amount_received":1900000`), []byte(`"amount_received":1900001`), 1)
		for _, c := range []struct {
			name      string
			payload   []byte
			signature string
		}{
			{"no signature", payload, ""},
			{"another endpoint's secret", payload, forged},
			{"signed ten minutes ago", payload, stale},
			{"altered after signing", altered, sig},
		} {
			r := s.webhook(t, c.payload, c.signature)
			p := r.problem(t)
			if r.Status != 400 || p.Type != "https://saisei.health/problems/invalid-signature" || !p.names("Stripe-Signature") {
				t.Errorf("%s: %d %s, want 400 invalid-signature naming Stripe-Signature", c.name, r.Status, r.Raw)
			}
		}
		if pays := s.payments(t, id); pays[0].Status != "requires_payment" || pays[0].AmountReceived != money.Yen(0) {
			t.Errorf("deposit after refused events: %+v", pays[0])
		}
		if evs := s.paymentEvents(t, id); len(evs) != 0 {
			t.Errorf("refused events published %v", evs)
		}
	})

	t.Run("a signed event that cannot be read is a 400 malformed-request, not a 500", func(t *testing.T) {
		noData, _ := json.Marshal(map[string]any{"id": "evt_no_data", "object": "event", "api_version": "2023-10-16",
			"created": t0.Unix(), "type": "payment_intent.succeeded"})
		noIntentID, _ := json.Marshal(map[string]any{"id": "evt_no_intent_id", "object": "event", "api_version": "2023-10-16",
			"created": t0.Unix(), "type": "payment_intent.succeeded",
			"data": map[string]any{"object": map[string]any{"object": "payment_intent", "amount": depositYen, "currency": "jpy", "status": "succeeded"}}})
		for name, payload := range map[string][]byte{
			"without data":         noData,
			"without an intent id": noIntentID,
			"cut short":            []byte(`{"id": "evt_cut_short", "type": "payment_intent.succeeded", `),
			"with empty data":      []byte(`{"id": "evt_empty_data", "object": "event", "type": "payment_intent.succeeded", "created": 1767225600, "data": {}}`),
			"with a string object": []byte(`{"id": "evt_string_object", "object": "event", "type": "payment_intent.succeeded", "created": 1767225600, "data": {"object": "pi_1"}}`),
		} {
			r := s.webhook(t, payload, sign(payload))
			if p := r.problem(t); r.Status != 400 || p.Type != "https://saisei.health/problems/malformed-request" {
				t.Errorf("%s: %d %s, want 400 malformed-request", name, r.Status, r.Raw)
			}
		}
	})

	t.Run("events about no payment of ours are recorded and change nothing", func(t *testing.T) {
		id := uuid.NewString()
		d := s.createDeposit(t, id, depositYen, balanceYen)
		if out := s.deliver(t, "evt_customer_"+id, "customer.created", t0, map[string]any{"id": "cus_X", "object": "customer"}); out != "ignored" {
			t.Errorf("customer.created: %q, want ignored", out)
		}
		if out := s.deliver(t, "evt_customer_"+id, "customer.created", t0, map[string]any{"id": "cus_X", "object": "customer"}); out != "duplicate" {
			t.Errorf("customer.created again: %q, want duplicate", out)
		}
		// Another integration's intent on the same Stripe account.
		if out := s.deliver(t, "evt_foreign_"+id, "payment_intent.succeeded", t0, paidIntent("pi_not_ours_"+id[:8], "", 500, "pm_other")); out != "unknown_payment_intent" {
			t.Errorf("foreign intent: %q, want unknown_payment_intent", out)
		}
		// Metadata naming our payment cannot take over a payment that has its own intent.
		if out := s.deliver(t, "evt_hijack_"+id, "payment_intent.succeeded", t0, paidIntent("pi_hijack_"+id[:8], d.PaymentID, depositYen, "pm_other")); out != "unknown_payment_intent" {
			t.Errorf("intent claiming our payment: %q, want unknown_payment_intent", out)
		}
		if pays := s.payments(t, id); pays[0].Status != "requires_payment" || pays[0].PaymentIntentID != d.PaymentIntentID || pays[0].AmountReceived != money.Yen(0) {
			t.Errorf("deposit after foreign events: %+v", pays[0])
		}
		if evs := s.paymentEvents(t, id); len(evs) != 0 {
			t.Errorf("foreign events published %v", evs)
		}
	})

	t.Run("a payment of another amount is flagged and confirms nothing", func(t *testing.T) {
		id := uuid.NewString()
		d := s.createDeposit(t, id, depositYen, balanceYen)
		short := paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard)
		short["amount_received"] = depositYen - 1
		if out := s.deliver(t, "evt_short_"+id, "payment_intent.succeeded", t0, short); out != "amount_mismatch" {
			t.Fatalf("¥1,899,999 received for a ¥1,900,000 deposit: %q, want amount_mismatch", out)
		}
		fin := s.finance(t, id)
		if fin.Deposit.Status != "requires_payment" || fin.Received != money.Yen(0) || fin.Outstanding != money.Yen(3_110_000) {
			t.Errorf("finance after a short payment: %+v", fin)
		}
		if evs := s.paymentEvents(t, id); len(evs) != 0 {
			t.Errorf("a short payment published %v", evs)
		}
	})

	t.Run("a declined attempt is announced, the paid deposit announced once, and late news undoes nothing", func(t *testing.T) {
		id := uuid.NewString()
		d := s.createDeposit(t, id, depositYen, balanceYen)
		declined := intentIn(d, "requires_payment_method")
		declined["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}
		processing := intentIn(d, "processing")

		steps := []struct {
			event, typ string
			at         time.Duration
			object     map[string]any
			outcome    string
			status     string
		}{
			{"evt_declined", "payment_intent.payment_failed", 10 * time.Second, declined, "applied", "failed"},
			{"evt_processing", "payment_intent.processing", 20 * time.Second, processing, "applied", "processing"},
			// An older decline delivered late: older than what was applied.
			{"evt_declined_late", "payment_intent.payment_failed", 15 * time.Second, declined, "applied", "processing"},
			{"evt_paid", "payment_intent.succeeded", 30 * time.Second, paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard), "applied", "succeeded"},
			{"evt_paid", "payment_intent.succeeded", 30 * time.Second, paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard), "duplicate", "succeeded"},
			// Succeeded is final, whether later news is older or newer.
			{"evt_processing_late", "payment_intent.processing", 25 * time.Second, processing, "applied", "succeeded"},
			{"evt_declined_after", "payment_intent.payment_failed", 40 * time.Second, declined, "applied", "succeeded"},
		}
		for _, st := range steps {
			if out := s.deliver(t, st.event+"_"+id, st.typ, t0.Add(st.at), st.object); out != st.outcome {
				t.Fatalf("%s: outcome %q, want %q", st.event, out, st.outcome)
			}
			if got := s.payments(t, id)[0].Status; got != st.status {
				t.Fatalf("after %s the deposit is %s, want %s", st.event, got, st.status)
			}
		}

		paidAt := t0.Add(30 * time.Second)
		p := s.payments(t, id)[0]
		if p.AmountReceived != money.Yen(depositYen) || p.PaymentMethodID != savedCard || p.FailureCode != "" ||
			p.SucceededAt == nil || !p.SucceededAt.Equal(paidAt) {
			t.Errorf("paid deposit %+v", p)
		}
		fin := s.finance(t, id)
		if fin.Received != money.Yen(depositYen) || fin.Outstanding != money.Yen(balanceYen) || fin.Settled ||
			fin.Deposit.Outstanding != money.Yen(0) || fin.Deposit.Status != "succeeded" || fin.Balance.Status != "not_started" {
			t.Errorf("finance after the deposit: %+v", fin)
		}

		evs := s.paymentEvents(t, id)
		if len(evs) != 2 {
			t.Fatalf("published %v, want one decline and one success", evs)
		}
		failed, paid := evs[0], evs[1]
		if failed.Subject != "payment.v1."+clinicID+".deposit.failed" || failed.Failed == nil {
			t.Fatalf("first event %v, want the decline on deposit.failed", failed)
		}
		if f := failed.Failed; f.GetPaymentId() != d.PaymentID || f.GetStage() != paymentv1.Stage_STAGE_DEPOSIT || f.GetFailureCode() != "card_declined" ||
			f.GetRequiresAction() || f.GetAmount().GetAmount() != depositYen || f.GetAmount().GetCurrency() != "JPY" ||
			!f.GetFailedAt().AsTime().Equal(t0.Add(10*time.Second)) || f.GetPaymentIntentId() != d.PaymentIntentID {
			t.Errorf("decline announced as %v", f)
		}
		if paid.Subject != subject.Payment(clinicID, subject.Deposit, subject.Succeeded) || paid.ID != "payment:"+d.PaymentID+":succeeded" || paid.Succeeded == nil {
			t.Fatalf("second event %v, want the success on deposit.succeeded", paid)
		}
		if e := paid.Succeeded; e.GetBookingId() != id || e.GetClinicId() != clinicID || e.GetStage() != paymentv1.Stage_STAGE_DEPOSIT ||
			e.GetAmount().GetAmount() != depositYen || e.GetAmount().GetCurrency() != "JPY" || e.GetPaymentIntentId() != d.PaymentIntentID ||
			e.GetPaymentMethodId() != savedCard || !e.GetSucceededAt().AsTime().Equal(paidAt) {
			t.Errorf("success announced as %v", e)
		}
	})

	t.Run("a webhook that overtakes the stored intent id finds its payment by metadata", func(t *testing.T) {
		id := uuid.NewString()
		// The intent call's answer is lost: Stripe created the intent (and
		// will report it), payment did not store its id.
		s.stripe.FailNext("POST", "/v1/payment_intents", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		if r := s.call(t, "POST", "/internal/v1/deposits", depositRequest(id, clinicID, depositYen, balanceYen), nil); r.Status != 502 {
			t.Fatalf("deposit during the outage: %d %s", r.Status, r.Raw)
		}
		pending := s.payments(t, id)[0]
		intentID := "pi_overtaking_" + id[:8]
		if out := s.deliver(t, "evt_overtaking_"+id, "payment_intent.succeeded", t0, paidIntent(intentID, pending.PaymentID, depositYen, savedCard)); out != "applied" {
			t.Fatalf("overtaking webhook: %q, want applied", out)
		}
		p := s.payments(t, id)[0]
		if p.Status != "succeeded" || p.PaymentIntentID != intentID || p.AmountReceived != money.Yen(depositYen) || p.PaymentMethodID != savedCard {
			t.Fatalf("deposit after the overtaking webhook %+v", p)
		}
		// booking's retry gets the paid deposit rather than a second intent.
		d := s.createDeposit(t, id, depositYen, balanceYen)
		if d.PaymentID != pending.PaymentID || d.PaymentIntentID != intentID || d.Status != "succeeded" {
			t.Errorf("retried deposit %+v", d)
		}
		if n := len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")); n != 1 {
			t.Errorf("%d deposit intent calls, want only the lost one", n)
		}
		evs := s.paymentEvents(t, id)
		if len(evs) != 1 || evs[0].Succeeded.GetPaymentIntentId() != intentID || evs[0].ID != "payment:"+pending.PaymentID+":succeeded" {
			t.Errorf("published %v, want one success for %s", evs, intentID)
		}
	})

	t.Run("a webhook arriving while Stripe's answer is on its way is not undone by it", func(t *testing.T) {
		id := uuid.NewString()
		// Stripe takes its time answering the intent call; its webhook comes first.
		release := s.stripe.HoldNext("POST", "/v1/payment_intents")
		token := s.issuer.Token(t, identity.Principal{Subject: "booking", Role: identity.Service})
		body, _ := json.Marshal(depositRequest(id, clinicID, depositYen, balanceYen))
		answered := make(chan int, 1)
		go func() { // off the test goroutine: no t here
			req, _ := http.NewRequest("POST", s.base+"/internal/v1/deposits", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
		var pending paymentView
		devtest.Eventually(t, "the deposit being created", func() bool {
			ps := s.payments(t, id)
			if len(ps) == 1 && len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")) == 1 {
				pending = ps[0]
				return true
			}
			return false
		})
		intentID := "pi_early_" + id[:8]
		if out := s.deliver(t, "evt_early_"+id, "payment_intent.succeeded", t0, paidIntent(intentID, pending.PaymentID, depositYen, savedCard)); out != "applied" {
			t.Fatalf("early webhook: %q", out)
		}
		release()
		if status := <-answered; status != 201 {
			t.Fatalf("deposit: %d", status)
		}
		p := s.payments(t, id)[0]
		if p.Status != "succeeded" || p.PaymentIntentID != intentID || p.AmountReceived != money.Yen(depositYen) {
			t.Fatalf("the intent call's late answer overwrote the webhook's state: %+v", p)
		}
	})
}

func TestBalanceIsChargedOffSessionOnTheSavedCardOnce(t *testing.T) {
	s := startPayment(t)

	t.Run("a charge left creating for almost a day is looked up at Stripe before it is sent again", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		// An attempt 23 h 30 min ago never recorded its outcome (the event
		// was dead-lettered and is replayed now): Stripe forgets the
		// idempotency key at 24 h, so sending again blindly could charge twice.
		paymentID := uuid.NewString()
		if _, err := s.db.Exec(context.Background(), `
			INSERT INTO payment.payments (id, booking_id, clinic_id, stage, amount, currency, status, customer_id, payment_method_id,
				trace, created_at, updated_at)
			SELECT $1, booking_id, clinic_id, 'balance', $2, 'JPY', 'creating', customer_id, $3, '{}',
				now() - interval '23 hours 30 minutes', now() - interval '23 hours 30 minutes'
			FROM payment.payment_plans WHERE booking_id = $4`, paymentID, balanceYen, savedCard, id); err != nil {
			t.Fatal(err)
		}
		seq := s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen))
		s.waitHandled(t, balanceConsumer, seq)
		searched, charged := -1, -1
		for i, r := range s.stripe.Requests() {
			switch {
			case r.Method == "GET" && r.Path == "/v1/payment_intents/search" && strings.Contains(r.Form.Get("query"), paymentID):
				searched = i
			case r.Method == "POST" && r.Path == "/v1/payment_intents" && r.IdempotencyKey == "booking:"+id+":balance":
				charged = i
			}
		}
		// stripe-mock's search answers with a fixture of another payment, so
		// nothing is found and the charge goes out, after the search.
		if searched < 0 || charged < searched {
			t.Fatalf("search at request %d, charge at %d: want the search first", searched, charged)
		}
		if p, _ := s.payment(t, id, "balance"); p.PaymentID != paymentID || p.Status == "creating" {
			t.Fatalf("balance payment %+v, want the one created earlier, no longer creating", p)
		}
	})

	t.Run("cells passing QC charge the balance once, however often they are announced", func(t *testing.T) {
		id, d := s.paidDeposit(t)
		customer := s.stripeCalls("/v1/payment_intents", "booking:"+id+":deposit")[0].Form.Get("customer")
		eventID := "booking:" + id + ":cells_ready"
		seq := s.publish(t, eventID, subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen))
		s.waitHandled(t, balanceConsumer, seq)

		charges := s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")
		if len(charges) != 1 {
			t.Fatalf("%d balance charges, want 1", len(charges))
		}
		f := charges[0].Form
		if f.Get("amount") != "1210000" || f.Get("currency") != "jpy" || f.Get("off_session") != "true" || f.Get("confirm") != "true" ||
			f.Get("payment_method") != savedCard || f.Get("customer") != customer || f.Get("setup_future_usage") != "" ||
			f.Get("metadata[booking_id]") != id || f.Get("metadata[stage]") != "balance" {
			t.Errorf("balance charge form %v, want ¥1,210,000 off-session on %s of %s", f, savedCard, customer)
		}
		bal, ok := s.payment(t, id, "balance")
		if !ok || bal.Status != "processing" || !bal.OffSession || bal.Amount != money.Yen(balanceYen) || bal.PaymentMethodID != savedCard ||
			!strings.HasPrefix(bal.PaymentIntentID, "pi_") || f.Get("metadata[payment_id]") != bal.PaymentID {
			t.Fatalf("balance payment %+v", bal)
		}

		// The same event redelivered (an ack lost past JetStream's duplicate
		// window), then booking announcing the cells a second time.
		s.waitHandled(t, balanceConsumer, s.redeliver(t, eventID, subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		s.waitHandled(t, balanceConsumer, s.publish(t, uuid.NewString(), subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		if n := len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")); n != 1 {
			t.Errorf("Stripe was asked to charge the balance %d times, want once", n)
		}
		if pays := s.payments(t, id); len(pays) != 2 || pays[1].PaymentID != bal.PaymentID || pays[1].PaymentIntentID != bal.PaymentIntentID || pays[1].Status != "processing" {
			t.Errorf("payments after repeats %+v", pays)
		}

		paidAt := time.Now().Truncate(time.Second).UTC()
		if out := s.deliver(t, "evt_balance_"+id, "payment_intent.succeeded", paidAt, paidIntent(bal.PaymentIntentID, bal.PaymentID, balanceYen, savedCard)); out != "applied" {
			t.Fatalf("balance webhook: %q", out)
		}
		fin := s.finance(t, id)
		if !fin.Settled || fin.Expected != money.Yen(3_110_000) || fin.Received != money.Yen(3_110_000) || fin.Outstanding != money.Yen(0) ||
			fin.Balance.Received != money.Yen(balanceYen) || fin.Balance.Status != "succeeded" || fin.Balance.PaymentIntentID != bal.PaymentIntentID {
			t.Errorf("finance after the balance %+v", fin)
		}
		evs := s.paymentEvents(t, id)
		if len(evs) != 3 || evs[0].ID != "payment:"+d.PaymentID+":succeeded" {
			t.Fatalf("published %v, want the deposit's success, the balance's request (once, for all the repeats) and its success", evs)
		}
		// The charge sent, announced once with its intent before Stripe's
		// answer came.
		if r := evs[1]; r.Subject != subject.Payment(clinicID, subject.Balance, subject.Requested) || r.ID != "payment:"+bal.PaymentID+":requested" ||
			r.Requested.GetPaymentIntentId() != bal.PaymentIntentID || r.Requested.GetAmount().GetAmount() != balanceYen ||
			r.Requested.GetStage() != paymentv1.Stage_STAGE_BALANCE || r.Requested.GetRequestedAt() == nil {
			t.Fatalf("balance request announced as %v %v", r, r.Requested)
		}
		e := evs[2]
		if e.Subject != subject.Payment(clinicID, subject.Balance, subject.Succeeded) || e.ID != "payment:"+bal.PaymentID+":succeeded" || e.Succeeded == nil {
			t.Fatalf("balance event %v", e)
		}
		if m := e.Succeeded; m.GetStage() != paymentv1.Stage_STAGE_BALANCE || m.GetAmount().GetAmount() != balanceYen || m.GetAmount().GetCurrency() != "JPY" ||
			m.GetBookingId() != id || m.GetPaymentIntentId() != bal.PaymentIntentID || !m.GetSucceededAt().AsTime().Equal(paidAt) {
			t.Errorf("balance success announced as %v", m)
		}
		if dl := s.deadLetters(t, id); len(dl) != 0 {
			t.Errorf("dead letters %v", dl)
		}
	})

	t.Run("a Stripe outage is retried under the same key", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		s.stripe.FailNext("POST", "/v1/payment_intents", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		s.waitHandled(t, balanceConsumer, s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		charges := s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")
		if len(charges) != 2 {
			t.Fatalf("%d balance attempts, want 2 (the outage and the retry)", len(charges))
		}
		for _, c := range charges {
			if c.Form.Get("amount") != "1210000" || c.Form.Get("payment_method") != savedCard || c.Form.Get("metadata[payment_id]") != charges[0].Form.Get("metadata[payment_id]") {
				t.Errorf("attempts differ: %v", c.Form)
			}
		}
		if bal, ok := s.payment(t, id, "balance"); !ok || bal.Status != "processing" || bal.PaymentID != charges[0].Form.Get("metadata[payment_id]") {
			t.Errorf("balance after the retry %+v", bal)
		}
		if evs := s.paymentEvents(t, id); len(evs) != 2 || evs[1].ID != "payment:"+charges[0].Form.Get("metadata[payment_id]")+":requested" {
			t.Errorf("published %v, want the deposit's success and one request of the balance", evs)
		}
	})

	t.Run("an outage longer than the old retry budget dead-letters nothing and charges once", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		// Fifteen failed attempts: the balance consumer used to give up after
		// ten (about an hour in production); now only RetryFor, a day,
		// bounds a transient failure.
		const outage = 15
		for range outage { // a 500 on a POST: stripe-go leaves the retry to us
			s.stripe.FailNext("POST", "/v1/payment_intents", 500, devstack.StripeError{Type: "api_error", Message: "simulated outage"})
		}
		s.waitHandled(t, balanceConsumer, s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		charges := s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")
		if len(charges) < outage+1 {
			t.Fatalf("%d balance attempts, want the %d failed ones and the one that went through", len(charges), outage)
		}
		if bal, ok := s.payment(t, id, "balance"); !ok || bal.Status != "processing" {
			t.Fatalf("balance after the outage %+v", bal)
		}
		if dl := s.deadLetters(t, id); len(dl) != 0 {
			t.Fatalf("dead letters after a transient outage: %v", dl)
		}
		if evs := s.paymentEvents(t, id); len(evs) != 2 || evs[1].Requested == nil {
			t.Errorf("published %v, want the deposit's success and one request of the balance", evs)
		}
	})

	for _, c := range []struct {
		name, code, message, status string
		requiresAction              bool
	}{
		{"a declined card is recorded and announced, not retried", "card_declined", "Your card was declined.", "failed", false},
		{"a card needing authentication asks for the patient, not retried", "authentication_required", "This payment requires authentication.", "requires_action", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, _ := s.paidDeposit(t)
			s.stripe.FailNext("POST", "/v1/payment_intents", 402, devstack.StripeError{Type: "card_error", Code: c.code, DeclineCode: c.code, Message: c.message})
			s.waitHandled(t, balanceConsumer, s.publish(t, "booking:"+id+":cells_ready", subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
			if n := len(s.stripeCalls("/v1/payment_intents", "booking:"+id+":balance")); n != 1 {
				t.Errorf("%d balance attempts, want 1", n)
			}
			bal, ok := s.payment(t, id, "balance")
			if !ok || bal.Status != c.status || bal.FailureCode != c.code || bal.FailureMessage != c.message || bal.AmountReceived != money.Yen(0) {
				t.Fatalf("balance payment %+v, want %s with %s", bal, c.status, c.code)
			}
			if fin := s.finance(t, id); fin.Settled || fin.Outstanding != money.Yen(balanceYen) || fin.Balance.Status != c.status {
				t.Errorf("finance %+v", fin)
			}
			evs := s.paymentEvents(t, id)
			if len(evs) != 2 || evs[1].Subject != subject.Payment(clinicID, subject.Balance, subject.Failed) || evs[1].Failed == nil {
				t.Fatalf("published %v, want the deposit's success and the balance's failure", evs)
			}
			if f := evs[1].Failed; f.GetPaymentId() != bal.PaymentID || f.GetBookingId() != id || f.GetStage() != paymentv1.Stage_STAGE_BALANCE ||
				f.GetAmount().GetAmount() != balanceYen || f.GetFailureCode() != c.code || f.GetRequiresAction() != c.requiresAction {
				t.Errorf("failure announced as %v", f)
			}
			if dl := s.deadLetters(t, id); len(dl) != 0 {
				t.Errorf("a card failure was dead-lettered: %v", dl)
			}
		})
	}
}

func TestBalanceIsNeverChargedWhenNotOwed(t *testing.T) {
	s := startPayment(t)

	t.Run("cells failing QC cancel the balance for good", func(t *testing.T) {
		id, _ := s.paidDeposit(t)
		s.waitHandled(t, qcFailedConsumer, s.publish(t, "booking:"+id+":qc_failed", subject.Booking(clinicID, subject.QCFailed), qcFailed(id)))
		fin := s.finance(t, id)
		if fin.Balance.Status != "cancelled" || fin.Balance.Expected != money.Yen(0) || fin.Balance.Outstanding != money.Yen(0) ||
			fin.Expected != money.Yen(depositYen) || fin.Received != money.Yen(depositYen) || fin.Outstanding != money.Yen(0) || !fin.Settled {
			t.Errorf("finance after failed QC %+v", fin)
		}

		// A CellsReady arriving afterwards (out of order, or in error) is refused.
		eventID := "booking:" + id + ":cells_ready"
		s.waitHandled(t, balanceConsumer, s.publish(t, eventID, subject.Booking(clinicID, subject.CellsReady), cellsReady(id, balanceYen)))
		s.assertRefused(t, id, eventID, "cancelled")
		if fin := s.finance(t, id); fin.Balance.Status != "cancelled" || !fin.Settled {
			t.Errorf("finance after the refused charge %+v", fin)
		}
	})

	t.Run("no plan, paid in full, another balance or no saved card", func(t *testing.T) {
		unpaid := uuid.NewString()
		s.createDeposit(t, unpaid, depositYen, balanceYen)
		paidInFull := uuid.NewString()
		d := s.createDeposit(t, paidInFull, 3_110_000, 0)
		s.deliver(t, "evt_full_"+paidInFull, "payment_intent.succeeded", time.Now(), paidIntent(d.PaymentIntentID, d.PaymentID, 3_110_000, savedCard))
		noCard := uuid.NewString()
		d = s.createDeposit(t, noCard, depositYen, balanceYen)
		// Paid by a method Stripe cannot reuse off-session: no payment method saved.
		s.deliver(t, "evt_nocard_"+noCard, "payment_intent.succeeded", time.Now(), paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, ""))
		other, _ := s.paidDeposit(t)

		for _, c := range []struct {
			name, bookingID string
			balance         int64
			reason          string
		}{
			{"a booking payment never saw", uuid.NewString(), balanceYen, "no payment plan"},
			{"paid in full with the deposit", paidInFull, 0, "paid in full"},
			{"a balance the plan does not hold", other, 1_000_000, "disagree"},
			{"a deposit not yet paid", unpaid, balanceYen, "no card saved"},
			{"a deposit paid without saving a card", noCard, balanceYen, "no card saved"},
		} {
			eventID := "booking:" + c.bookingID + ":cells_ready"
			s.waitHandled(t, balanceConsumer, s.publish(t, eventID, subject.Booking(clinicID, subject.CellsReady), cellsReady(c.bookingID, c.balance)))
			s.assertRefused(t, c.bookingID, eventID, c.reason)
		}
		if fin := s.finance(t, paidInFull); fin.Balance.Status != "not_required" || fin.Balance.Expected != money.Yen(0) || !fin.Settled || fin.Received != money.Yen(3_110_000) {
			t.Errorf("finance of a booking paid in full %+v", fin)
		}
		if fin := s.finance(t, other); fin.Balance.Status != "not_started" || fin.Outstanding != money.Yen(balanceYen) {
			t.Errorf("finance after a refused disagreeing balance %+v", fin)
		}
	})
}

// assertRefused checks a CellsReady was dead-lettered for reason, with no
// charge attempted and no balance payment recorded.
func (s *service) assertRefused(t *testing.T, bookingID, eventID, reason string) {
	t.Helper()
	var dl bus.DeadLetter
	devtest.Eventually(t, "the dead letter of "+eventID, func() bool {
		for _, l := range s.deadLetters(t, bookingID) {
			if l.EventID == eventID {
				dl = l
				return true
			}
		}
		return false
	})
	if dl.Reason != "terminated" || dl.Consumer != balanceConsumer || !strings.Contains(dl.Detail, reason) {
		t.Errorf("dead letter of %s: %s by %s (%q), want terminated for %q", eventID, dl.Reason, dl.Consumer, dl.Detail, reason)
	}
	if n := len(s.stripeCalls("/v1/payment_intents", "booking:"+bookingID+":balance")); n != 0 {
		t.Errorf("%s: %d balance charges attempted, want none", eventID, n)
	}
	if bal, ok := s.payment(t, bookingID, "balance"); ok {
		t.Errorf("%s: balance payment recorded %+v", eventID, bal)
	}
	for _, e := range s.paymentEvents(t, bookingID) {
		if e.Failed != nil || e.Succeeded.GetStage() == paymentv1.Stage_STAGE_BALANCE {
			t.Errorf("%s: published %v", eventID, e)
		}
	}
}

// service is payment running in-process against real Postgres, JetStream
// and stripe-mock.
type service struct {
	base   string
	issuer *devtest.Issuer
	stripe *devstack.StripeProxy
	js     jetstream.JetStream
	// db is the superuser's connection, used only to see when the outbox
	// relay has published everything committed.
	db *pgx.Conn
	// dsn is payment's own.
	dsn string
	// clock is payment's clock; tests move it forward.
	clock *devtest.Clock
}

func startPayment(t testing.TB) *service {
	t.Helper()
	admin := devtest.NewDatabase(t)
	natsURL, natsTrust := devtest.SecureNATS(t)
	s := &service{stripe: devtest.StripeProxy(t), issuer: devtest.NewIssuer(t, "payment")}
	addr, base := devtest.Addr(t)
	s.base = base
	s.dsn = devtest.ServiceDSN(t, admin, "payment")
	cfg := server.Config{
		Config: servicehost.Config{Name: "payment", Identity: s.issuer.Config("payment"), HTTPAddr: addr, DatabaseURL: s.dsn,
			NATSURL: natsURL, NATSCreds: devtest.ServiceCreds(t, natsTrust, "payment"), StreamReplicas: 1},
		StripeAPIKey: "sk_test_payment", StripeAPIBase: s.stripe.URL, StripeWebhookSecret: webhookSecret,
		BalanceRetry: []time.Duration{50 * time.Millisecond},
	}
	deps := devtest.Deps(t, "payment", nil)
	s.clock = &devtest.Clock{}
	deps.Now = s.clock.Now
	devtest.RunService(t, base, func(ctx context.Context) error { return server.Run(ctx, cfg, deps) })

	nc, js, err := bus.Connect(natsURL, "payment-test", devtest.Observer(t, natsTrust))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s.js = js
	ctx := context.Background()
	if s.db, err = pgx.Connect(ctx, admin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.db.Close(ctx) })
	return s
}

// response is an HTTP answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
}

func (s *service) call(t *testing.T, method, path string, body any, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Booking calls the internal API as a service; finance reads its API;
	// Stripe's webhook is signed instead.
	switch {
	case strings.HasPrefix(path, "/internal/"):
		req.Header.Set("Authorization", "Bearer "+s.issuer.Token(t, identity.Principal{Subject: "booking", Role: identity.Service}))
	case strings.HasPrefix(path, "/v1/finance/"):
		req.Header.Set("Authorization", "Bearer "+s.issuer.Token(t, identity.Principal{Subject: "finance-1", Role: identity.Finance}))
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
}

func (r response) decode(t *testing.T, into any) {
	t.Helper()
	if err := json.Unmarshal(r.Raw, into); err != nil {
		t.Fatalf("answer %d %s: %v", r.Status, r.Raw, err)
	}
}

type problem struct {
	Type   string
	Title  string
	Status int
	Detail string
	Errors []struct{ Field, Message string }
}

// problem decodes a problem+json answer, failing the test for anything else.
func (r response) problem(t *testing.T) problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("answer %d has Content-Type %q, want application/problem+json: %s", r.Status, ct, r.Raw)
	}
	var p problem
	r.decode(t, &p)
	if p.Status != r.Status {
		t.Errorf("problem status %d in a %d answer", p.Status, r.Status)
	}
	return p
}

func (p problem) names(field string) bool {
	return slices.ContainsFunc(p.Errors, func(e struct{ Field, Message string }) bool { return e.Field == field && e.Message != "" })
}

func depositRequest(bookingID, clinic string, deposit, balance int64) map[string]any {
	return map[string]any{
		"booking_id": bookingID, "clinic_id": clinic,
		"deposit": map[string]any{"amount": deposit, "currency": "JPY"},
		"balance": map[string]any{"amount": balance, "currency": "JPY"},
		"patient": map[string]any{"name": "Kim Minji", "email": "minji.kim@example.com", "country": "KR", "language": "ko"},
	}
}

type depositView struct {
	PaymentID       string      `json:"payment_id"`
	BookingID       string      `json:"booking_id"`
	Amount          money.Money `json:"amount"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	Status          string      `json:"status"`
}

func (s *service) createDeposit(t *testing.T, bookingID string, deposit, balance int64) depositView {
	t.Helper()
	r := s.call(t, "POST", "/internal/v1/deposits", depositRequest(bookingID, clinicID, deposit, balance), nil)
	if r.Status != 201 {
		t.Fatalf("deposit of %s: %d %s", bookingID, r.Status, r.Raw)
	}
	var d depositView
	r.decode(t, &d)
	return d
}

// paidDeposit books a ¥1,900,000 deposit and has Stripe report it paid with
// savedCard.
func (s *service) paidDeposit(t *testing.T) (bookingID string, d depositView) {
	t.Helper()
	bookingID = uuid.NewString()
	d = s.createDeposit(t, bookingID, depositYen, balanceYen)
	if out := s.deliver(t, "evt_deposit_"+bookingID, "payment_intent.succeeded", time.Now(), paidIntent(d.PaymentIntentID, d.PaymentID, depositYen, savedCard)); out != "applied" {
		t.Fatalf("deposit webhook: %q", out)
	}
	return bookingID, d
}

type paymentView struct {
	PaymentID       string      `json:"payment_id"`
	Stage           string      `json:"stage"`
	PaymentIntentID string      `json:"payment_intent_id"`
	Amount          money.Money `json:"amount"`
	AmountReceived  money.Money `json:"amount_received"`
	Status          string      `json:"status"`
	OffSession      bool        `json:"off_session"`
	PaymentMethodID string      `json:"payment_method_id"`
	FailureCode     string      `json:"failure_code"`
	FailureMessage  string      `json:"failure_message"`
	SucceededAt     *time.Time  `json:"succeeded_at"`
}

func (s *service) payments(t *testing.T, bookingID string) []paymentView {
	t.Helper()
	r := s.call(t, "GET", "/internal/v1/payments?booking_id="+bookingID, nil, nil)
	if r.Status != 200 {
		t.Fatalf("payments of %s: %d %s", bookingID, r.Status, r.Raw)
	}
	var list struct{ Items []paymentView }
	r.decode(t, &list)
	return list.Items
}

func (s *service) payment(t *testing.T, bookingID, stage string) (paymentView, bool) {
	t.Helper()
	for _, p := range s.payments(t, bookingID) {
		if p.Stage == stage {
			return p, true
		}
	}
	return paymentView{}, false
}

type stageFinance struct {
	Expected        money.Money `json:"expected"`
	Received        money.Money `json:"received"`
	Outstanding     money.Money `json:"outstanding"`
	Status          string      `json:"status"`
	PaymentIntentID string      `json:"payment_intent_id"`
}

type financeView struct {
	BookingID   string       `json:"booking_id"`
	ClinicID    string       `json:"clinic_id"`
	Currency    string       `json:"currency"`
	Expected    money.Money  `json:"expected"`
	Received    money.Money  `json:"received"`
	Outstanding money.Money  `json:"outstanding"`
	Settled     bool         `json:"settled"`
	Deposit     stageFinance `json:"deposit"`
	Balance     stageFinance `json:"balance"`
}

func (s *service) finance(t *testing.T, bookingID string) financeView {
	t.Helper()
	r := s.call(t, "GET", "/v1/finance/bookings/"+bookingID, nil, nil)
	if r.Status != 200 {
		t.Fatalf("finance of %s: %d %s", bookingID, r.Status, r.Raw)
	}
	var f financeView
	r.decode(t, &f)
	return f
}

// stripeCalls are the POSTs under path sent with idempotency key.
func (s *service) stripeCalls(path, key string) []devstack.StripeRequest {
	var out []devstack.StripeRequest
	for _, r := range s.stripe.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, path) && r.IdempotencyKey == key {
			out = append(out, r)
		}
	}
	return out
}

// stripeEvent builds a webhook event as Stripe sends it, created at created
// and signed now with the endpoint secret.
func stripeEvent(t *testing.T, id, typ string, created time.Time, object map[string]any) (payload []byte, signature string) {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": "2023-10-16", "created": created.Unix(),
		"type": typ, "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	return payload, sign(payload)
}

func sign(payload []byte) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: webhookSecret, Timestamp: time.Now()}).Header
}

func (s *service) webhook(t *testing.T, payload []byte, signature string) response {
	t.Helper()
	header := map[string]string{}
	if signature != "" {
		header["Stripe-Signature"] = signature
	}
	return s.call(t, "POST", "/v1/webhooks/stripe", payload, header)
}

// deliver posts a signed event and returns the outcome payment recorded.
func (s *service) deliver(t *testing.T, id, typ string, created time.Time, object map[string]any) string {
	t.Helper()
	payload, sig := stripeEvent(t, id, typ, created, object)
	r := s.webhook(t, payload, sig)
	if r.Status != 200 {
		t.Fatalf("webhook %s: %d %s", id, r.Status, r.Raw)
	}
	var receipt struct {
		Received bool
		Outcome  string
	}
	r.decode(t, &receipt)
	if !receipt.Received {
		t.Fatalf("webhook %s not received: %s", id, r.Raw)
	}
	return receipt.Outcome
}

// paidIntent is a succeeded PaymentIntent as Stripe reports it; paymentID
// is the metadata payment put on it ("" for an intent that is not ours).
func paidIntent(intentID, paymentID string, amount int64, paymentMethod string) map[string]any {
	pi := map[string]any{"id": intentID, "object": "payment_intent", "amount": amount, "amount_received": amount,
		"currency": "jpy", "status": "succeeded", "payment_method": paymentMethod}
	if paymentMethod == "" {
		pi["payment_method"] = nil
	}
	if paymentID != "" {
		pi["metadata"] = map[string]any{"payment_id": paymentID, "stage": "deposit"}
	}
	return pi
}

// intentIn is the deposit's intent in a status before any money arrived.
func intentIn(d depositView, status string) map[string]any {
	return map[string]any{"id": d.PaymentIntentID, "object": "payment_intent", "amount": d.Amount.Amount, "amount_received": 0,
		"currency": "jpy", "status": status, "metadata": map[string]any{"payment_id": d.PaymentID, "stage": "deposit"}}
}

func yen(n int64) *commonv1.Money { return &commonv1.Money{Amount: n, Currency: "JPY"} }

func bookingSnapshot(id, status string, balance int64) *bookingv1.Booking {
	return &bookingv1.Booking{
		Id: id, QuoteId: uuid.NewString(), TreatmentId: "ginza-adipose-msc-stroke", TreatmentName: "Adipose-derived MSC for stroke",
		ClinicId: clinicID, ClinicName: "Ginza Regenerative Cell Clinic",
		Patient: &commonv1.Patient{Name: "Kim Minji", Email: "minji.kim@example.com", Country: "KR", Language: "ko"},
		Status:  status, Total: yen(depositYen + balance), Deposit: yen(depositYen), Balance: yen(balance),
		CreatedAt: timestamppb.New(time.Now().Add(-40 * 24 * time.Hour)),
	}
}

func cellsReady(bookingID string, balance int64) *bookingv1.CellsReady {
	return &bookingv1.CellsReady{Booking: bookingSnapshot(bookingID, "awaiting_balance", balance),
		Report: &bookingv1.QualityReport{CellCount: 112_000_000, ViabilityBp: 9450, SterilityPassed: true, EndotoxinPassed: true, ReportedAt: timestamppb.Now()}}
}

func qcFailed(bookingID string) *bookingv1.QualityCheckFailed {
	return &bookingv1.QualityCheckFailed{Booking: bookingSnapshot(bookingID, "qc_failed", balanceYen),
		Report: &bookingv1.QualityReport{CellCount: 110_000_000, ViabilityBp: 9100, SterilityPassed: false, EndotoxinPassed: true, ReportedAt: timestamppb.Now()}}
}

// publish publishes an event as booking's outbox relay does and returns its
// BOOKING stream sequence.
func (s *service) publish(t *testing.T, eventID, subj string, msg proto.Message) uint64 {
	t.Helper()
	return devtest.Publish(t, s.js, bus.Event{ID: eventID, Subject: subj, Message: msg}, time.Now())
}

// redeliver stores the event again under a fresh Nats-Msg-Id: the consumer
// really receives it twice, and only its inbox keeps the effect single.
func (s *service) redeliver(t *testing.T, eventID, subj string, msg proto.Message) uint64 {
	t.Helper()
	return devtest.Redeliver(t, s.js, bus.Event{ID: eventID, Subject: subj, Message: msg}, time.Now())
}

// waitHandled waits until consumer has finished with every message up to
// the BOOKING stream's seq: acknowledged after its effects committed, or
// terminated. A message waiting for a retry keeps it waiting.
func (s *service) waitHandled(t *testing.T, consumer string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	devtest.Eventually(t, fmt.Sprintf("%s to finish with message %d", consumer, seq), func() bool {
		c, err := s.js.Consumer(ctx, bus.StreamBooking, consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0
	})
}

func (s *service) deadLetters(t *testing.T, bookingID string) []bus.DeadLetter {
	t.Helper()
	all, err := bus.DeadLetters(context.Background(), s.js)
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.DeadLetter
	for _, dl := range all {
		if strings.Contains(dl.EventID, bookingID) {
			out = append(out, dl)
		}
	}
	return out
}

// paymentEvent is one event payment published on the PAYMENT stream.
type paymentEvent struct {
	Subject         string
	ID              string
	Succeeded       *paymentv1.PaymentSucceeded
	Failed          *paymentv1.PaymentFailed
	Requested       *paymentv1.PaymentRequested
	RefundSucceeded *paymentv1.RefundSucceeded
	RefundFailed    *paymentv1.RefundFailed
}

func (e paymentEvent) String() string { return e.Subject + " " + e.ID }

// paymentEvents returns, in order, every event published about a booking.
// It first waits for the outbox relay to publish all committed events: the
// HTTP answer or the ack came after the commit, so nothing that is not on
// the stream then will ever be.
func (s *service) paymentEvents(t *testing.T, bookingID string) []paymentEvent {
	t.Helper()
	ctx := context.Background()
	devtest.OutboxDrained(t, s.db, "payment")
	stream, err := s.js.Stream(ctx, bus.StreamPayment)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []paymentEvent
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		e := paymentEvent{Subject: raw.Subject, ID: raw.Header.Get(bus.HeaderEventID)}
		var msg interface {
			proto.Message
			GetBookingId() string
		}
		switch typ := raw.Header.Get(bus.HeaderEventType); typ {
		case bus.TypeName(&paymentv1.PaymentSucceeded{}):
			e.Succeeded = &paymentv1.PaymentSucceeded{}
			msg = e.Succeeded
		case bus.TypeName(&paymentv1.PaymentFailed{}):
			e.Failed = &paymentv1.PaymentFailed{}
			msg = e.Failed
		case bus.TypeName(&paymentv1.PaymentRequested{}):
			e.Requested = &paymentv1.PaymentRequested{}
			msg = e.Requested
		case bus.TypeName(&paymentv1.RefundSucceeded{}):
			e.RefundSucceeded = &paymentv1.RefundSucceeded{}
			msg = e.RefundSucceeded
		case bus.TypeName(&paymentv1.RefundFailed{}):
			e.RefundFailed = &paymentv1.RefundFailed{}
			msg = e.RefundFailed
		default:
			t.Fatalf("%s carries an event of type %q", raw.Subject, typ)
		}
		if err := proto.Unmarshal(raw.Data, msg); err != nil {
			t.Fatalf("%s: %v", raw.Subject, err)
		}
		if msg.GetBookingId() == bookingID {
			out = append(out, e)
		}
	}
	return out
}

// Deployment fails closed: the webhook secret published for local use is
// refused against the real Stripe API, before anything starts.
func TestThePublicLocalWebhookSecretIsRefusedAgainstRealStripe(t *testing.T) {
	cfg := server.Config{Config: servicehost.Config{Name: "payment"}, StripeAPIKey: "sk_live_x",
		StripeAPIBase: "https://api.stripe.com", StripeWebhookSecret: server.LocalWebhookSecret}
	err := server.Run(context.Background(), cfg, devtest.Deps(t, "payment", nil))
	if err == nil || !strings.Contains(err.Error(), "public local default") {
		t.Fatalf("started with the public secret against Stripe: %v", err)
	}
}
