// Package migrations holds the catalog schema, applied by the service at start.
package migrations

import (
	"embed"

	"github.com/saisei-health/platform/pkg/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is the catalog's migration set.
func Set() pgdb.Migrations { return pgdb.Migrations{Name: "catalog", FS: files} }
