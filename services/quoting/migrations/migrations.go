// Package migrations holds the quoting schema, applied by the service at start.
package migrations

import (
	"embed"

	"github.com/saisei-health/platform/pkg/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is quoting's migration set.
func Set() pgdb.Migrations { return pgdb.Migrations{Name: "quoting", FS: files} }
