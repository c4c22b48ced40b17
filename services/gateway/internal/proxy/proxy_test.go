package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/saisei-health/platform/services/gateway/internal/proxy"
)

// A service that is restarting (killed, the chaos run does it) answers no
// connection: the client is told 503 with Retry-After, and retries.
func TestAServiceThatDoesNotAnswerIs503WithRetryAfter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close() // nothing listens there now

	h := proxy.To(down, noop.NewTracerProvider(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/bookings", strings.NewReader(`{"quote_id":"q"}`)))

	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != http.StatusServiceUnavailable || p.Status != 503 || !strings.HasSuffix(p.Type, "/upstream-unavailable") ||
		rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %v %s: %s", rec.Code, rec.Header(), p.Type, rec.Body)
	}
}
