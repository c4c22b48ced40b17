package devstack

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/saisei-health/platform/pkg/natsauth"
)

// NATSOptions tune StartNATS.
type NATSOptions struct {
	Port int // 0 picks a free port
	// Fast trades the fsync-on-every-write setting for speed; tests only.
	Fast bool
	// Trust, when set, is the only operator the server trusts: every
	// connection needs credentials it issued (no anonymous connections).
	Trust *natsauth.Trust
}

// StartNATS runs an embedded nats-server with JetStream storing in dir.
//
// Streams carry money, so JetStream syncs every write to disk before
// acknowledging (sync_interval: always): by default it acknowledges before
// fsync and can lose acknowledged messages on power loss.
func StartNATS(dir string, opt NATSOptions) (*server.Server, error) {
	port := opt.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	o := &server.Options{
		ServerName: "saisei-dev",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: !opt.Fast,
		NoSigs:     true,
		NoLog:      true,
	}
	if opt.Trust != nil {
		// Account JWTs beside JetStream's store, so revocations outlive a restart.
		if err := opt.Trust.Configure(o, filepath.Join(dir, "accounts")); err != nil {
			return nil, fmt.Errorf("devstack: nats-server: %w", err)
		}
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("devstack: nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("devstack: nats-server not ready")
	}
	return s, nil
}
