// Package pgdb opens a service's pgx pool inside the service's own schema,
// runs its embedded tern migrations, and provides the transaction and
// LISTEN/NOTIFY helpers the outbox, inbox and workers share.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/outage"
)

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidIdentifier reports whether s is safe to splice into SQL as a schema or
// role name. Only lower-case letters, digits and underscores pass.
func ValidIdentifier(s string) bool { return identifier.MatchString(s) }

// Connect opens a pool whose every connection has search_path set to schema
// only, so the service's unqualified SQL can never touch another service's
// tables. Queries are traced with tp.
func Connect(ctx context.Context, dsn, schema string, tp trace.TracerProvider) (*pgxpool.Pool, error) {
	if !ValidIdentifier(schema) {
		return nil, fmt.Errorf("pgdb: invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgdb: parse DSN: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// pgxpool pings a connection idle for more than a second before
	// handing it out: on a quiet platform that doubles every poll into two
	// transactions. A connection idle under a minute is trusted; one that
	// died meanwhile fails its query, which the callers retry (an outage).
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > time.Minute }
	if tp != nil {
		// Spans are named by the statement's operation ("SELECT"), not its
		// full SQL: otelpgx's default since WithTrimSQLInSpanName was deprecated.
		cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdb: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgdb: ping: %w", err)
	}
	return pool, nil
}

// Beginner is what InTx needs: a pool, a connection or a transaction.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise (including on panic).
func InTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) (err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// InTxUntilCommitted runs fn in a transaction like InTx and, while it
// fails because the database is unreachable (the connection dropped,
// Postgres restarting: anything but an error the server answered, unless
// that is an outage too), runs it again in a fresh transaction, with
// backoff from 50 ms doubling to 2 s, until it commits or ctx ends. It
// records what already happened outside the database — an email the relay
// took, a webhook a clinic accepted — which must not be done again because
// its record was lost. fn must be safe to run more than once.
func InTxUntilCommitted(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) error {
	wait := 50 * time.Millisecond
	for {
		err := InTx(ctx, db, fn)
		var answered *pgconn.PgError
		if err == nil || errors.As(err, &answered) && !outage.Is(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// IsUniqueViolation reports a unique_violation (23505), on the named
// constraint when constraint is not empty.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return constraint == "" || pgErr.ConstraintName == constraint
}

// Querier is satisfied by a pool, a connection and a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
