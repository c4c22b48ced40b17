package ratelimit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestEachClientHasItsOwnBucketAndStripeCallsShareOne(t *testing.T) {
	l := New(Config{PerClient: 1, Burst: 3, StripeCalls: 1, StripeBurst: 2})
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	call := func(method, path, ip string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = ip + ":40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := call("GET", "/v1/treatments", "203.0.113.7"); w.Code != 204 {
			t.Fatalf("request %d within the burst: %d", i+1, w.Code)
		}
	}
	w := call("GET", "/v1/treatments", "203.0.113.7")
	var p struct{ Type string }
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	retry, _ := strconv.Atoi(w.Header().Get("Retry-After"))
	if w.Code != 429 || p.Type != "https://saisei.health/problems/rate-limited" || retry < 1 {
		t.Fatalf("over the limit: %d %s Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if w := call("GET", "/healthz", "203.0.113.7"); w.Code != 204 {
		t.Fatalf("the health check is never limited: %d", w.Code)
	}
	if w := call("GET", "/v1/treatments", "198.51.100.9"); w.Code != 204 {
		t.Fatalf("another client is limited by the first: %d", w.Code)
	}
	// Bookings call Stripe: from many clients, they share one bucket.
	got := []int{}
	for i := range 4 {
		got = append(got, call("POST", "/v1/bookings", "192.0.2."+strconv.Itoa(i+1)).Code)
	}
	if got[0] != 204 || got[1] != 204 || got[2] != 429 || got[3] != 429 {
		t.Fatalf("bookings from four clients: %v, want two through", got)
	}
}

func TestTheClientIsReadFromTheProxysHeaderWhenConfigured(t *testing.T) {
	l := New(Config{PerClient: 1, Burst: 1, StripeCalls: 10, StripeBurst: 10, ClientIPHeader: "X-Forwarded-For"})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.7, 10.0.0.2")
	if got := l.clientOf(r); got != "203.0.113.7" {
		t.Fatalf("client %q", got)
	}
}
