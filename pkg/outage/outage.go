// Package outage tells whether an error means a dependency is down or
// unreachable — Postgres restarting, NATS gone, a network fault, a peer
// service not answering — rather than a mistake in the request or the
// code. Such a request did nothing it cannot repeat: the API answers it
// 503 dependency-unavailable with Retry-After, never 500, and the client
// retries (with the same Idempotency-Key).
package outage

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
)

// Is reports whether err means a dependency is unavailable.
func Is(err error) bool {
	if err == nil {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case len(pg.Code) == 5 && pg.Code[:2] == "08": // connection exception
			return true
		case pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03": // shutting down, crashed, starting up
			return true
		case pg.Code == "53300", pg.Code == "40001", pg.Code == "40P01": // too many connections; serialization, deadlock: retry
			return true
		}
		return false
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	var u interface{ Unavailable() bool }
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr):
		return true
	case pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrDisconnected):
		return true
	case errors.As(err, &u):
		return u.Unavailable()
	}
	return false
}
