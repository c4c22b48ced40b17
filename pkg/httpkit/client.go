package httpkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
)

// NewClient returns an HTTP client for service-to-service calls: it carries
// the caller's trace context (traceparent) and records a client span. Its
// connections are pooled by Transport.
func NewClient(tp trace.TracerProvider, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: otelhttp.NewTransport(Transport, otelhttp.WithTracerProvider(tp)),
	}
}

// Transport is the process's pool of connections to the other services
// (and Stripe). Go's default keeps only two idle connections per host, so
// under load every third concurrent request to a service opened a TCP
// connection and closed it afterwards: hundreds of sockets in TIME_WAIT and
// a connect and accept per request. It keeps up to 64 per host. It does
// not ask for gzip on its own: between services compressing an answer
// costs both sides CPU and saves nothing (the gateway's proxy passes on the
// client's own Accept-Encoding).
var Transport http.RoundTripper = newTransport()

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 64
	t.DisableCompression = true
	return t
}

// DecodeJSONResponse returns a go-kit client decoder: a 2xx body is decoded
// into a new T, anything else becomes the upstream's *Problem.
func DecodeJSONResponse[T any]() func(context.Context, *http.Response) (any, error) {
	return func(_ context.Context, resp *http.Response) (any, error) {
		if resp.StatusCode >= 300 {
			return nil, ReadProblem(resp)
		}
		var v T
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return nil, fmt.Errorf("decode %s response: %w", resp.Request.URL.Path, err)
		}
		return &v, nil
	}
}

// ReadProblem turns an error response into a *Problem, inventing one when
// the body is not problem+json.
func ReadProblem(resp *http.Response) *Problem {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p Problem
	if json.Unmarshal(body, &p) == nil && p.Status != 0 {
		return &p
	}
	p = *ProblemUpstream.New(string(body))
	p.Status, p.Title = resp.StatusCode, http.StatusText(resp.StatusCode)
	return &p
}

// EncodeJSONRequest is a go-kit client encoder that sends request as JSON.
func EncodeJSONRequest(_ context.Context, r *http.Request, request any) error {
	b, err := json.Marshal(request)
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return nil
}
