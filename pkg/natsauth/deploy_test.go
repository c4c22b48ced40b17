package natsauth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/saisei-health/platform/pkg/natsauth"
)

// The configurations in deploy/nats include the generated trust: with it,
// nats-server accepts every one of them (single server and each cluster
// node), in operator mode.
func TestTheDeployConfigurationsTrustTheGeneratedChain(t *testing.T) {
	src := filepath.Join("..", "..", "deploy", "nats")
	dst := t.TempDir()
	for _, f := range []string{"nats-server.conf", "cluster/nats-1.conf", "cluster/nats-2.conf", "cluster/nats-3.conf"} {
		raw, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		// The containers' volume becomes a temporary directory.
		conf := strings.ReplaceAll(string(raw), "/data/jetstream", filepath.Join(dst, "js"))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trust, err := natsauth.LoadOrCreate(filepath.Join(dst, "secrets", "trust.json"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := trust.ServerConfig(filepath.Join(dst, "jwt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := natsauth.WriteCreds(filepath.Join(dst, "secrets", "auth.conf"), []byte(auth)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"nats-server.conf", "cluster/nats-1.conf", "cluster/nats-2.conf", "cluster/nats-3.conf"} {
		opts, err := server.ProcessConfigFile(filepath.Join(dst, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(opts.TrustedOperators) != 1 || opts.SystemAccount == "" || opts.AccountResolver == nil || !opts.JetStream {
			t.Errorf("%s: operator %d, system %q, resolver %v, jetstream %v", f, len(opts.TrustedOperators), opts.SystemAccount,
				opts.AccountResolver, opts.JetStream)
		}
		if opts.AccountResolver != nil {
			opts.AccountResolver.Close()
		}
	}
}
