// Package server wires the catalog service: configuration, storage, events,
// the search index and HTTP. cmd/catalog calls it; the end-to-end test runs
// it in-process.
package server

import (
	"context"
	"fmt"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/catalog/internal/seed"
	"github.com/saisei-health/platform/services/catalog/internal/service"
	"github.com/saisei-health/platform/services/catalog/internal/store"
	"github.com/saisei-health/platform/services/catalog/internal/transport"
	"github.com/saisei-health/platform/services/catalog/migrations"
)

// Config configures the catalog.
type Config struct {
	servicehost.Config
	// Seed imports the built-in catalog at start (idempotent).
	Seed bool
	// Rates convert price filters and display prices; zero means the default table.
	Rates fx.Table
}

// ConfigFromEnv reads the standard variables plus CATALOG_SEED (default
// true) and FX_RATES.
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Config: servicehost.ConfigFromEnv("catalog", ":8081"),
		Seed:   servicehost.Env("CATALOG_SEED", "true") == "true",
	}
	var err error
	cfg.Rates, err = servicehost.Rates()
	return cfg, err
}

// Run starts the catalog and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	if cfg.Rates.AsOf.IsZero() {
		cfg.Rates = fx.Default()
	}
	svc := service.New(store.New(host.Pool), cfg.Rates, deps.Clock(), deps.Log)
	if cfg.Seed {
		c, err := seed.Catalog()
		if err != nil {
			return err
		}
		if err := svc.Import(ctx, c); err != nil {
			return fmt.Errorf("catalog: seed: %w", err)
		}
	}
	if err := svc.Refresh(ctx); err != nil {
		return err
	}
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(svc), deps.Log, host.Guard), svc.KeepFresh)
}
