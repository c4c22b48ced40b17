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

// The service sees the client's own Accept-Encoding, and nothing when the
// client sent none: a compressed catalog answer is passed on as it is, and
// a client that did not ask for gzip gets the plain answer with its ETag.
func TestTheClientsAcceptEncodingReachesTheService(t *testing.T) {
	var seen []string
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Accept-Encoding"))
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("ETag", `"x-gzip"`)
			_, _ = w.Write([]byte("compressed bytes"))
			return
		}
		w.Header().Set("ETag", `"x"`)
		_, _ = io.WriteString(w, `{"items":[]}`)
	}))
	defer svc.Close()
	target, _ := url.Parse(svc.URL)
	gw := httptest.NewServer(proxy.To(target, noop.NewTracerProvider(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer gw.Close()
	for _, accept := range []string{"", "gzip"} {
		req, _ := http.NewRequest("GET", gw.URL+"/v1/treatments", nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, wantTag := `{"items":[]}`, `"x"`
		if accept == "gzip" {
			want, wantTag = "compressed bytes", `"x-gzip"`
		}
		if string(body) != want || resp.Header.Get("ETag") != wantTag {
			t.Errorf("Accept-Encoding %q: %q with ETag %s", accept, body, resp.Header.Get("ETag"))
		}
	}
	if len(seen) != 2 || seen[0] != "" || seen[1] != "gzip" {
		t.Fatalf("the service saw Accept-Encoding %q, want none, then gzip", seen)
	}
}
