// Package server wires the catalog service: configuration, storage, events,
// the search index and HTTP. cmd/catalog calls it; the end-to-end test runs
// it in-process.
package server

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/natsauth"
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
	// ClinicIssuer is the path of the natsauth.ClinicIssuer the admin API
	// issues and revokes clinics' NATS credentials with; empty, that API
	// answers 501 (the NATS server's operator issues them).
	ClinicIssuer string
}

// ConfigFromEnv reads the standard variables plus CATALOG_SEED (default
// true), FX_RATES and NATS_CLINIC_ISSUER.
func ConfigFromEnv() (Config, error) {
	cfg := Config{
		Config:       servicehost.ConfigFromEnv("catalog", ":8081"),
		Seed:         servicehost.Env("CATALOG_SEED", "true") == "true",
		ClinicIssuer: servicehost.Env("NATS_CLINIC_ISSUER", ""),
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
	creds, err := natsCredentials(cfg, host, deps)
	if err != nil {
		return err
	}
	defer creds.Close()
	handler := transport.MakeHandler(transport.MakeEndpoints(svc), transport.MakeCredentialEndpoints(creds.NATSCredentials),
		svc.IndexVersion, deps.Log, host.Guard)
	return host.Run(ctx, handler, svc.KeepFresh, creds.KeepRevoked)
}

// issuedCredentials is the credentials service with the system-account
// connection it closes.
type issuedCredentials struct {
	*service.NATSCredentials
	sys *nats.Conn
}

func (c issuedCredentials) Close() {
	if c.sys != nil {
		c.sys.Close()
	}
}

func natsCredentials(cfg Config, host *servicehost.Host, deps servicehost.Deps) (issuedCredentials, error) {
	st := store.New(host.Pool)
	if cfg.ClinicIssuer == "" {
		return issuedCredentials{NATSCredentials: service.NewNATSCredentials(host.Pool, st, nil, nil, deps.Clock(), deps.Log)}, nil
	}
	issuer, err := natsauth.LoadClinicIssuer(cfg.ClinicIssuer)
	if err != nil {
		return issuedCredentials{}, fmt.Errorf("catalog: NATS_CLINIC_ISSUER: %w", err)
	}
	sys, err := issuer.Connect(cfg.NATSURL)
	if err != nil {
		return issuedCredentials{}, fmt.Errorf("catalog: the clinic issuer's NATS connection: %w", err)
	}
	return issuedCredentials{NATSCredentials: service.NewNATSCredentials(host.Pool, st, issuer, sys, deps.Clock(), deps.Log),
		sys: sys}, nil
}
