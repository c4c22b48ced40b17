// Package server wires the booking service. cmd/booking calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"
	"time"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/booking/internal/service"
	"github.com/saisei-health/platform/services/booking/internal/store"
	"github.com/saisei-health/platform/services/booking/internal/transport"
	"github.com/saisei-health/platform/services/booking/internal/upstream"
	"github.com/saisei-health/platform/services/booking/migrations"
)

// Config configures booking.
type Config struct {
	servicehost.Config
	QuotingURL string
	PaymentURL string
}

// ConfigFromEnv reads the standard variables plus QUOTING_URL and
// PAYMENT_URL.
func ConfigFromEnv() Config {
	return Config{
		Config:     servicehost.ConfigFromEnv("booking", ":8083"),
		QuotingURL: servicehost.Env("QUOTING_URL", "http://127.0.0.1:8082"),
		PaymentURL: servicehost.Env("PAYMENT_URL", "http://127.0.0.1:8084"),
	}
}

// Run starts booking and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	// Booking calls quoting and payment as itself (client credentials).
	client, err := host.ServiceClient(15 * time.Second)
	if err != nil {
		return err
	}
	up, err := upstream.New(cfg.QuotingURL, cfg.PaymentURL, client, httpkit.NewClient(deps.TracerProvider, 15*time.Second))
	if err != nil {
		return err
	}
	b := service.New(host.Pool, store.New(), up, up, up, deps.TracerProvider, deps.Clock())
	if err := transport.Subscribe(ctx, host, host.Pool, b); err != nil {
		return err
	}
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(b), deps.Log, deps.Clock(), host.Guard))
}
