// Package server wires the gateway: the one HTTP entry point for the web and
// mobile frontends, clinics and Stripe. cmd/gateway calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"
	"golang.org/x/time/rate"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/gateway/internal/compose"
	"github.com/saisei-health/platform/services/gateway/internal/proxy"
	"github.com/saisei-health/platform/services/gateway/internal/ratelimit"
)

// Config names the gateway's address, the services behind it and the
// issuer it trusts.
type Config struct {
	HTTPAddr   string
	CatalogURL string
	QuotingURL string
	BookingURL string
	PaymentURL string
	// NotificationURL serves the patient's notification preferences.
	NotificationURL string
	// DevIssuerURL, set only while the dev issuer runs (make run), routes
	// POST /v1/dev/tokens to it; otherwise that route does not exist.
	DevIssuerURL string
	Identity     identity.Config
	// RateLimit bounds each client and the requests that call Stripe; the
	// zero value means the defaults.
	RateLimit RateLimits
}

// RateLimits are the gateway's limits (see the ratelimit package).
type RateLimits = ratelimit.Config

// ConfigFromEnv reads HTTP_ADDR (default :8080), the service URLs,
// DEV_ISSUER_URL and the OIDC_* variables.
func ConfigFromEnv() Config {
	return Config{
		HTTPAddr:        servicehost.Env("HTTP_ADDR", ":8080"),
		CatalogURL:      servicehost.Env("CATALOG_URL", "http://127.0.0.1:8081"),
		QuotingURL:      servicehost.Env("QUOTING_URL", "http://127.0.0.1:8082"),
		BookingURL:      servicehost.Env("BOOKING_URL", "http://127.0.0.1:8083"),
		PaymentURL:      servicehost.Env("PAYMENT_URL", "http://127.0.0.1:8084"),
		NotificationURL: servicehost.Env("NOTIFICATION_URL", "http://127.0.0.1:8085"),
		DevIssuerURL:    servicehost.Env("DEV_ISSUER_URL", ""),
		Identity:        identity.ConfigFromEnv(),
		RateLimit: ratelimit.Config{
			PerClient:      rate.Limit(envFloat("GATEWAY_RATE_PER_CLIENT", float64(ratelimit.Defaults.PerClient))),
			Burst:          int(envFloat("GATEWAY_RATE_BURST", float64(ratelimit.Defaults.Burst))),
			StripeCalls:    rate.Limit(envFloat("GATEWAY_STRIPE_CALLS_PER_SECOND", float64(ratelimit.Defaults.StripeCalls))),
			StripeBurst:    int(envFloat("GATEWAY_STRIPE_BURST", float64(ratelimit.Defaults.StripeBurst))),
			ClientIPHeader: servicehost.Env("GATEWAY_CLIENT_IP_HEADER", ""),
		},
	}
}

func envFloat(key string, def float64) float64 {
	if v, err := strconv.ParseFloat(servicehost.Env(key, ""), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// Handler routes the public API, each route to its owner and behind the
// roles that may call it (the owning service checks again, and decides
// which records the caller may see). Only these routes are exposed: the
// services' /internal endpoints are not reachable through the gateway.
// services is the gateway's own client credentials client, for the
// payments it adds to a booking.
func Handler(cfg Config, deps servicehost.Deps, guard *identity.Guard, services *http.Client) (http.Handler, error) {
	urls := map[string]*url.URL{}
	targets := map[string]string{"catalog": cfg.CatalogURL, "quoting": cfg.QuotingURL, "booking": cfg.BookingURL, "payment": cfg.PaymentURL,
		"notification": cfg.NotificationURL}
	if cfg.DevIssuerURL != "" {
		targets["issuer"] = cfg.DevIssuerURL
	}
	for name, raw := range targets {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		urls[name] = u
	}
	to := func(service string) http.Handler { return proxy.To(urls[service], deps.TracerProvider, deps.Log) }
	only := func(roles ...identity.Role) func(http.Handler) http.Handler { return guard.Require(roles...) }
	patient, clinic, finance, admin := identity.Patient, identity.Clinic, identity.Finance, identity.Admin

	r := httpkit.NewRouter()
	// Anyone: the catalog's reads; Stripe signs its webhook instead.
	r.Handle("GET /v1/treatments", to("catalog"))
	r.Handle("GET /v1/treatments/{id}", to("catalog"))
	r.Handle("GET /v1/conditions", to("catalog"))
	r.Handle("GET /v1/conditions/{code}/price-comparison", to("catalog"))
	r.Handle("POST /v1/webhooks/stripe", to("payment"))
	if cfg.DevIssuerURL != "" {
		r.Handle("POST /v1/dev/tokens", to("issuer"))
	}

	for _, route := range []string{"POST /v1/admin/clinics", "PATCH /v1/admin/clinics/{id}", "POST /v1/admin/plans",
		"PATCH /v1/admin/plans/{number}", "POST /v1/admin/treatments", "PATCH /v1/admin/treatments/{id}",
		"POST /v1/admin/clinics/{id}/nats-credentials", "GET /v1/admin/clinics/{id}/nats-credentials",
		"POST /v1/admin/clinics/{id}/nats-credentials/{credential_id}/revoke"} {
		r.Handle(route, only(admin)(to("catalog")))
	}
	r.Handle("GET /v1/admin/audit", only(admin)(to("quoting")))
	r.Handle("POST /v1/quotes", only(patient)(to("quoting")))
	r.Handle("GET /v1/quotes/{id}", only(patient, clinic)(to("quoting")))
	r.Handle("POST /v1/clinic/quotes/{id}/revisions", only(clinic)(to("quoting")))
	r.Handle("POST /v1/bookings", only(patient)(to("booking")))
	r.Handle("GET /v1/bookings/{id}", only(patient, clinic)(kithttp.NewServer(
		compose.MakeGetBookingEndpoint(urls["booking"], urls["payment"], httpkit.NewClient(deps.TracerProvider, 10*time.Second), services),
		compose.DecodeID, httpkit.EncodeResponse,
		append(httpkit.ServerOptions(deps.Log, nil), kithttp.ServerBefore(kithttp.PopulateRequestContext))...)))
	r.Handle("GET /v1/clinic/bookings", only(clinic)(to("booking")))
	r.Handle("GET /v1/clinic/bookings/{id}", only(clinic)(to("booking")))
	r.Handle("POST /v1/clinic/bookings/{id}/harvest", only(clinic)(to("booking")))
	r.Handle("POST /v1/clinic/bookings/{id}/cells-ready", only(clinic)(to("booking")))
	r.Handle("POST /v1/clinic/bookings/{id}/administered", only(clinic)(to("booking")))
	r.Handle("POST /v1/clinic/bookings/{id}/ineligible", only(clinic)(to("booking")))
	r.Handle("POST /v1/bookings/{id}/cancel", only(patient)(to("booking")))
	r.Handle("POST /v1/bookings/{id}/balance-payment", only(patient)(to("booking")))
	r.Handle("POST /v1/bookings/{id}/reculture", only(patient)(to("booking")))
	r.Handle("GET /v1/finance/bookings/{id}", only(finance)(to("payment")))
	r.Handle("GET /v1/finance/ledger", only(finance)(to("payment")))
	r.Handle("GET /v1/finance/disputes", only(finance)(to("payment")))
	r.Handle("GET /v1/finance/reconciliation", only(finance)(to("payment")))
	r.Handle("GET /v1/finance/settlements", only(finance)(to("payment")))
	r.Handle("POST /v1/finance/settlements/close", only(finance)(to("payment")))
	r.Handle("GET /v1/admin/commissions/{clinic_id}", only(admin)(to("payment")))
	r.Handle("PUT /v1/admin/commissions/{clinic_id}", only(admin)(to("payment")))
	r.Handle("POST /v1/finance/reconciliation/import", only(finance)(to("payment")))
	for _, route := range []string{"POST /v1/clinic/webhook-endpoints", "GET /v1/clinic/webhook-endpoints",
		"GET /v1/clinic/webhook-endpoints/{id}", "PATCH /v1/clinic/webhook-endpoints/{id}", "DELETE /v1/clinic/webhook-endpoints/{id}",
		"POST /v1/clinic/webhook-endpoints/{id}/rotate-secret", "GET /v1/clinic/webhook-endpoints/{id}/deliveries",
		"POST /v1/clinic/webhook-endpoints/{id}/deliveries/{delivery_id}/replay"} {
		r.Handle(route, only(clinic)(to("notification")))
	}
	r.Handle("GET /v1/me/notification-preferences", only(patient)(to("notification")))
	r.Handle("PUT /v1/me/notification-preferences", only(patient)(to("notification")))
	limits := cfg.RateLimit
	if limits.PerClient == 0 {
		limits = ratelimit.Defaults
	}
	return httpkit.InstrumentPublic(ratelimit.New(limits).Wrap(r), "gateway", deps.TracerProvider, deps.Log), nil
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	verifier, err := servicehost.NewVerifier(ctx, cfg.Identity, deps.TracerProvider)
	if err != nil {
		return err
	}
	services, err := identity.ServiceClient(verifier, httpkit.NewClient(deps.TracerProvider, 10*time.Second))
	if err != nil {
		return err
	}
	h, err := Handler(cfg, deps, identity.NewGuard(verifier, deps.Log), services)
	if err != nil {
		return err
	}
	return httpkit.Serve(ctx, cfg.HTTPAddr, h, deps.Log)
}
