package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/notification/internal/domain"
)

// receiver is a clinic's webhook endpoint: a real HTTP server answering
// with the next scripted status (the last repeats), verifying what it
// accepts with the Standard Webhooks library, as a clinic would.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	script  []int
	secrets []string
	calls   []delivered
}

type delivered struct {
	header   http.Header
	body     []byte
	verified map[string]bool // by secret
	status   int
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		c := delivered{header: req.Header.Clone(), body: body, verified: map[string]bool{}}
		for _, s := range r.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			c.verified[s] = err == nil && wh.Verify(body, req.Header) == nil
		}
		c.status = r.script[min(len(r.calls), len(r.script)-1)]
		r.calls = append(r.calls, c)
		if c.status == http.StatusFound {
			http.Redirect(w, req, r.URL+"/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(c.status)
		_, _ = io.WriteString(w, "receiver says "+http.StatusText(c.status))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) trust(secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, secret)
}

func (r *receiver) received() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivered(nil), r.calls...)
}

func (r *receiver) answer(script ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script, r.calls = script, nil
}

type endpointView struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"`
	ContactEmail            string     `json:"contact_email"`
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason"`
	FailingSince            *time.Time `json:"failing_since"`
}

type deliveryView struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	EventType string `json:"event_type"`
	Status    string `json:"status"`
	Attempts  []struct {
		Attempt         int    `json:"attempt"`
		StatusCode      int    `json:"status_code"`
		ResponseExcerpt string `json:"response_excerpt"`
		Error           string `json:"error"`
	} `json:"attempts"`
}

func TestClinicsReceiveSignedWebhooksRetriedUntilAccepted(t *testing.T) {
	f := startNotification(t)
	staff := f.issuer.Token(t, identity.Principal{Subject: "staff-ginza", Role: identity.Clinic, ClinicID: ginza})
	annex := f.issuer.Token(t, identity.Principal{Subject: "staff-annex", Role: identity.Clinic, ClinicID: ginzaAnnex})
	patient := f.issuer.Token(t, identity.Principal{Subject: "patient-1", Role: identity.Patient})
	api := f.base + "/v1/clinic/webhook-endpoints"

	// Down, then a redirect (not followed: where it points was never
	// checked), then accepted once verified.
	rcv := newReceiver(t, http.StatusInternalServerError, http.StatusFound, http.StatusNoContent)
	var ep endpointView

	t.Run("a clinic registers an endpoint and gets its secret once; bad URLs and events are named", func(t *testing.T) {
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"url": "http://10.0.0.7/hooks", "events": []string{"booking.confirmed"}}, "url"},
			{map[string]any{"url": "https://169.254.169.254/latest", "events": []string{"booking.confirmed"}}, "url"},
			{map[string]any{"url": "ftp://clinic.example/hooks", "events": []string{"booking.confirmed"}}, "url"},
			{map[string]any{"url": rcv.URL, "events": []string{"booking.refunded"}}, "events"},
			{map[string]any{"url": rcv.URL}, "events"},
			{map[string]any{"url": rcv.URL, "events": []string{"booking.confirmed"}, "contact_email": "Ops <ops@ginza.example>"}, "contact_email"},
		} {
			var problem struct {
				Errors []struct{ Field string }
			}
			if code := call(t, "POST", api, staff, c.body, &problem); code != 422 || len(problem.Errors) == 0 || problem.Errors[0].Field != c.field {
				t.Errorf("%v: %d %+v, want 422 naming %s", c.body, code, problem, c.field)
			}
		}
		if code := call(t, "POST", api, staff, map[string]any{"url": rcv.URL, "events": []string{"booking.confirmed"},
			"contact_email": "webhooks@ginza.example"}, &ep); code != 201 ||
			!strings.HasPrefix(ep.Secret, "whsec_") || ep.URL != rcv.URL || !ep.Enabled || ep.ContactEmail != "webhooks@ginza.example" {
			t.Fatalf("register: %d %+v", code, ep)
		}
		rcv.trust(ep.Secret)
		var got endpointView
		if code := call(t, "GET", api+"/"+ep.ID, staff, nil, &got); code != 200 || got.Secret != "" || got.ID != ep.ID {
			t.Fatalf("read back: %d %+v (the secret is shown once)", code, got)
		}
		// Another clinic, a patient, nobody.
		if code := call(t, "GET", api+"/"+ep.ID, annex, nil, nil); code != 404 {
			t.Errorf("another clinic reads the endpoint: %d", code)
		}
		var list struct{ Items []endpointView }
		if code := call(t, "GET", api, annex, nil, &list); code != 200 || len(list.Items) != 0 {
			t.Errorf("another clinic's list: %d %+v", code, list.Items)
		}
		for token, want := range map[string]int{"": 401, patient: 403} {
			if code := call(t, "GET", api, token, nil, nil); code != want {
				t.Errorf("list as %q: %d, want %d", token, code, want)
			}
		}
	})

	b := newBooking(ginza, "en", "confirmed")
	t.Run("a delivery fails twice, is retried on the schedule and accepted, signed and traced, with one webhook-id", func(t *testing.T) {
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
		devtest.Eventually(t, "the first attempt", func() bool { return len(rcv.received()) == 1 })
		for i, wait := range []time.Duration{domain.WebhookSchedule[1], domain.WebhookSchedule[2]} {
			time.Sleep(100 * time.Millisecond)
			if n := len(rcv.received()); n != i+1 {
				t.Fatalf("%d attempts before the retry was due, want %d", n, i+1)
			}
			f.advance(t, wait+wait/10+time.Second)
			devtest.Eventually(t, "the next attempt", func() bool { return len(rcv.received()) == i+2 })
		}
		calls := rcv.received()
		wantID := "notice:" + b.Id + ":confirmed"
		for i, c := range calls {
			if c.header.Get("webhook-id") != wantID || !c.verified[ep.Secret] || c.header.Get("Content-Type") != "application/json" {
				t.Errorf("attempt %d: id %q verified %v", i+1, c.header.Get("webhook-id"), c.verified)
			}
		}
		var body struct {
			Type string
			Data struct {
				NoticeID string `json:"notice_id"`
				Booking  struct {
					ID      string
					Deposit struct {
						Amount   int64
						Currency string
					}
					Patient map[string]string
				}
			}
		}
		if err := json.Unmarshal(calls[2].body, &body); err != nil || body.Type != "booking.confirmed" || body.Data.NoticeID != wantID ||
			body.Data.Booking.ID != b.Id || body.Data.Booking.Deposit.Amount != 720_000 || body.Data.Booking.Deposit.Currency != "JPY" {
			t.Fatalf("body %s: %v", calls[2].body, err)
		}
		if _, ok := body.Data.Booking.Patient["subject"]; ok {
			t.Errorf("the patient's identity at our issuer reached the clinic")
		}
		// The delivery continues the booking's trace.
		tp := calls[2].header.Get("traceparent")
		if len(tp) != 55 || calls[2].header.Get("baggage") != "" {
			t.Errorf("traceparent %q, baggage %q", tp, calls[2].header.Get("baggage"))
		}
		var traced bool
		for _, s := range f.spans.GetSpans() {
			if s.Name == "webhook deliver booking.confirmed" && s.SpanContext.TraceID().String() == tp[3:35] {
				traced = true
			}
		}
		if !traced {
			t.Errorf("no delivery span in trace %s", tp)
		}

		// The receiver has answered; the sender records the attempt a moment later.
		var log struct{ Items []deliveryView }
		devtest.Eventually(t, "the delivery to be recorded as succeeded", func() bool {
			log.Items = nil
			code := call(t, "GET", api+"/"+ep.ID+"/deliveries", staff, nil, &log)
			return code == 200 && len(log.Items) == 1 && log.Items[0].Status != "pending"
		})
		d := log.Items[0]
		if d.Status != "succeeded" || d.WebhookID != wantID || len(d.Attempts) != 3 || d.Attempts[0].StatusCode != 500 ||
			d.Attempts[1].StatusCode != 302 || d.Attempts[2].StatusCode != 204 ||
			d.Attempts[0].ResponseExcerpt != "receiver says Internal Server Error" {
			t.Fatalf("delivery log %+v", d)
		}
		if code := call(t, "GET", api+"/"+ep.ID+"/deliveries", annex, nil, nil); code != 404 {
			t.Errorf("another clinic reads the delivery log: %d", code)
		}
	})

	t.Run("a redelivered event and an event the endpoint did not ask for deliver nothing more", func(t *testing.T) {
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
		ready := newBooking(ginza, "en", "ready_for_administration")
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.ReadyForAdministration),
			&bookingv1.BookingReadyForAdministration{Booking: ready}, time.Now())
		f.settle(t, ginza) // itself a confirmation: one more delivery
		devtest.Eventually(t, "the settling delivery", func() bool { return len(rcv.received()) == 4 })
		time.Sleep(200 * time.Millisecond)
		if calls := rcv.received(); len(calls) != 4 || calls[3].header.Get("webhook-id") == "notice:"+b.Id+":confirmed" {
			t.Fatalf("%d calls; the last %q", len(calls), calls[len(calls)-1].header.Get("webhook-id"))
		}
	})

	t.Run("after a rotation both secrets sign for a day", func(t *testing.T) {
		var rotated endpointView
		if code := call(t, "POST", api+"/"+ep.ID+"/rotate-secret", staff, nil, &rotated); code != 200 ||
			rotated.Secret == ep.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.PreviousSecretExpiresAt == nil {
			t.Fatalf("rotate: %d %+v", code, rotated)
		}
		rcv.trust(rotated.Secret)
		before := len(rcv.received())
		f.settle(t, ginza)
		devtest.Eventually(t, "a delivery after the rotation", func() bool { return len(rcv.received()) > before })
		c := rcv.received()[before]
		if !c.verified[ep.Secret] || !c.verified[rotated.Secret] || len(strings.Fields(c.header.Get("webhook-signature"))) != 2 {
			t.Fatalf("after rotation: verified %v, signature %q", c.verified, c.header.Get("webhook-signature"))
		}
		ep.Secret = rotated.Secret
	})

	t.Run("a delivery that finally failed is replayed; an endpoint failing for five days is disabled", func(t *testing.T) {
		rcv.answer(http.StatusServiceUnavailable)
		late := newBooking(ginza, "en", "confirmed")
		f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
			&bookingv1.BookingConfirmed{Booking: late, DepositPaymentId: uuid.NewString()}, time.Now())
		for i, wait := range domain.WebhookSchedule {
			if i > 0 {
				f.advance(t, wait+wait/10+time.Second)
			}
			devtest.Eventually(t, "attempt", func() bool { return len(rcv.received()) == i+1 })
		}
		var log struct{ Items []deliveryView }
		var failed deliveryView
		devtest.Eventually(t, "the delivery to be given up", func() bool {
			call(t, "GET", api+"/"+ep.ID+"/deliveries?limit=1", staff, nil, &log)
			if len(log.Items) == 1 {
				failed = log.Items[0]
			}
			return failed.Status == "failed"
		})
		if len(failed.Attempts) != len(domain.WebhookSchedule) || failed.WebhookID != "notice:"+late.Id+":confirmed" {
			t.Fatalf("failed delivery %+v", failed)
		}
		// The log pages newest first: each page's cursor leads to older deliveries, none twice.
		seen, cursor := map[string]bool{}, ""
		for page := 0; ; page++ {
			var p struct {
				Items      []deliveryView
				NextCursor string `json:"next_cursor"`
			}
			if code := call(t, "GET", api+"/"+ep.ID+"/deliveries?limit=2&cursor="+cursor, staff, nil, &p); code != 200 || page > 10 {
				t.Fatalf("page %d: %d", page, code)
			}
			for _, d := range p.Items {
				if seen[d.ID] {
					t.Fatalf("delivery %s on two pages", d.ID)
				}
				seen[d.ID] = true
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if len(seen) != 4 { // the retried one, the one after it, the rotation check's, and this failed one
			t.Errorf("%d deliveries across the pages, want 4", len(seen))
		}
		if code := call(t, "GET", api+"/"+ep.ID+"/deliveries?cursor=bogus", staff, nil, nil); code != 422 {
			t.Errorf("a bogus cursor: %d, want 422", code)
		}

		rcv.answer(http.StatusOK)
		var replay struct{ Status string }
		if code := call(t, "POST", api+"/"+ep.ID+"/deliveries/"+failed.ID+"/replay", staff, nil, &replay); code != 202 || replay.Status != "pending" {
			t.Fatalf("replay: %d %+v", code, replay)
		}
		devtest.Eventually(t, "the replayed delivery", func() bool { return len(rcv.received()) == 1 })
		if c := rcv.received()[0]; c.header.Get("webhook-id") != failed.WebhookID || !c.verified[ep.Secret] {
			t.Fatalf("replayed %q verified %v", c.header.Get("webhook-id"), c.verified)
		}
		if code := call(t, "POST", api+"/"+ep.ID+"/deliveries/"+failed.ID+"/replay", staff, nil, nil); code != 409 {
			t.Errorf("replaying a delivered one: %d, want 409", code)
		}
		if code := call(t, "POST", api+"/"+ep.ID+"/deliveries/"+failed.ID+"/replay", annex, nil, nil); code != 404 {
			t.Errorf("another clinic replays: %d, want 404", code)
		}

		// Down from now on: the first failure starts the clock, five days
		// later the endpoint is disabled.
		rcv.answer(http.StatusBadGateway)
		f.settle(t, ginza)
		devtest.Eventually(t, "a failure", func() bool { return len(rcv.received()) == 1 })
		devtest.Eventually(t, "the failure to be recorded", func() bool {
			var e endpointView
			call(t, "GET", api+"/"+ep.ID, staff, nil, &e)
			return e.FailingSince != nil
		})
		f.advance(t, domain.DisableAfterFailing+time.Hour)
		f.settle(t, ginza)
		var got endpointView
		devtest.Eventually(t, "the endpoint to be disabled", func() bool {
			call(t, "GET", api+"/"+ep.ID, staff, nil, &got)
			return !got.Enabled
		})
		if !strings.Contains(got.DisabledReason, "every delivery failed since") {
			t.Errorf("disabled because %q", got.DisabledReason)
		}
		// The clinic is told, once, at the address it gave.
		m := f.waitForMail(t, "webhooks@ginza.example", "Webhook endpoint disabled")
		if !strings.Contains(m.Text, rcv.URL) || !strings.Contains(m.Text, `PATCH /v1/clinic/webhook-endpoints/`+ep.ID) ||
			!strings.Contains(m.HTML, "配信を停止しました") {
			t.Errorf("disabled email:\n%s", m.Text)
		}
		calls := len(rcv.received())
		f.settle(t, ginza) // a disabled endpoint is not delivered to; the email is not repeated
		if n := len(f.mailsTo("webhooks@ginza.example")); n != 1 || len(rcv.received()) != calls {
			t.Errorf("%d disabled emails, %d calls after the disable", n, len(rcv.received())-calls)
		}
		// The clinic fixes it and enables the endpoint again.
		var again endpointView
		if code := call(t, "PATCH", api+"/"+ep.ID, staff, map[string]any{"enabled": true}, &again); code != 200 || !again.Enabled || again.DisabledReason != "" {
			t.Fatalf("enable: %d %+v", code, again)
		}
	})

	t.Run("an endpoint is deleted by its clinic only", func(t *testing.T) {
		if code := call(t, "DELETE", api+"/"+ep.ID, annex, nil, nil); code != 404 {
			t.Errorf("another clinic deletes: %d", code)
		}
		if code := call(t, "DELETE", api+"/"+ep.ID, staff, nil, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if code := call(t, "GET", api+"/"+ep.ID, staff, nil, nil); code != 404 {
			t.Fatalf("after delete: %d", code)
		}
	})
}

// Found by the chaos run: the clinic's endpoint accepted a delivery, then
// the database connection died before the attempt was recorded, and the
// clinic was sent it again. The delivery is now leased before it is
// posted, and the accepted attempt recorded through the outage; the clinic
// gets the webhook once.
func TestAWebhookTheClinicAcceptedIsNotSentAgainWhenTheDatabaseDropsTheConnection(t *testing.T) {
	ctx := context.Background()
	f := startNotification(t)
	staff := f.issuer.Token(t, identity.Principal{Subject: "staff-ginza", Role: identity.Clinic, ClinicID: ginza})
	api := f.base + "/v1/clinic/webhook-endpoints"
	superuser, err := pgxpool.New(ctx, f.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer superuser.Close()

	var mu sync.Mutex
	got := map[string]int{}
	var killed atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		first := len(got) == 1 && got[r.Header.Get("webhook-id")] == 1
		mu.Unlock()
		if first {
			// As the clinic answers, the notification service loses every
			// database connection, again and again for 400 ms (Postgres
			// restarting, a reset link).
			go func() {
				for end := time.Now().Add(400 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
					var n int64
					_ = superuser.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
						WHERE datname = current_database() AND usename = 'notification'`).Scan(&n)
					killed.Add(n)
				}
			}()
			time.Sleep(20 * time.Millisecond)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	var ep endpointView
	if code := call(t, "POST", api, staff, map[string]any{"url": rcv.URL, "events": []string{"booking.confirmed"}}, &ep); code != 201 {
		t.Fatalf("register: %d", code)
	}

	b := newBooking(ginza, "en", "confirmed")
	f.publish(t, uuid.NewString(), subject.Booking(ginza, subject.Confirmed),
		&bookingv1.BookingConfirmed{Booking: b, DepositPaymentId: uuid.NewString()}, time.Now())
	var log struct{ Items []deliveryView }
	devtest.Eventually(t, "the delivery to be recorded as succeeded", func() bool {
		log.Items = nil
		return call(t, "GET", api+"/"+ep.ID+"/deliveries", staff, nil, &log) == 200 && len(log.Items) == 1 && log.Items[0].Status == "succeeded"
	})
	// Past the lease and every retry a lost record would have caused.
	f.advance(t, 2*time.Minute+domain.WebhookSchedule[1]+domain.WebhookSchedule[2])
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if killed.Load() == 0 {
		t.Fatal("no connection was dropped; the test proves nothing")
	}
	if id := "notice:" + b.Id + ":confirmed"; got[id] != 1 || len(got) != 1 {
		t.Fatalf("the clinic received %v, want %s once", got, id)
	}
	if len(log.Items[0].Attempts) != 1 || log.Items[0].Attempts[0].StatusCode != 204 {
		t.Fatalf("attempts %+v", log.Items[0].Attempts)
	}
}
