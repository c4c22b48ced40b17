package e2e

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

func serviceOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

// assertOneTrace finds the trace of the booking's creation and checks that
// every service (and the gateway) has spans in it: the deposit webhook, the
// clinic's reports, the balance charge, the notices and the emails all
// continue the booking's trace.
func (p *platform) assertOneTrace(t *testing.T, bookingID string) {
	t.Helper()
	spans := p.spans.GetSpans()
	var bookingTrace string
	for _, s := range spans {
		if serviceOf(s) == "booking" && s.Name == "POST /v1/bookings" && hasAttr(s.Attributes, "booking.id", bookingID) {
			bookingTrace = s.SpanContext.TraceID().String()
		}
	}
	if bookingTrace == "" {
		t.Fatalf("no booking span carries booking.id %s", bookingID)
	}
	names := map[string][]string{}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() == bookingTrace {
			names[serviceOf(s)] = append(names[serviceOf(s)], s.Name)
		}
	}
	for _, svc := range []string{"gateway", "catalog", "quoting", "booking", "payment", "notification"} {
		if len(names[svc]) == 0 {
			t.Errorf("service %s has no span in the booking's trace %s", svc, bookingTrace)
		}
	}
	// The later, out-of-band steps must be in it too, not just creation.
	for _, want := range []struct{ svc, name string }{
		{"payment", "stripe payment_intent.succeeded"},
		{"booking", "booking harvest"},
		{"booking", "booking cells-ready"},
		{"booking", "booking administered"},
		{"notification", "smtp send booking_confirmed"},
		{"notification", "smtp send balance_charged"},
	} {
		if !slices.Contains(names[want.svc], want.name) {
			t.Errorf("%s span %q missing from the booking's trace", want.svc, want.name)
		}
	}
	if t.Failed() {
		var svcs []string
		for s := range names {
			svcs = append(svcs, fmt.Sprintf("%s: %v", s, names[s]))
		}
		sort.Strings(svcs)
		t.Logf("spans in the booking's trace:\n%v", svcs)
	}
}

func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.AsString() == value {
			return true
		}
	}
	return false
}

// assertNoPersonalDataInSpans checks every span the journey produced, in
// every service: no attribute, event or status carries the patient's name,
// email or screening answers. Traces go to a vendor's backend; health
// information and contact details stay in the services' databases.
func (p *platform) assertNoPersonalDataInSpans(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range p.spans.GetSpans() {
		var texts []string
		for _, a := range s.Attributes {
			texts = append(texts, string(a.Key)+"="+a.Value.String())
		}
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			for _, a := range e.Attributes {
				texts = append(texts, a.Value.String())
			}
		}
		texts = append(texts, s.Name, s.Status.Description)
		for _, text := range texts {
			for _, secret := range secrets {
				if strings.Contains(text, secret) {
					t.Errorf("span %q of %s carries %q: %s", s.Name, serviceOf(s), secret, text)
				}
			}
		}
	}
}
