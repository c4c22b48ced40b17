// Package server wires the notification service. cmd/notification calls it;
// the end-to-end test runs it in-process.
package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/egress"
	"github.com/saisei-health/platform/pkg/sealed"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/mailer"
	"github.com/saisei-health/platform/services/notification/internal/service"
	"github.com/saisei-health/platform/services/notification/internal/store"
	"github.com/saisei-health/platform/services/notification/internal/transport"
	"github.com/saisei-health/platform/services/notification/internal/webhooks"
	"github.com/saisei-health/platform/services/notification/migrations"
)

// Config configures notification.
type Config struct {
	servicehost.Config
	Mail mailer.Config
	// PatientAppURL is the patients' app; emails link to pages under it
	// (<url>/bookings/<id>/pay to pay a balance on-session).
	PatientAppURL string
	// DataKeyset is the Tink keyset (JSON) sealing webhook signing secrets
	// at rest; without it notification does not start.
	DataKeyset string
	// Webhooks bounds where deliveries may go: https to public addresses,
	// and, under make run alone, http to loopback.
	Webhooks egress.Policy
}

// ConfigFromEnv reads the standard variables plus SMTP_ADDR, SMTP_USERNAME,
// SMTP_PASSWORD, SMTP_REQUIRE_TLS, MAIL_FROM, DATA_KEYSET and
// WEBHOOK_ALLOW_LOOPBACK_HTTP.
func ConfigFromEnv() Config {
	return Config{
		Config: servicehost.ConfigFromEnv("notification", ":8085"),
		Mail: mailer.Config{
			SMTPAddr: servicehost.Env("SMTP_ADDR", "127.0.0.1:1025"),
			Username: servicehost.Env("SMTP_USERNAME", ""),
			Password: servicehost.Env("SMTP_PASSWORD", ""),
			From:     servicehost.Env("MAIL_FROM", "Saisei Care <care@saisei.health>"),
			// TLS is required unless SMTP_REQUIRE_TLS=false (a local sink).
			AllowPlaintext: servicehost.Env("SMTP_REQUIRE_TLS", "true") == "false",
		},
		DataKeyset:    servicehost.Env("DATA_KEYSET", ""),
		PatientAppURL: servicehost.Env("PATIENT_APP_URL", "https://app.saisei.health"),
		Webhooks:      egress.Policy{AllowLoopbackHTTP: servicehost.Env("WEBHOOK_ALLOW_LOOPBACK_HTTP", "false") == "true"},
	}
}

// Run starts notification and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
	if cfg.DataKeyset == "" {
		return errors.New("notification: DATA_KEYSET is required: webhook signing secrets are sealed with it")
	}
	box, err := sealed.FromJSON(cfg.DataKeyset)
	if err != nil {
		return fmt.Errorf("notification: DATA_KEYSET: %w", err)
	}
	host, err := servicehost.Start(ctx, cfg.Config, deps, migrations.Set())
	if err != nil {
		return err
	}
	defer host.Close()
	// Until the balance email followed ready_for_administration, this
	// consumer read payment events.
	if err := bus.RetireConsumer(ctx, host.JetStream, bus.StreamPayment, "notification-payments"); err != nil {
		return err
	}
	st := store.New()
	now := deps.Clock()
	hooks := store.NewWebhooks(box)
	notifier := service.New(st, hooks, cfg.PatientAppURL)
	if err := transport.Subscribe(ctx, host, host.Pool, notifier); err != nil {
		return err
	}
	if err := transport.SubscribeQuotes(ctx, host, host.Pool, notifier); err != nil {
		return err
	}
	sender := mailer.New(cfg.Mail, host.Pool, st, deps.TracerProvider, deps.Log)
	deliveries := webhooks.NewSender(host.Pool, hooks, cfg.Webhooks, deps.TracerProvider, deps.Log, now)
	// The clinic hears that its endpoint was disabled, at the address it
	// gave; the email waits in the same queue as patients' emails.
	deliveries.OnDisabled = func(ctx context.Context, tx pgx.Tx, e store.Endpoint, failingSince time.Time) error {
		if e.ContactEmail == "" {
			return nil
		}
		return st.QueueEmail(ctx, tx, domain.EndpointDisabledEmail(e.ID, e.URL, e.ContactEmail, failingSince), telemetry.Inject(ctx))
	}
	endpoints := service.NewEndpoints(host.Pool, hooks, cfg.Webhooks, now)
	return host.Run(ctx, transport.MakeHandler(host.Pool, st, endpoints, deps.Log, host.Guard, now), sender.Run, deliveries.Run)
}
