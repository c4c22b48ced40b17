// Package migrations holds the booking schema, applied by the service at start.
package migrations

import (
	"embed"

	"github.com/saisei-health/platform/pkg/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is booking's migration set.
func Set() pgdb.Migrations { return pgdb.Migrations{Name: "booking", FS: files} }
