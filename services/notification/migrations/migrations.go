// Package migrations holds the notification schema, applied by the service at start.
package migrations

import (
	"embed"

	"github.com/saisei-health/platform/pkg/pgdb"
)

//go:embed *.sql
var files embed.FS

// Set is notification's migration set.
func Set() pgdb.Migrations { return pgdb.Migrations{Name: "notification", FS: files} }
