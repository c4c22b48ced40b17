// Command quoting turns a treatment and a dose into an itemized JPY quote
// with deposit, balance and the patient's display currency.
package main

import (
	"context"

	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/quoting/server"
)

func main() {
	servicehost.Main("quoting", func(ctx context.Context, deps servicehost.Deps) error {
		cfg, err := server.ConfigFromEnv()
		if err != nil {
			return err
		}
		return server.Run(ctx, cfg, deps)
	})
}
