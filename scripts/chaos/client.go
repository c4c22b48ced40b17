package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// client calls the gateway as a well-behaved frontend does: every request
// that failed for a reason that may pass (no connection, a 5xx, a 429) is
// sent again, with the same Idempotency-Key, after an exponential backoff
// with jitter, honouring Retry-After; anything else is the answer.
type client struct {
	base  string
	http  *http.Client
	stats *clientStats
	// ip is the address the client calls from, as the CDN in front of the
	// gateway reports it (X-Forwarded-For): each patient, each clinic and
	// Stripe have their own, so the per-client rate limit sees them apart.
	ip string
}

// from is the client calling from ip.
func (c *client) from(ip string) *client {
	cp := *c
	cp.ip = ip
	return &cp
}

// clientStats counts what the clients saw, for the report and for the
// "never 500" invariant.
type clientStats struct {
	mu        sync.Mutex
	status    map[int]int
	connErrs  int
	retries   int
	retryWait time.Duration
	// fiveHundreds keeps a few of the 500 answers for the report, odd a
	// few of the other unexpected ones (4xx but 404, 409 and 429).
	fiveHundreds, odd []string
}

func newClientStats() *clientStats { return &clientStats{status: map[int]int{}} }

func (s *clientStats) saw(status int, method, path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[status]++
	if status == http.StatusInternalServerError && len(s.fiveHundreds) < 10 {
		s.fiveHundreds = append(s.fiveHundreds, fmt.Sprintf("%s %s: %.300s", method, path, body))
	}
	if status >= 400 && status < 500 && status != 404 && status != 409 && status != 429 && len(s.odd) < 10 {
		s.odd = append(s.odd, fmt.Sprintf("%d %s %s: %.300s", status, method, path, body))
	}
}

func (s *clientStats) connError() {
	s.mu.Lock()
	s.connErrs++
	s.mu.Unlock()
}

func (s *clientStats) retried(wait time.Duration) {
	s.mu.Lock()
	s.retries++
	s.retryWait += wait
	s.mu.Unlock()
}

// answer is one HTTP answer.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// problemType is the slug of a problem+json answer ("" if not one).
func (a answer) problemType() string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(a.Body, &p)
	for i := len(p.Type) - 1; i >= 0; i-- {
		if p.Type[i] == '/' {
			return p.Type[i+1:]
		}
	}
	return p.Type
}

func (a answer) decode(v any) error {
	if err := json.Unmarshal(a.Body, v); err != nil {
		return fmt.Errorf("decoding %.200s: %w", a.Body, err)
	}
	return nil
}

// errGaveUp is a request that still failed when its journey's time ran out.
var errGaveUp = errors.New("gave up retrying")

// retryable is an answer a client should send again.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// do sends one request until it gets an answer that is not retryable, or
// ctx ends. body is JSON (or raw bytes); header adds headers.
func (c *client) do(ctx context.Context, method, path, token string, body any, header map[string]string) (answer, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return answer{}, err
		}
	}
	backoff := 50 * time.Millisecond
	var last string
	for attempt := 0; ; attempt++ {
		a, err := c.once(ctx, method, path, token, raw, header)
		switch {
		case err != nil:
			c.stats.connError()
			last = err.Error()
		case retryable(a.Status):
			last = fmt.Sprintf("%d %.200s", a.Status, a.Body)
		default:
			return a, nil
		}
		wait := backoff/2 + rand.N(backoff)
		if err == nil {
			if s, perr := strconv.Atoi(a.Header.Get("Retry-After")); perr == nil && s > 0 && s <= 30 {
				wait = time.Duration(s) * time.Second
			}
		}
		c.stats.retried(wait)
		select {
		case <-ctx.Done():
			return answer{}, fmt.Errorf("%s %s: %w after %d attempts (last: %s)", method, path, errGaveUp, attempt+1, last)
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (c *client) once(ctx context.Context, method, path, token string, raw []byte, header map[string]string) (answer, error) {
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return answer{}, err
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.ip != "" {
		req.Header.Set("X-Forwarded-For", c.ip)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	c.stats.saw(resp.StatusCode, method, path, b)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// token is a dev issuer token for role and subject (clinic for a clinic's
// staff).
func (c *client) token(ctx context.Context, role, subject, clinic string) (string, error) {
	body := map[string]string{"role": role, "subject": subject}
	if clinic != "" {
		body["clinic_id"] = clinic
	}
	a, err := c.do(ctx, "POST", "/v1/dev/tokens", "", body, nil)
	if err != nil {
		return "", err
	}
	if a.Status != http.StatusOK && a.Status != http.StatusCreated {
		return "", fmt.Errorf("token for %s: %d %s", role, a.Status, a.Body)
	}
	var t struct {
		AccessToken string `json:"token"`
	}
	if err := a.decode(&t); err != nil {
		return "", err
	}
	return t.AccessToken, nil
}
