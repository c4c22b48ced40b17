// Package server wires the booking service. cmd/booking calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"
	"fmt"
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
	// DepositWindow is how long a booking waits for its deposit before it
	// expires; zero means service.DefaultDepositWindow (72 h).
	DepositWindow time.Duration
	// BalanceGrace is how long a balance the off-session charge could not
	// take waits for the patient; zero means 72 h.
	BalanceGrace time.Duration
	// ExpiryPoll is the longest the expiry worker sleeps; zero means a minute.
	ExpiryPoll time.Duration
}

// ConfigFromEnv reads the standard variables plus QUOTING_URL,
// PAYMENT_URL, DEPOSIT_WINDOW and BALANCE_GRACE (Go durations, e.g. 72h).
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Config:     servicehost.ConfigFromEnv("booking", ":8083"),
		QuotingURL: servicehost.Env("QUOTING_URL", "http://127.0.0.1:8082"),
		PaymentURL: servicehost.Env("PAYMENT_URL", "http://127.0.0.1:8084"),
	}
	for key, into := range map[string]*time.Duration{"DEPOSIT_WINDOW": &cfg.DepositWindow, "BALANCE_GRACE": &cfg.BalanceGrace} {
		if s := servicehost.Env(key, ""); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < time.Minute {
				return cfg, fmt.Errorf("booking: %s %q is not a duration of at least a minute", key, s)
			}
			*into = d
		}
	}
	return cfg, nil
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
	b := service.New(host.Pool, store.New(), up, up, up, deps.TracerProvider, deps.Clock()).WithDepositWindow(cfg.DepositWindow).WithBalanceGrace(cfg.BalanceGrace)
	if err := transport.Subscribe(ctx, host, host.Pool, b); err != nil {
		return err
	}
	poll := cfg.ExpiryPoll
	if poll <= 0 {
		poll = time.Minute
	}
	expire := func(ctx context.Context) { b.ExpireUnpaid(ctx, poll, deps.Log) }
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(b), deps.Log, deps.Clock(), host.Guard), expire)
}
