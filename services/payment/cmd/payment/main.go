// Command payment takes the staged payments through Stripe: the deposit for
// cell culture and the off-session balance before administration.
package main

import (
	"context"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/payment/server"
)

func main() {
	servicehost.Main("payment", func(ctx context.Context, deps servicehost.Deps) error {
		return server.Run(ctx, server.ConfigFromEnv(), deps)
	})
}
