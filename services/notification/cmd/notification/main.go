// Command notification tells clinics about their bookings on their own NATS
// subjects and emails patients.
package main

import (
	"context"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/notification/server"
)

func main() {
	servicehost.Main("notification", func(ctx context.Context, deps servicehost.Deps) error {
		return server.Run(ctx, server.ConfigFromEnv(), deps)
	})
}
