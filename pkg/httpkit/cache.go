package httpkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

// Cacheable serves public GET answers so that a frontend or a CDN keeps
// them and revalidates instead of downloading them again: a 200 gets a
// strong ETag (a hash of its body), Cache-Control public for maxAge, and
// Vary on the language; a request whose If-None-Match names the current
// ETag (or its compressed variant) is answered 304 with no body. Other
// answers pass through untouched.
func Cacheable(h http.Handler, maxAge time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.status != http.StatusOK {
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
			return
		}
		sum := sha256.Sum256(rec.body.Bytes())
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge.Seconds())))
		w.Header().Add("Vary", "Accept-Language")
		if matches(r.Header.Get("If-None-Match"), etag) {
			w.Header().Del("Content-Length")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(rec.body.Bytes())
		}
	})
}

// matches reports whether an If-None-Match header names etag, weakly
// compared (RFC 9110 §13.1.2), its compressed variant included.
func matches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag || strings.Replace(t, compressedSuffix+`"`, `"`, 1) == etag {
			return true
		}
	}
	return false
}

// compressedSuffix marks the ETag of a compressed answer: it must differ
// from the plain one's (RFC 9110 §8.8.3).
const compressedSuffix = "-gzip"

// BestSpeed: JSON compresses about sevenfold even so, and the CPU goes to
// serving more answers rather than shaving the last bytes.
var compress, _ = gzhttp.NewWrapper(gzhttp.MinSize(1024), gzhttp.SuffixETag(compressedSuffix),
	gzhttp.CompressionLevel(gzip.BestSpeed))

// Compressed gzips answers of 1 KB and more for clients that accept it
// (klauspost/compress's gzhttp), adding Vary: Accept-Encoding.
func Compressed(h http.Handler) http.Handler { return compress(h) }

// recorder keeps an answer to look at before it is sent.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
