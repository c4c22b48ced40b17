// Package devtest gives tests the platform's real dependencies: a fresh
// database in a real PostgreSQL, an embedded NATS JetStream server,
// stripe-mock and an SMTP sink. A test package that needs Postgres or
// stripe-mock calls devtest.Main from its TestMain.
package devtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/natsauth"
	"github.com/saisei-health/platform/pkg/pgdb"
)

// EnvPostgres names the variable holding a superuser DSN of a running
// cluster; `make test` starts one cluster and shares it with every package.
const EnvPostgres = "SAISEI_TEST_POSTGRES"

var (
	stripeOnce sync.Once
	stripeMock *devstack.StripeMock
	stripeErr  error
)

// Main runs the package's tests. Without SAISEI_TEST_POSTGRES, the first
// test that asks for a database starts a private PostgreSQL cluster for this
// test binary; Main removes it afterwards, so `go test` works on its own and
// leaves no server behind. Processes it started are stopped before it returns.
func Main(m *testing.M) int {
	code := m.Run()
	if stripeMock != nil {
		stripeMock.Stop()
	}
	if privatePG != nil {
		_ = privatePG.Stop()
		_ = os.RemoveAll(privatePGDir)
	}
	return code
}

var (
	pgOnce       sync.Once
	pgErr        error
	privatePG    *devstack.Postgres
	privatePGDir string
)

// adminDSN is the superuser DSN of the shared or private cluster.
func adminDSN() (string, error) {
	if dsn := os.Getenv(EnvPostgres); dsn != "" {
		return dsn, nil
	}
	pgOnce.Do(func() {
		if privatePGDir, pgErr = os.MkdirTemp("", "saisei-pg-"); pgErr != nil {
			return
		}
		// The server may run as the postgres user: let it reach its directory.
		_ = os.Chmod(privatePGDir, 0o755)
		privatePG, pgErr = devstack.StartPostgres(context.Background(), privatePGDir+"/data", devstack.PostgresOptions{})
	})
	if pgErr != nil {
		return "", pgErr
	}
	return privatePG.AdminDSN(""), nil
}

// NewDatabase creates an empty database for this test and returns its
// superuser DSN; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin, err := adminDSN()
	if err != nil {
		t.Fatalf("devtest: postgres: %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("devtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	name := "t_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("devtest: create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDatabase(admin, name, "", "")
}

// ServiceDSN provisions schema and role `service` in the database of adminDSN
// (as production's deploy/postgres/init.sql does) and returns the DSN the
// service connects with.
func ServiceDSN(t testing.TB, adminDSN, service string) string {
	t.Helper()
	if err := pgdb.Provision(context.Background(), adminDSN, service, service, service+"-secret"); err != nil {
		t.Fatalf("devtest: provision %s: %v", service, err)
	}
	u, _ := url.Parse(adminDSN)
	return withDatabase(adminDSN, u.Path[1:], service, service+"-secret")
}

func withDatabase(dsn, db, user, password string) string {
	u, _ := url.Parse(dsn)
	u.Path = "/" + db
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// NATS starts an embedded JetStream server for this test and returns its URL.
func NATS(t testing.TB) string {
	t.Helper()
	s, err := devstack.StartNATS(t.TempDir(), devstack.NATSOptions{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// SecureNATS starts an embedded JetStream server that, like make run's,
// trusts only its own operator: every connection needs credentials from
// the returned Trust (see Creds).
func SecureNATS(t testing.TB) (string, *natsauth.Trust) {
	t.Helper()
	trust, err := natsauth.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := devstack.StartNATS(t.TempDir(), devstack.NATSOptions{Fast: true, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL(), trust
}

// Creds issues a user of trust with permissions p and returns the path of
// its credentials file.
func Creds(t testing.TB, trust *natsauth.Trust, name string, p natsauth.Permissions) string {
	t.Helper()
	creds, _, err := trust.User(name, p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "user.creds")
	if err := natsauth.WriteCreds(path, creds); err != nil {
		t.Fatal(err)
	}
	return path
}

// Observer is a connection option for a test's own NATS client on a
// SecureNATS server: a user that may publish and read anything, standing
// in for the other services.
func Observer(t testing.TB, trust *natsauth.Trust) nats.Option {
	t.Helper()
	return nats.UserCredentials(Creds(t, trust, "test", natsauth.Operator()))
}

// ServiceCreds is the credentials file of service's own user on trust:
// allowed to publish only its own event tree, as under make run.
func ServiceCreds(t testing.TB, trust *natsauth.Trust, service string) string {
	t.Helper()
	return Creds(t, trust, service, natsauth.ServiceUser(service))
}

// ClinicIssuer writes trust's ClinicIssuer to a file and returns its path,
// for a catalog that issues and revokes clinics' NATS credentials
// (NATS_CLINIC_ISSUER).
func ClinicIssuer(t testing.TB, trust *natsauth.Trust) string {
	t.Helper()
	ci, err := trust.ClinicIssuer()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clinic-issuer.json")
	if err := ci.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// StripeMock returns the URL of this test binary's stripe-mock, starting it
// on first use.
func StripeMock(t testing.TB) string {
	t.Helper()
	stripeOnce.Do(func() {
		stripeMock, stripeErr = devstack.StartStripeMock(context.Background(), 0, nil)
	})
	if stripeErr != nil {
		t.Fatalf("devtest: %v", stripeErr)
	}
	return stripeMock.URL
}

// StripeProxy returns a recording, fault-injecting proxy in front of stripe-mock.
func StripeProxy(t testing.TB) *devstack.StripeProxy {
	t.Helper()
	p, err := devstack.StartStripeProxy(StripeMock(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// MailSink starts an SMTP sink for this test.
func MailSink(t testing.TB) *devstack.MailSink {
	t.Helper()
	s, err := devstack.StartMailSink("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RunService runs a service's Run function in the background until the test
// ends, and waits until baseURL answers /healthz.
func RunService(t testing.TB, baseURL string, run func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service %s: %v", baseURL, err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("service %s exited during start: %v", baseURL, err)
		default:
		}
		if resp, err := http.Get(baseURL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("service %s did not become healthy", baseURL)
}

// Addr returns a free loopback address and its base URL.
func Addr(t testing.TB) (addr, baseURL string) {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	return addr, "http://" + addr
}
