// Command gateway is the platform's one HTTP entry point.
package main

import (
	"context"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/gateway/server"
)

func main() {
	servicehost.Main("gateway", func(ctx context.Context, deps servicehost.Deps) error {
		return server.Run(ctx, server.ConfigFromEnv(), deps)
	})
}
