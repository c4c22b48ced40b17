// Package server wires the payment service. cmd/payment calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/service"
	"github.com/saisei-health/platform/services/payment/internal/store"
	"github.com/saisei-health/platform/services/payment/internal/stripegw"
	"github.com/saisei-health/platform/services/payment/internal/transport"
	"github.com/saisei-health/platform/services/payment/migrations"
)

// LocalWebhookSecret is make run's webhook secret for stripe-mock; it is
// refused against the real Stripe API.
const LocalWebhookSecret = "whsec_local_dev"

// Config configures payment.
type Config struct {
	servicehost.Config
	StripeAPIKey        string
	StripeAPIBase       string
	StripeWebhookSecret string
	// BalanceRetry is the backoff between balance charge attempts after a
	// Stripe failure; empty means the production default.
	BalanceRetry []time.Duration
	// ImportEvery is how often Stripe's balance transactions are imported
	// for reconciliation; zero means 15 minutes.
	ImportEvery time.Duration
	// Overpayment is what happens to money a patient transfers beyond a
	// payment: "refund" (the default) or "keep" on their customer balance.
	Overpayment string
}

// ConfigFromEnv reads the standard variables plus STRIPE_API_KEY,
// STRIPE_API_BASE (stripe-mock's URL in development) and
// STRIPE_WEBHOOK_SECRET.
func ConfigFromEnv() Config {
	return Config{
		Config:              servicehost.ConfigFromEnv("payment", ":8084"),
		StripeAPIKey:        servicehost.Env("STRIPE_API_KEY", ""),
		StripeAPIBase:       servicehost.Env("STRIPE_API_BASE", "https://api.stripe.com"),
		StripeWebhookSecret: servicehost.Env("STRIPE_WEBHOOK_SECRET", ""),
		Overpayment:         servicehost.Env("BANK_TRANSFER_OVERPAYMENT", "refund"),
	}
}

// Run starts payment and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	if cfg.StripeAPIKey == "" || cfg.StripeWebhookSecret == "" {
		return errors.New("payment: STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET must be set")
	}
	// The local default secret is published in this repository: against
	// real Stripe it would let anyone sign a "payment succeeded".
	if cfg.StripeWebhookSecret == LocalWebhookSecret && strings.Contains(cfg.StripeAPIBase, "stripe.com") {
		return errors.New("payment: STRIPE_WEBHOOK_SECRET is the public local default; set your endpoint's signing secret")
	}
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	gw := stripegw.New(cfg.StripeAPIKey, cfg.StripeAPIBase, cfg.StripeWebhookSecret, httpkit.NewClient(deps.TracerProvider, 30*time.Second))
	if cfg.Overpayment != "" && cfg.Overpayment != "refund" && cfg.Overpayment != "keep" {
		return errors.New("payment: BANK_TRANSFER_OVERPAYMENT must be refund or keep")
	}
	p := service.New(host.Pool, store.New(), gw, deps.TracerProvider, deps.Clock(), deps.Log).
		WithOverpayment(domain.OverpaymentPolicy(cfg.Overpayment))
	if err := transport.Subscribe(ctx, host, host.Pool, p, cfg.BalanceRetry); err != nil {
		return err
	}
	every := cfg.ImportEvery
	if every <= 0 {
		every = 15 * time.Minute
	}
	importBalance := func(ctx context.Context) { p.KeepImporting(ctx, every) }
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(p), deps.Log, host.Guard), p.KeepRefunding, importBalance)
}
