// Command booking owns the booking state machine, from the deposit to the
// administration of the cells.
package main

import (
	"context"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/booking/server"
)

func main() {
	servicehost.Main("booking", func(ctx context.Context, deps servicehost.Deps) error {
		cfg, err := server.ConfigFromEnv()
		if err != nil {
			return err
		}
		return server.Run(ctx, cfg, deps)
	})
}
