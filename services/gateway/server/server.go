// Package server wires the gateway: the one HTTP entry point for the web and
// mobile frontends, clinics and Stripe. cmd/gateway calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"
	"net/http"
	"net/url"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/gateway/internal/compose"
	"github.com/saisei-health/platform/services/gateway/internal/proxy"
)

// Config names the gateway's address and the services behind it.
type Config struct {
	HTTPAddr   string
	CatalogURL string
	QuotingURL string
	BookingURL string
	PaymentURL string
}

// ConfigFromEnv reads HTTP_ADDR (default :8080) and the service URLs.
func ConfigFromEnv() Config {
	return Config{
		HTTPAddr:   servicehost.Env("HTTP_ADDR", ":8080"),
		CatalogURL: servicehost.Env("CATALOG_URL", "http://127.0.0.1:8081"),
		QuotingURL: servicehost.Env("QUOTING_URL", "http://127.0.0.1:8082"),
		BookingURL: servicehost.Env("BOOKING_URL", "http://127.0.0.1:8083"),
		PaymentURL: servicehost.Env("PAYMENT_URL", "http://127.0.0.1:8084"),
	}
}

// Handler routes the public API. Only these routes are exposed: the
// services' /internal endpoints are not reachable through the gateway.
func Handler(cfg Config, deps servicehost.Deps) (http.Handler, error) {
	urls := map[string]*url.URL{}
	for name, raw := range map[string]string{"catalog": cfg.CatalogURL, "quoting": cfg.QuotingURL, "booking": cfg.BookingURL, "payment": cfg.PaymentURL} {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		urls[name] = u
	}
	to := func(service string) http.Handler { return proxy.To(urls[service], deps.TracerProvider, deps.Log) }

	r := httpkit.NewRouter()
	r.Handle("GET /v1/treatments", to("catalog"))
	r.Handle("GET /v1/treatments/{id}", to("catalog"))
	r.Handle("GET /v1/conditions", to("catalog"))
	r.Handle("GET /v1/conditions/{code}/price-comparison", to("catalog"))
	r.Handle("POST /v1/admin/clinics", to("catalog"))
	r.Handle("PATCH /v1/admin/clinics/{id}", to("catalog"))
	r.Handle("POST /v1/admin/plans", to("catalog"))
	r.Handle("PATCH /v1/admin/plans/{number}", to("catalog"))
	r.Handle("POST /v1/admin/treatments", to("catalog"))
	r.Handle("PATCH /v1/admin/treatments/{id}", to("catalog"))
	r.Handle("POST /v1/quotes", to("quoting"))
	r.Handle("GET /v1/quotes/{id}", to("quoting"))
	r.Handle("POST /v1/clinic/quotes/{id}/revisions", to("quoting"))
	r.Handle("POST /v1/bookings", to("booking"))
	r.Handle("GET /v1/bookings/{id}", kithttp.NewServer(
		compose.MakeGetBookingEndpoint(urls["booking"], urls["payment"], httpkit.NewClient(deps.TracerProvider, 10*time.Second)),
		compose.DecodeID, httpkit.EncodeResponse, httpkit.ServerOptions(deps.Log, nil)...))
	r.Handle("POST /v1/clinic/bookings/{id}/harvest", to("booking"))
	r.Handle("POST /v1/clinic/bookings/{id}/cells-ready", to("booking"))
	r.Handle("POST /v1/clinic/bookings/{id}/administered", to("booking"))
	r.Handle("GET /v1/finance/bookings/{id}", to("payment"))
	r.Handle("POST /v1/webhooks/stripe", to("payment"))
	return httpkit.Instrument(r, "gateway", deps.TracerProvider, deps.Log), nil
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	h, err := Handler(cfg, deps)
	if err != nil {
		return err
	}
	return httpkit.Serve(ctx, cfg.HTTPAddr, h, deps.Log)
}
