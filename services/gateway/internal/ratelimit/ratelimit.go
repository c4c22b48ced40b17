// Package ratelimit keeps any one client from taking the platform, or its
// Stripe account, for itself: a token bucket per client (by IP), and one
// shared bucket for the requests that call Stripe (booking creates a
// customer and a PaymentIntent), so no outside traffic can exhaust Stripe's
// own rate limit and stop everyone's payments.
package ratelimit

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/saisei-health/platform/pkg/httpkit"
)

// ProblemRateLimited answers a client over its limit.
var ProblemRateLimited = httpkit.DefineProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests")

// Config sets the limits.
type Config struct {
	// PerClient requests per second, with Burst, for each client IP.
	PerClient rate.Limit
	Burst     int
	// StripeCalls per second, with StripeBurst, across all clients, for
	// the routes that call Stripe (POST /v1/bookings).
	StripeCalls rate.Limit
	StripeBurst int
	// ClientIPHeader, when the gateway runs behind a proxy that sets it
	// (X-Forwarded-For, whose first address is the client), names the
	// client; otherwise the connection's address does.
	ClientIPHeader string
}

// Defaults: generous for a person or an app, well under Stripe's live limit
// of 100 requests a second (a booking makes two Stripe calls).
var Defaults = Config{PerClient: 20, Burst: 40, StripeCalls: 10, StripeBurst: 20}

// Limiter limits requests.
type Limiter struct {
	cfg    Config
	stripe *rate.Limiter

	mu      sync.Mutex
	clients map[string]*client
	swept   time.Time
}

type client struct {
	limiter *rate.Limiter
	seen    time.Time
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	return &Limiter{cfg: cfg, stripe: rate.NewLimiter(cfg.StripeCalls, cfg.StripeBurst), clients: map[string]*client{}, swept: time.Now()}
}

// callsStripe says whether a request leads to Stripe calls.
func callsStripe(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/bookings"
}

// Wrap limits every request to next but the health check. Over the limit,
// the answer is 429 rate-limited with Retry-After (whole seconds).
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		now := time.Now()
		if wait, ok := l.allow(l.clientLimiter(l.clientOf(r), now), now); !ok {
			tooMany(w, wait, "this client sends too many requests")
			return
		}
		if callsStripe(r) {
			if wait, ok := l.allow(l.stripe, now); !ok {
				tooMany(w, wait, "bookings are arriving faster than the payment provider takes them")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allow takes a token now, or says how long until one is free.
func (l *Limiter) allow(lim *rate.Limiter, now time.Time) (time.Duration, bool) {
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second, false
	}
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return wait, false
	}
	return 0, true
}

func tooMany(w http.ResponseWriter, wait time.Duration, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	httpkit.WriteProblem(w, ProblemRateLimited.New(detail))
}

func (l *Limiter) clientOf(r *http.Request) string {
	if h := l.cfg.ClientIPHeader; h != "" {
		if v := r.Header.Get(h); v != "" {
			first, _, _ := strings.Cut(v, ",")
			return strings.TrimSpace(first)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientLimiter is the bucket of one client; buckets idle for ten minutes
// are forgotten, so memory stays bounded by recent clients.
func (l *Limiter) clientLimiter(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, c := range l.clients {
			if now.Sub(c.seen) > 10*time.Minute {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[key]
	if !ok {
		c = &client{limiter: rate.NewLimiter(l.cfg.PerClient, l.cfg.Burst)}
		l.clients[key] = c
	}
	c.seen = now
	return c.limiter
}
