package pgdb

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// Migrations is one ordered set of tern migrations (001_x.sql, 002_y.sql …).
// Name keeps its version table apart from other sets in the same schema, so
// the shared outbox/inbox tables and a service's own tables evolve
// independently.
type Migrations struct {
	Name string
	FS   fs.FS
}

// Migrate applies every set, in order, inside schema. tern takes a Postgres
// advisory lock, so several replicas starting at once migrate one at a time.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, sets ...Migrations) error {
	if !ValidIdentifier(schema) {
		return fmt.Errorf("pgdb: invalid schema name %q", schema)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for _, set := range sets {
		if set.FS == nil {
			return fmt.Errorf("pgdb: migration set %q has no files", set.Name)
		}
		if !ValidIdentifier(set.Name) {
			return fmt.Errorf("pgdb: invalid migration set name %q", set.Name)
		}
		m, err := migrate.NewMigrator(ctx, conn.Conn(), schema+"."+set.Name+"_schema_version")
		if err != nil {
			return fmt.Errorf("pgdb: migrator %s: %w", set.Name, err)
		}
		if err := m.LoadMigrations(set.FS); err != nil {
			return fmt.Errorf("pgdb: load %s migrations: %w", set.Name, err)
		}
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("pgdb: migrate %s: %w", set.Name, err)
		}
	}
	return nil
}
