package outage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
)

func TestWhatCountsAsADependencyBeingDown(t *testing.T) {
	for _, c := range []struct {
		err  error
		down bool
	}{
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "23505", Message: "duplicate key"}, false},
		{&pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, false},
		{fmt.Errorf("store: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{fmt.Errorf("query: %w", io.ErrUnexpectedEOF), true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("publish: %w", nats.ErrConnectionClosed), true},
		{nats.ErrNoServers, true},
		{errors.New("booking not found"), false},
		{context.Canceled, false},
		{nil, false},
	} {
		if got := Is(c.err); got != c.down {
			t.Errorf("%v: %v, want %v", c.err, got, c.down)
		}
	}
}
