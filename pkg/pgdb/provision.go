package pgdb

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Provision creates, as an administrator, the login role and the schema a
// service owns, and nothing else: the role owns its schema, can create tables
// only there, and holds no rights on other services' schemas. It is
// idempotent and safe to run concurrently. Production does the same with
// deploy/postgres/init.sql; make run and the tests call this.
func Provision(ctx context.Context, adminDSN, schema, role, password string) error {
	if !ValidIdentifier(schema) || !ValidIdentifier(role) {
		return fmt.Errorf("pgdb: invalid schema %q or role %q", schema, role)
	}
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("pgdb: provision connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	// Serialize provisioning across processes: CREATE ROLE has no IF NOT EXISTS
	// and two test binaries may provision the same role at once.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(872341)`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(872341)`)

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return err
	}
	pw := quoteLiteral(password)
	stmt := fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD %s`, role, pw)
	if exists {
		stmt = fmt.Sprintf(`ALTER ROLE %s LOGIN PASSWORD %s`, role, pw)
	}
	for _, s := range []string{
		stmt,
		fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s`, schema, role),
		fmt.Sprintf(`ALTER ROLE %s SET search_path = %s`, role, schema),
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("pgdb: provision %s: %w", schema, err)
		}
	}
	return nil
}

// quoteLiteral quotes s as a SQL string literal (for DDL, which takes no parameters).
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
