// Command catalog serves the treatment catalog: licensed clinics, their
// provision plans and treatments with JPY prices.
package main

import (
	"context"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/catalog/server"
)

func main() {
	servicehost.Main("catalog", func(ctx context.Context, deps servicehost.Deps) error {
		cfg, err := server.ConfigFromEnv()
		if err != nil {
			return err
		}
		return server.Run(ctx, cfg, deps)
	})
}
