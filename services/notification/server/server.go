// Package server wires the notification service. cmd/notification calls it;
// the end-to-end test runs it in-process.
package server

import (
	"context"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/notification/internal/mailer"
	"github.com/saisei-health/platform/services/notification/internal/service"
	"github.com/saisei-health/platform/services/notification/internal/store"
	"github.com/saisei-health/platform/services/notification/internal/transport"
	"github.com/saisei-health/platform/services/notification/migrations"
)

// Config configures notification.
type Config struct {
	servicehost.Config
	Mail mailer.Config
}

// ConfigFromEnv reads the standard variables plus SMTP_ADDR, SMTP_USERNAME,
// SMTP_PASSWORD, SMTP_REQUIRE_TLS and MAIL_FROM.
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
	}
}

// Run starts notification and blocks until ctx is done.
func Run(ctx context.Context, cfg Config, deps servicehost.Deps) error {
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
	notifier := service.New(st)
	if err := transport.Subscribe(ctx, host, host.Pool, notifier); err != nil {
		return err
	}
	if err := transport.SubscribeQuotes(ctx, host, host.Pool, notifier); err != nil {
		return err
	}
	sender := mailer.New(cfg.Mail, host.Pool, st, deps.TracerProvider, deps.Log)
	return host.Run(ctx, transport.MakeHandler(host.Pool, st, deps.Log, host.Guard), sender.Run)
}
