package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// clinicEndpoint is the clinic's webhook receiver, as a clinic's system
// would run it: it verifies each delivery with a Standard Webhooks library,
// answers some first attempts 500 so the platform retries, and records
// which webhook-ids it accepted.
type clinicEndpoint struct {
	URL    string
	server *http.Server
	rng    *rand.Rand
	// failRate is the share of first attempts answered 500.
	failRate float64

	mu       sync.Mutex
	hook     *standardwebhooks.Webhook
	accepted map[string]int    // webhook-id → deliveries answered 2xx
	kinds    map[string]string // webhook-id → "<booking id> <type>"
	refused  map[string]bool   // webhook-ids answered 500 once
	forged   int               // deliveries whose signature did not verify
}

func startClinicEndpoint(seed uint64, failRate float64) (*clinicEndpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &clinicEndpoint{URL: "http://" + ln.Addr().String() + "/hooks", rng: rand.New(rand.NewPCG(seed, 2)), failRate: failRate,
		accepted: map[string]int{}, kinds: map[string]string{}, refused: map[string]bool{}}
	e.server = &http.Server{Handler: http.HandlerFunc(e.receive), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.server.Serve(ln) }()
	return e, nil
}

func (e *clinicEndpoint) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hook == nil || e.hook.Verify(body, r.Header) != nil {
		e.forged++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get("webhook-id")
	if !e.refused[id] && e.rng.Float64() < e.failRate {
		e.refused[id] = true
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Booking struct {
				ID string `json:"id"`
			} `json:"booking"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	e.accepted[id]++
	e.kinds[id] = ev.Data.Booking.ID + " " + ev.Type
	w.WriteHeader(http.StatusNoContent)
}

func (e *clinicEndpoint) close() { _ = e.server.Close() }

// register registers the endpoint for the clinic's booking events, with
// the clinic's token, and keeps the secret it is given.
func (e *clinicEndpoint) register(ctx context.Context, c *client, clinicToken string) error {
	a, err := c.do(ctx, "POST", "/v1/clinic/webhook-endpoints", clinicToken, map[string]any{
		"url": e.URL, "contact_email": "it@clinic.example",
		"events": []string{"booking.confirmed", "booking.ready_for_administration", "booking.administered"},
	}, nil)
	if err != nil {
		return err
	}
	if a.Status != http.StatusCreated {
		return fmt.Errorf("registering the clinic's webhook endpoint: %d %s", a.Status, a.Body)
	}
	var created struct {
		Secret string `json:"secret"`
	}
	if err := a.decode(&created); err != nil {
		return err
	}
	hook, err := standardwebhooks.NewWebhook(created.Secret)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.hook = hook
	e.mu.Unlock()
	return nil
}

// webhooks: each notice delivered to the clinic's endpoint, each webhook-id
// accepted once.
func (c *checker) webhooks(context.Context) error {
	if c.endpoint == nil {
		return nil
	}
	delivered := c.add("each clinic notice delivered to the clinic's webhook endpoint, signed")
	once := c.add("each webhook-id accepted at most once")
	// As with emails: only a kill of notification between the clinic's
	// answer and its record may repeat a delivery.
	once.Exception = c.killed("notification")
	e := c.endpoint
	e.mu.Lock()
	defer e.mu.Unlock()
	got := map[string]map[string]int{} // booking → type → webhook-ids accepted
	for id, n := range e.accepted {
		once.Checked++
		if n > 1 {
			once.fail("%s (%s) accepted %d times", id, e.kinds[id], n)
		}
		var booking, typ string
		_, _ = fmt.Sscan(e.kinds[id], &booking, &typ)
		if got[booking] == nil {
			got[booking] = map[string]int{}
		}
		got[booking][typ]++
	}
	if e.forged > 0 {
		delivered.fail("%d deliveries did not verify", e.forged)
	}
	for _, j := range c.journeys {
		if j.BookingID == "" {
			continue
		}
		delivered.Checked++
		want := map[string]int{"booking.confirmed": 1}
		if !j.QCFails {
			want["booking.ready_for_administration"] = 1
			want["booking.administered"] = 1
		}
		if fmt.Sprint(got[j.BookingID]) != fmt.Sprint(want) {
			delivered.fail("booking %s: delivered %v, want %v", j.BookingID, got[j.BookingID], want)
		}
	}
	return nil
}
