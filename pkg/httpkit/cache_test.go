package httpkit_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/httpkit"
)

// A catalog answer is sent gzipped to clients that take it, a client or
// CDN that has it revalidates it with its ETag and gets 304, no body, and
// the platform builds each answer once per key.
func TestPublicAnswersAreCompressedRevalidatedAndBuiltOnce(t *testing.T) {
	body := `{"items":[` + strings.Repeat(`{"id":"ginza-adipose-msc-stroke-iv","name":"Adipose MSC"},`, 100) + `{}]}`
	var built atomic.Int64
	version := "v1"
	h := httpkit.Public(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		built.Add(1)
		if r.URL.Path == "/missing" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}), time.Minute, func(r *http.Request) string { return version + r.URL.String() })
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string, header map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		// The transport must not ask for gzip on its own: the test does.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = gz
		}
		b, _ := io.ReadAll(r)
		return resp, string(b)
	}

	plain, got := get("/v1/treatments", nil)
	etag := plain.Header.Get("ETag")
	if plain.StatusCode != 200 || got != body || etag == "" || plain.Header.Get("Cache-Control") != "public, max-age=60" ||
		plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("plain: %d %v", plain.StatusCode, plain.Header)
	}
	zipped, got := get("/v1/treatments", map[string]string{"Accept-Encoding": "gzip"})
	zetag := zipped.Header.Get("ETag")
	if zipped.StatusCode != 200 || got != body || zipped.Header.Get("Content-Encoding") != "gzip" || zetag == etag || zetag == "" ||
		!strings.Contains(strings.Join(zipped.Header.Values("Vary"), ","), "Accept-Encoding") {
		t.Fatalf("gzip: %d %v", zipped.StatusCode, zipped.Header)
	}
	for _, tag := range []string{etag, zetag, `W/` + etag, `"other", ` + zetag} {
		again, got := get("/v1/treatments", map[string]string{"If-None-Match": tag, "Accept-Encoding": "gzip"})
		if again.StatusCode != http.StatusNotModified || got != "" {
			t.Errorf("If-None-Match %s: %d, %d bytes", tag, again.StatusCode, len(got))
		}
	}
	if stale, _ := get("/v1/treatments", map[string]string{"If-None-Match": `"stale"`}); stale.StatusCode != 200 {
		t.Errorf("a stale ETag: %d", stale.StatusCode)
	}
	if n := built.Load(); n != 1 {
		t.Errorf("the answer was built %d times for one key", n)
	}
	version = "v2" // the data changed: a new key, a new answer
	if again, _ := get("/v1/treatments", nil); again.StatusCode != 200 || built.Load() != 2 {
		t.Errorf("after a new version: %d, built %d times", again.StatusCode, built.Load())
	}
	for range 2 {
		if missing, _ := get("/missing", nil); missing.StatusCode != 404 || missing.Header.Get("ETag") != "" || missing.Header.Get("Cache-Control") != "" {
			t.Errorf("a 404 is not cached: %d %v", missing.StatusCode, missing.Header)
		}
	}
	if n := built.Load(); n != 4 {
		t.Errorf("errors are kept: built %d times, want 4", n)
	}
	if plain, _ := get("/v1/treatments", map[string]string{"Accept-Encoding": "gzip;q=0"}); plain.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 was answered gzipped")
	}
}

// An answer that is not kept (no key: a treatment read live by quoting) is
// gzipped for a client that takes it and sent plain, uncompressed work
// saved, to one that does not; both carry their ETag.
func TestAnAnswerNotKeptIsCompressedOnlyForClientsThatTakeGzip(t *testing.T) {
	body := strings.Repeat(`{"id":"ginza-adipose-msc-stroke-iv"},`, 100)
	srv := httptest.NewServer(httpkit.Public(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}), time.Minute, nil))
	defer srv.Close()
	for _, c := range []struct{ accept, encoding string }{{"", ""}, {"gzip", "gzip"}, {"", ""}} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/treatments/x", nil)
		if c.accept != "" {
			req.Header.Set("Accept-Encoding", c.accept)
		}
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := io.ReadAll(r)
		resp.Body.Close()
		if string(got) != body || resp.Header.Get("Content-Encoding") != c.encoding || resp.Header.Get("ETag") == "" {
			t.Fatalf("Accept-Encoding %q: %q, ETag %q, %d bytes", c.accept, resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"), len(got))
		}
	}
}
