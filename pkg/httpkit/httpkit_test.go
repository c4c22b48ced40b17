package httpkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/saisei-health/platform/pkg/validation"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type quoteRequest struct {
	TreatmentID string `json:"treatment_id"`
	DoseCells   int64  `json:"dose_cells"`
	Patient     struct {
		Email string `json:"email"`
	} `json:"patient"`
}

func TestDecodeJSONNamesTheOffendingField(t *testing.T) {
	cases := []struct {
		body, contentType string
		status            int
		field             string
	}{
		{`{"treatment_id": "x", "dose_cells": "many"}`, "application/json", 400, "dose_cells"},
		{`{"treatment_id": "x", "patient": {"email": 5}}`, "application/json", 400, "patient.email"},
		{`{"treatment_id": "x", "extra": 1}`, "", 400, "extra"},
		{`{"treatment_id": `, "application/json", 400, "body"},
		{``, "application/json", 400, "body"},
		{`{} {}`, "application/json", 400, "body"},
		{`[1,2]`, "application/json", 400, "body"},
		{`{"treatment_id": "x"}`, "text/plain", 415, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/v1/quotes", strings.NewReader(c.body))
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		var dst quoteRequest
		err := DecodeJSON(r, &dst)
		var p *Problem
		if !errors.As(err, &p) || p.Status != c.status {
			t.Errorf("%q: err = %v, want status %d", c.body, err, c.status)
			continue
		}
		if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
			t.Errorf("%q: errors = %+v, want field %q", c.body, p.Errors, c.field)
		}
	}
	big := httptest.NewRequest("POST", "/v1/quotes", strings.NewReader(`{"treatment_id": "`+strings.Repeat("x", MaxBody)+`"}`))
	var p *Problem
	if err := DecodeJSON(big, &quoteRequest{}); !errors.As(err, &p) || p.Status != 413 || p.Slug() != "payload-too-large" {
		t.Errorf("an over-long body: %v, want 413 payload-too-large", err)
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"treatment_id":"t","dose_cells":100}`))
	var ok quoteRequest
	if err := DecodeJSON(r, &ok); err != nil || ok.DoseCells != 100 {
		t.Fatalf("valid body: %v %+v", err, ok)
	}
}

func TestErrorEncoderNeverLeaksInternalErrors(t *testing.T) {
	errExpired := errors.New("quote has expired")
	expired := DefineProblem(http.StatusConflict, "quote-expired", "Quote has expired")
	enc := ErrorEncoder(slog.New(slog.NewTextHandler(io.Discard, nil)), ProblemTable{{Err: errExpired, Type: expired}})
	for _, c := range []struct {
		err    error
		status int
		typ    string
	}{
		{errors.New("pq: password authentication failed for user booking"), 500, ProblemBase + "internal"},
		{fmt.Errorf("%w: valid until yesterday", errExpired), 409, ProblemBase + "quote-expired"},
		{Invalid(validation.FieldError{Field: "currency", Message: "unsupported"}), 422, ProblemBase + "validation"},
		{fmt.Errorf("issue: %w", validation.FieldError{Field: "dose_cells", Message: "must be one of [1]"}), 422, ProblemBase + "validation"},
	} {
		w := httptest.NewRecorder()
		enc(context.Background(), c.err, w)
		var p Problem
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != c.status || p.Type != c.typ || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "password") {
			t.Errorf("internal detail leaked: %s", w.Body)
		}
	}
}

func TestRouterAnswersUnknownRoutesWithAProblem(t *testing.T) {
	rt := NewRouter()
	rt.Handle("GET /v1/things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = WriteJSON(w, 200, r.PathValue("id")) }))
	for path, want := range map[string]int{"/v1/things/7": 200, "/v1/nothing": 404, "/healthz": 200} {
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("GET %s = %d, want %d", path, w.Code, want)
		}
	}
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("DELETE", "/v1/things/7", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("DELETE = %d %v, want a 405 problem with Allow", w.Code, w.Header())
	}
}

type created struct{ ID string }

func (created) StatusCode() int { return http.StatusCreated }

func (created) Headers() http.Header { return http.Header{"Idempotent-Replayed": {"true"}} }

func TestEncodeResponseHonoursStatusCoderAndHeaderer(t *testing.T) {
	w := httptest.NewRecorder()
	if err := EncodeResponse(context.Background(), w, created{ID: "b1"}); err != nil {
		t.Fatal(err)
	}
	if w.Code != 201 || w.Header().Get("Idempotent-Replayed") != "true" || strings.TrimSpace(w.Body.String()) != `{"ID":"b1"}` {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

type deleted struct{}

func (deleted) StatusCode() int { return http.StatusNoContent }

// A 204 carries no body: writing one fails in net/http and would turn a
// successful delete into a logged 500.
func TestEncodeResponseWritesNoBodyFor204(t *testing.T) {
	w := httptest.NewRecorder()
	if err := EncodeResponse(context.Background(), w, deleted{}); err != nil || w.Code != 204 || w.Body.Len() != 0 {
		t.Fatalf("%v %d %q", err, w.Code, w.Body)
	}
}

func TestProblemTableNamesFieldsAndFirstRuleWins(t *testing.T) {
	errKey := errors.New("Idempotency-Key header is required")
	required := DefineProblem(http.StatusBadRequest, "idempotency-key-required", "Idempotency-Key header is required")
	table := ProblemTable{{Err: errKey, Type: required}, {Err: errKey, Type: ProblemInternal}}
	p := table.Problem(fmt.Errorf("%w: %w", errKey, validation.FieldError{Field: "Idempotency-Key", Message: "send one"}))
	if p == nil || p.Status != 400 || p.Slug() != "idempotency-key-required" || len(p.Errors) != 1 || p.Errors[0].Field != "Idempotency-Key" {
		t.Fatalf("problem = %+v", p)
	}
	if table.Problem(errors.New("other")) != nil {
		t.Fatal("an unmatched error got a problem")
	}
	found := false
	for _, pt := range ProblemTypes() {
		found = found || pt == required
	}
	if !found {
		t.Fatal("a defined problem type is not listed")
	}
}

// At the edge, an outside caller's trace is linked, not joined, and its
// baggage never reaches the services.
func TestAPublicEndpointStartsItsOwnTraceAndDropsBaggage(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	var inner trace.SpanContext
	var bag string
	h := InstrumentPublic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = trace.SpanContextFromContext(r.Context())
		bag = baggage.FromContext(r.Context()).String() + r.Header.Get("Baggage")
	}), "gateway", tp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := httptest.NewRequest("GET", "/v1/treatments", nil)
	outside := "4bf92f3577b34da6a3ce929d0e0e4736"
	r.Header.Set("Traceparent", "00-"+outside+"-00f067aa0ba902b7-01")
	r.Header.Set("Baggage", "user=admin,role=admin")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if inner.TraceID().String() == outside || !inner.IsValid() {
		t.Fatalf("the request joined the caller's trace %s", inner.TraceID())
	}
	ended := spans.Ended()
	if len(ended) != 1 || len(ended[0].Links()) != 1 || ended[0].Links()[0].SpanContext.TraceID().String() != outside {
		t.Fatalf("the server span does not link the caller's trace: %+v", ended)
	}
	if bag != "" {
		t.Fatalf("inbound baggage reached the handler: %q", bag)
	}
}

// A dependency that is down is a 503 the client may retry, never a 500.
func TestADependencyDownIsA503WithRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	ErrorEncoder(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)(context.Background(),
		fmt.Errorf("store: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), w)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "dependency-unavailable") {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

// The kept answers stay within their byte budget, and a page too large to
// be worth keeping is not kept at all.
func TestTheMemoIsBoundedInBytes(t *testing.T) {
	m := &memo{max: 1024, maxBytes: 1000, entries: map[string]*encoded{}}
	for i := range 50 {
		m.put(strconv.Itoa(i), &encoded{plain: make([]byte, 90)})
		if m.bytes > m.maxBytes {
			t.Fatalf("after %d answers the memo holds %d bytes, budget %d", i+1, m.bytes, m.maxBytes)
		}
	}
	m.put("page", &encoded{plain: make([]byte, 300)})
	if m.get("page") != nil {
		t.Fatal("an answer over a quarter of the budget was kept")
	}
	if m.get("49") == nil {
		t.Fatal("the latest answer was not kept")
	}
}
