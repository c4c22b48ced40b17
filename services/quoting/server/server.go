// Package server wires the quoting service. cmd/quoting calls it; the
// end-to-end test runs it in-process.
package server

import (
	"context"
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/sealed"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/quoting/internal/service"
	"github.com/saisei-health/platform/services/quoting/internal/store"
	"github.com/saisei-health/platform/services/quoting/internal/transport"
	"github.com/saisei-health/platform/services/quoting/internal/upstream"
	"github.com/saisei-health/platform/services/quoting/migrations"
)

// Config configures quoting.
type Config struct {
	servicehost.Config
	// Rates are the exchange rates quotes lock in; zero means the default table.
	Rates fx.Table
	// CatalogURL is asked, when a quote is accepted, whether its treatment
	// may still be booked.
	CatalogURL string
	// DataKeyset is the Tink keyset (JSON) sealing screening answers and
	// eligibility at rest; quoting does not start without one.
	DataKeyset string
}

// ConfigFromEnv reads the standard variables, FX_RATES and CATALOG_URL.
func ConfigFromEnv() (Config, error) {
	rates, err := servicehost.Rates()
	return Config{Config: servicehost.ConfigFromEnv("quoting", ":8082"), Rates: rates,
		CatalogURL: servicehost.Env("CATALOG_URL", "http://127.0.0.1:8081"), DataKeyset: servicehost.Env("DATA_KEYSET", "")}, err
}

// Run starts quoting and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	box, err := sealed.FromJSON(cfg.DataKeyset)
	if err != nil {
		return err
	}
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	if cfg.Rates.AsOf.IsZero() {
		cfg.Rates = fx.Default()
	}
	catalog, err := upstream.NewCatalog(cfg.CatalogURL, httpkit.NewClient(deps.TracerProvider, 10*time.Second))
	if err != nil {
		return err
	}
	// Until booking accepted quotes synchronously, quoting learnt of
	// acceptances from BookingCreated on this consumer.
	if err := bus.RetireConsumer(ctx, host.JetStream, bus.StreamBooking, "quoting-bookings"); err != nil {
		return err
	}
	st := store.New(box)
	if n, err := st.SealClearText(ctx, host.Pool); err != nil {
		return fmt.Errorf("quoting: seal health information stored in clear text: %w", err)
	} else if n > 0 {
		deps.Log.Info("sealed health information stored in clear text", "quotes", n)
	}
	q := service.New(host.Pool, st, catalog, cfg.Rates, deps.Clock())
	if err := transport.Subscribe(ctx, host, host.Pool, q); err != nil {
		return err
	}
	return host.Run(ctx, transport.MakeHandler(transport.MakeEndpoints(q), deps.Log, host.Guard))
}
