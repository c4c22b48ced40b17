package devstack

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// StripeRequest is one API call the payment service made.
type StripeRequest struct {
	Method         string
	Path           string
	Form           url.Values
	IdempotencyKey string
	StripeVersion  string
}

// StripeError is the body of a Stripe API error response.
type StripeError struct {
	Type        string `json:"type"`
	Code        string `json:"code,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
	Message     string `json:"message"`
	// PaymentIntent is the intent a card error leaves behind, as Stripe
	// attaches it (id, status, client_secret, …).
	PaymentIntent map[string]any `json:"payment_intent,omitempty"`
}

type stripeFault struct {
	method, pathPrefix string
	status             int
	body               StripeError
	// hold, when set, makes the request wait until it is closed and then
	// go to stripe-mock, instead of failing.
	hold chan struct{}
}

// StripeProxy stands between the payment service and stripe-mock. stripe-mock
// answers every call with a fixture and always succeeds; the proxy records
// each request (so a test can check what was really sent: amounts,
// off_session, the saved payment method, idempotency keys) and can answer
// chosen calls with a real Stripe-shaped error (a decline,
// authentication_required) that stripe-go parses as it would in production.
type StripeProxy struct {
	URL    string
	server *http.Server

	mu       sync.Mutex
	requests []StripeRequest
	faults   []stripeFault
	book     stripeBook
	// cash is each customer's cash balance (money transferred beyond
	// what their payments took), as a test sets it.
	cash map[string]int64
}

// StartStripeProxy forwards to target (stripe-mock's URL).
func StartStripeProxy(target string) (*StripeProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &StripeProxy{URL: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	// A caller that gave up (the chaos run breaks links) is no news: the
	// proxy answers it 502 as Stripe's edge would, without a log line.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		if err := p.seeRefund(resp); err != nil {
			return err
		}
		return bankTransferInstructions(resp)
	}
	p.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		req := StripeRequest{Method: r.Method, Path: r.URL.Path, Form: form,
			IdempotencyKey: r.Header.Get("Idempotency-Key"), StripeVersion: r.Header.Get("Stripe-Version")}
		if f, ok := p.record(req); ok && f.hold != nil {
			<-f.hold
		} else if ok {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Request-Id", "req_fault")
			w.WriteHeader(f.status)
			_ = json.NewEncoder(w).Encode(map[string]StripeError{"error": f.body})
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" && form.Get("payment_method_types[0]") == "customer_balance" {
			r.Header.Set(bankTransferHeader, form.Get("amount"))
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/customers/") && strings.HasSuffix(r.URL.Path, "/cash_balance") {
			p.serveCashBalance(w, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/customers/"), "/cash_balance"))
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/v1/balance_transactions" {
			p.serveBalanceTransactions(w, r) // stripe-mock's fixture knows nothing of this account
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.server.Serve(ln) }()
	return p, nil
}

func (p *StripeProxy) record(req StripeRequest) (stripeFault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	for i, f := range p.faults {
		if f.method == req.Method && strings.HasPrefix(req.Path, f.pathPrefix) {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			return f, true
		}
	}
	return stripeFault{}, false
}

// FailNext answers the next method call under pathPrefix with status and body.
func (p *StripeProxy) FailNext(method, pathPrefix string, status int, body StripeError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, stripeFault{method: method, pathPrefix: pathPrefix, status: status, body: body})
}

// HoldNext makes the next method call under pathPrefix wait until release
// is called, then answers it as usual: a response Stripe takes its time
// with, for a webhook to overtake.
func (p *StripeProxy) HoldNext(method, pathPrefix string) (release func()) {
	hold := make(chan struct{})
	p.mu.Lock()
	p.faults = append(p.faults, stripeFault{method: method, pathPrefix: pathPrefix, hold: hold})
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(hold) }) }
}

// Requests returns every request received so far.
func (p *StripeProxy) Requests() []StripeRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]StripeRequest(nil), p.requests...)
}

// Close stops the proxy.
func (p *StripeProxy) Close() error { return p.server.Close() }
