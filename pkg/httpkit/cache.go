package httpkit

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoKey names the answer a request will get, so that Public can serve it
// again without asking the handler; it must change whenever the answer
// would (the data's version, the language, the query). "" keeps the
// request's answer out of the memo.
type MemoKey func(r *http.Request) string

// Public serves GET answers that are the same for everyone, so that
// clients and CDNs keep them and revalidate instead of downloading them
// again, and so that the platform encodes each one once:
//   - a 200 gets a strong ETag (a hash of its body), Cache-Control public
//     for maxAge, and Vary on the language and the encoding;
//   - a client that sends Accept-Encoding gzip gets it gzipped (answers of
//     1 KB and more), under the ETag's "-gzip" variant (RFC 9110 §8.8.3);
//   - a request whose If-None-Match names either ETag gets 304, no body;
//   - with key, the encoded answer (plain, gzipped, ETag) is kept in memory
//     and served to the next request with the same key.
//
// Other answers (errors) pass through untouched and are not kept.
func Public(h http.Handler, maxAge time.Duration, key MemoKey) http.Handler {
	memo := &memo{max: 1024, maxBytes: memoBytes, entries: map[string]*encoded{}}
	cacheControl := "public, max-age=" + strconv.Itoa(int(maxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		k := ""
		if key != nil {
			k = key(r)
		}
		e := memo.get(k)
		if e == nil {
			rec := &recorder{header: http.Header{}, status: http.StatusOK}
			h.ServeHTTP(rec, r)
			if rec.status != http.StatusOK {
				for name, v := range rec.header {
					w.Header()[name] = v
				}
				w.WriteHeader(rec.status)
				_, _ = w.Write(rec.body.Bytes())
				return
			}
			// A kept answer is compressed once for every client to come;
			// one answered once is compressed only for a client that
			// takes gzip (a service asking for a treatment does not).
			e = encode(rec, k != "" || acceptsGzip(r.Header.Get("Accept-Encoding")))
			memo.put(k, e)
		}
		e.serve(w, r, cacheControl)
	})
}

// encoded is an answer ready to send, both ways.
type encoded struct {
	header     http.Header
	plain, gz  []byte
	etag, gzip string
}

// minCompressed is the smallest answer worth gzipping.
const minCompressed = 1024

func encode(rec *recorder, compress bool) *encoded {
	e := &encoded{header: rec.header, plain: append([]byte(nil), rec.body.Bytes()...)}
	sum := sha256.Sum256(e.plain)
	tag := base64.RawURLEncoding.EncodeToString(sum[:18])
	e.etag, e.gzip = `"`+tag+`"`, `"`+tag+`-gzip"`
	if compress && len(e.plain) >= minCompressed {
		var b bytes.Buffer
		// Best speed: JSON still shrinks about sixfold, and the CPU goes to
		// answering rather than to the last bytes.
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		_, _ = zw.Write(e.plain)
		_ = zw.Close()
		e.gz = b.Bytes()
	}
	return e
}

func (e *encoded) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	for name, v := range e.header {
		h[name] = v
	}
	h.Set("Cache-Control", cacheControl)
	h.Set("Vary", "Accept-Language, Accept-Encoding")
	body, etag := e.plain, e.etag
	if e.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = e.gz, e.gzip
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if e.matches(r.Header.Get("If-None-Match")) {
		h.Del("Content-Length")
		h.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// matches reports whether an If-None-Match header names the answer, either
// encoding, weakly compared (RFC 9110 §13.1.2).
func (e *encoded) matches(header string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == e.etag || t == e.gzip {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding: gzip unless refused with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// memo keeps encoded answers by key. It is bounded, in entries and in
// bytes, by dropping everything when full: keys carry the data's version,
// so old ones are dead anyway. An answer larger than a quarter of the
// byte budget (a page of 100 treatments) is not kept.
type memo struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	entries  map[string]*encoded
}

// memoBytes is a memo's byte budget: at 10,000 treatments, a count bound
// alone let the kept answers grow to 80 MB of the catalog's heap.
const memoBytes = 8 << 20

func (m *memo) get(k string) *encoded {
	if k == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[k]
}

func (m *memo) put(k string, e *encoded) {
	if k == "" {
		return
	}
	size := len(k) + len(e.plain) + len(e.gz)
	if size > m.maxBytes/4 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= m.max || m.bytes+size > m.maxBytes {
		clear(m.entries)
		m.bytes = 0
	}
	m.entries[k] = e
	m.bytes += size
}

// recorder keeps an answer to look at before it is sent.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
