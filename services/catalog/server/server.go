// Package server wires the catalog service: configuration, storage, events
// and HTTP. cmd/catalog calls it; the end-to-end test runs it in-process.
package server

import (
	"context"
	"fmt"
	"time"

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
}

// ConfigFromEnv reads the standard variables plus CATALOG_SEED (default true).
func ConfigFromEnv() Config {
	return Config{
		Config: servicehost.ConfigFromEnv("catalog", ":8081"),
		Seed:   servicehost.Env("CATALOG_SEED", "true") == "true",
	}
}

// Run starts the catalog and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	svc := service.New(store.New(host.Pool), time.Now)
	if cfg.Seed {
		c, err := seed.Catalog()
		if err != nil {
			return err
		}
		if err := svc.Import(ctx, c); err != nil {
			return fmt.Errorf("catalog: seed: %w", err)
		}
	}
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(svc), deps.Log))
}
