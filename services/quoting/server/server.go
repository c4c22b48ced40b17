// Package server wires the quoting service. cmd/quoting calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/quoting/internal/service"
	"github.com/saisei-health/platform/services/quoting/internal/store"
	"github.com/saisei-health/platform/services/quoting/internal/transport"
	"github.com/saisei-health/platform/services/quoting/migrations"
)

// Config configures quoting.
type Config struct {
	servicehost.Config
	// Rates are the exchange rates quotes lock in; zero means the default table.
	Rates fx.Table
}

// ConfigFromEnv reads the standard variables and FX_RATES.
func ConfigFromEnv() (Config, error) {
	rates, err := servicehost.Rates()
	return Config{Config: servicehost.ConfigFromEnv("quoting", ":8082"), Rates: rates}, err
}

// Run starts quoting and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	if cfg.Rates.AsOf.IsZero() {
		cfg.Rates = fx.Default()
	}
	q := service.New(host.Pool, store.New(), cfg.Rates, deps.Clock())
	if err := transport.Subscribe(ctx, host, host.Pool, q); err != nil {
		return err
	}
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(q), deps.Log))
}
