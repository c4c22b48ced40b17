// Package servicehost is the process skeleton every event-driven service
// shares, so each service's main.go and server package only wire their own
// parts: it opens the service's Postgres schema and migrates it, connects to
// JetStream and ensures the stream topology, runs the outbox relay and the
// durable consumers, serves HTTP, and shuts all of it down in order.
package servicehost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/inbox"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
)

// Config is what every service needs to start.
type Config struct {
	// Name is the service name; it is also its Postgres schema.
	Name string
	// HTTPAddr to listen on, e.g. ":8081".
	HTTPAddr string
	// DatabaseURL connects as the service's own role.
	DatabaseURL string
	// NATSURL of the JetStream server or cluster.
	NATSURL string
	// NATSCreds is the path of the service's NATS credentials file (its
	// own user, allowed its own subjects); empty connects without one.
	NATSCreds string
	// StreamReplicas for streams this service creates (3 on a cluster).
	StreamReplicas int
	// Identity is the OpenID Connect issuer the service trusts and its own
	// client credentials.
	Identity identity.Config
}

// Env reads a variable, falling back to def.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ConfigFromEnv reads HTTP_ADDR, DATABASE_URL, NATS_URL and
// NATS_STREAM_REPLICAS.
func ConfigFromEnv(name, defaultAddr string) Config {
	replicas, _ := strconv.Atoi(Env("NATS_STREAM_REPLICAS", "1"))
	return Config{
		Name:           name,
		HTTPAddr:       Env("HTTP_ADDR", defaultAddr),
		DatabaseURL:    Env("DATABASE_URL", ""),
		NATSURL:        Env("NATS_URL", "nats://127.0.0.1:4222"),
		NATSCreds:      Env("NATS_CREDS", ""),
		StreamReplicas: replicas,
		Identity:       identity.ConfigFromEnv(),
	}
}

// Deps are injected rather than global so several services can share one
// process (the end-to-end test) while keeping their own service.name.
type Deps struct {
	Log            *slog.Logger
	TracerProvider trace.TracerProvider
	// Now is the services' clock; nil means time.Now. Tests move it to see
	// quotes expire and plans lapse.
	Now func() time.Time
}

// Clock returns the configured clock.
func (d Deps) Clock() func() time.Time {
	if d.Now != nil {
		return d.Now
	}
	return time.Now
}

// Rates reads the exchange rates from FX_RATES (see fx.Parse), or the
// default table when unset.
func Rates() (fx.Table, error) {
	if s := os.Getenv("FX_RATES"); s != "" {
		return fx.Parse(s)
	}
	return fx.Default(), nil
}

// Host is a started service.
type Host struct {
	Config
	Deps
	Pool      *pgxpool.Pool
	NATS      *nats.Conn
	JetStream jetstream.JetStream
	// Guard verifies callers' tokens; ServiceClient calls other services
	// as this one.
	Guard    *identity.Guard
	verifier *identity.Verifier

	relay     *outbox.Relay
	consumers []*bus.Consumer
	closeOnce sync.Once
}

// Start connects everything and applies migrations (the shared outbox and
// inbox tables first, then the service's own).
func Start(ctx context.Context, cfg Config, deps Deps, migrations pgdb.Migrations) (*Host, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("servicehost: DATABASE_URL is not set")
	}
	h := &Host{Config: cfg, Deps: deps}
	var err error
	if h.verifier, err = NewVerifier(ctx, cfg.Identity, deps.TracerProvider); err != nil {
		return nil, err
	}
	h.Guard = identity.NewGuard(h.verifier, deps.Log)
	if h.Pool, err = pgdb.Connect(ctx, cfg.DatabaseURL, cfg.Name, deps.TracerProvider); err != nil {
		return nil, err
	}
	if err := pgdb.Migrate(ctx, h.Pool, cfg.Name, outbox.Migrations(), inbox.Migrations(), migrations); err != nil {
		h.Pool.Close()
		return nil, err
	}
	var natsOpts []nats.Option
	if cfg.NATSCreds != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(cfg.NATSCreds))
	}
	if h.NATS, h.JetStream, err = bus.Connect(cfg.NATSURL, cfg.Name, natsOpts...); err != nil {
		h.Pool.Close()
		return nil, err
	}
	if err := bus.EnsureStreams(ctx, h.JetStream, cfg.StreamReplicas); err != nil {
		h.Close()
		return nil, err
	}
	h.relay = outbox.NewRelay(h.Pool, bus.NewPublisher(h.JetStream, deps.TracerProvider), cfg.Name, deps.Log)
	return h, nil
}

// NewVerifier reads the issuer's discovery document, waiting up to 30 s for
// an issuer that starts with the platform. A service without an issuer does
// not start: nothing is served without identity.
func NewVerifier(ctx context.Context, cfg identity.Config, tp trace.TracerProvider) (*identity.Verifier, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return identity.NewVerifier(ctx, cfg, httpkit.NewClient(tp, 10*time.Second))
}

// ServiceClient is an HTTP client that calls other services as this one
// (client credentials), traced, with timeout.
func (h *Host) ServiceClient(timeout time.Duration) (*http.Client, error) {
	return identity.ServiceClient(h.verifier, httpkit.NewClient(h.TracerProvider, timeout))
}

// Consume registers a durable consumer; it starts with Run.
func (h *Host) Consume(ctx context.Context, spec bus.ConsumerSpec, handler bus.Handler) error {
	c, err := bus.NewConsumer(ctx, h.JetStream, spec, handler, h.TracerProvider, h.Log)
	if err != nil {
		return err
	}
	h.consumers = append(h.consumers, c)
	return nil
}

// Run serves handler, relays the outbox, runs the consumers and any extra
// workers until ctx is done, then stops in order: HTTP (finishing in-flight
// requests), consumers (finishing the message in hand), workers and relay,
// then the connections.
func (h *Host) Run(ctx context.Context, handler http.Handler, workers ...func(context.Context)) error {
	defer h.Close()
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { h.relay.Run(bg) })
	wg.Go(func() { h.prune(bg) })
	for _, w := range workers {
		wg.Go(func() { w(bg) })
	}
	for _, c := range h.consumers {
		if err := c.Start(bg); err != nil {
			stopBackground()
			wg.Wait()
			return fmt.Errorf("servicehost: start consumer: %w", err)
		}
	}
	instrumented := httpkit.Instrument(handler, h.Name, h.TracerProvider, h.Log)
	err := httpkit.Serve(ctx, h.HTTPAddr, instrumented, h.Log)
	for _, c := range h.consumers {
		c.Stop()
	}
	stopBackground()
	wg.Wait()
	h.Log.Info("stopped")
	return err
}

// Close releases the connections; Run calls it, and a service that fails
// between Start and Run defers it. Safe to call twice.
func (h *Host) Close() {
	h.closeOnce.Do(func() {
		if h.NATS != nil {
			_ = h.NATS.Drain()
		}
		if h.Pool != nil {
			h.Pool.Close()
		}
	})
}

// Main is the body of every service's main: it builds the logger and tracer
// provider for name, runs run until SIGINT/SIGTERM, and flushes spans.
func Main(name string, run func(ctx context.Context, deps Deps) error) {
	log := telemetry.NewLogger(name, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tp, err := telemetry.NewProvider(ctx, name)
	if err != nil {
		log.Error("telemetry", "err", err)
		os.Exit(1)
	}
	mp, err := telemetry.NewMeterProvider(ctx, name)
	if err != nil {
		log.Error("telemetry", "err", err)
		os.Exit(1)
	}
	if addr := os.Getenv("DEBUG_ADDR"); addr != "" {
		go serveDebug(ctx, addr, os.Getenv("DEBUG_ADDR_PUBLIC") == "true", log)
	}
	err = run(ctx, Deps{Log: log, TracerProvider: tp})
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tp.Shutdown(flushCtx)
	_ = mp.Shutdown(flushCtx)
	if err != nil {
		log.Error("exited", "err", err)
		os.Exit(1)
	}
}
