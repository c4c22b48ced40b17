// Package proxy forwards a frontend request to the service that owns it,
// unchanged (bodies byte for byte: Stripe signs the webhook body), inside
// the request's trace.
package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/httpkit"
)

// problemUnreachable answers when the owning service does not answer (it
// is restarting, or the network between is broken): 503 with Retry-After,
// so the client retries, with the same Idempotency-Key, after it. (It was
// 502 before the chaos run; the slug is unchanged.)
var problemUnreachable = httpkit.DefineProblem(http.StatusServiceUnavailable, "upstream-unavailable", "Service temporarily unavailable")

// To returns a handler forwarding to target's origin, keeping path and query.
func To(target *url.URL, tp trace.TracerProvider, log *slog.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path, r.Out.URL.RawPath = r.In.URL.Path, r.In.URL.RawPath
			r.SetXForwarded()
		},
		// The client's own Accept-Encoding decides what the service sends:
		// httpkit.Transport never asks for gzip itself (Go's default would,
		// and would unpack the answer, leaving the compressed variant's
		// ETag on a plain body).
		Transport: otelhttp.NewTransport(httpkit.Transport, otelhttp.WithTracerProvider(tp)),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.ErrorContext(r.Context(), "upstream unreachable", "upstream", target.Host, "err", err)
			httpkit.WriteProblem(w, problemUnreachable.New("try again shortly"))
		},
	}
}
