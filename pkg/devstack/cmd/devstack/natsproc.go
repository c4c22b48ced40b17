package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/natsauth"
)

// startNATSProcess runs binDir/nats-server under sup with the platform's
// trust (the same operator, accounts and JWT directory as the embedded
// server, and the same JetStream store, synced on every write), and waits
// until it accepts connections.
func startNATSProcess(ctx context.Context, sup *devstack.Supervisor, trust *natsauth.Trust, dataDir, binDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(abs, "nats-auth")
	auth, err := trust.ServerConfig(filepath.Join(abs, "nats", "accounts"))
	if err != nil {
		return "", err
	}
	if err := natsauth.WriteCreds(filepath.Join(dir, "auth.conf"), []byte(auth)); err != nil {
		return "", err
	}
	conf := fmt.Sprintf("server_name: saisei-dev\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\ninclude ./auth.conf\n",
		natsPort, filepath.Join(abs, "nats"))
	path := filepath.Join(dir, "nats-server.conf")
	if err := natsauth.WriteCreds(path, []byte(conf)); err != nil {
		return "", err
	}
	if err := sup.Add(ctx, "nats", filepath.Join(binDir, "nats-server"), []string{"-c", path}, nil); err != nil {
		return "", fmt.Errorf("%w (run `make run`, which builds it)", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", natsPort)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return "nats://" + addr, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", errors.New("nats-server did not start; see its log above")
}
