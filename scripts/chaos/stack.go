package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/saisei-health/platform/pkg/devstack"
)

// stack is a whole platform the chaos run owns: its own Postgres (so it
// can kill and restart the postmaster), stripe-mock behind the recording
// proxy, an SMTP sink, toxiproxy in front of Postgres, NATS and Stripe, and
// devstack (every service and a nats-server process, supervised) on ports
// moved by offset, in a data directory of its own.
type stack struct {
	dir     string
	offset  int
	binDir  string
	pg      *devstack.Postgres
	pgMu    sync.Mutex
	mock    *devstack.StripeMock
	proxy   *devstack.StripeProxy
	mail    *devstack.MailSink
	toxics  *toxiproxy.ApiServer
	traces  *traceSink
	devCmd  *exec.Cmd
	devDone chan error
	log     io.Writer
}

const webhookSecret = "whsec_chaos_run"

// The ports of the stack, before the offset.
const (
	pgPort       = 15432
	pgFaultPort  = 16432
	natsPort     = 4222
	natsFault    = 5222
	stripePort   = 12111
	stripeFault  = 13111
	smtpPort     = 1025
	gatewayPort  = 8080
	servicesBase = 8081 // catalog, quoting, booking, payment, notification
)

// serviceNames are the supervised services, in devstack's port order.
var serviceNames = []string{"catalog", "quoting", "booking", "payment", "notification"}

func (s *stack) port(p int) int    { return p + s.offset }
func (s *stack) addr(p int) string { return fmt.Sprintf("127.0.0.1:%d", s.port(p)) }
func (s *stack) gateway() string   { return "http://" + s.addr(gatewayPort) }
func (s *stack) natsURL() string   { return "nats://" + s.addr(natsPort) }
func (s *stack) adminDSN() string  { return s.pg.AdminDSN("saisei") }
func (s *stack) operatorCreds() string {
	return filepath.Join(s.dir, "devstack", "nats-auth", "operator.creds")
}

// healthURL is where the named process answers /healthz.
func (s *stack) healthURL(name string) string {
	if name == "gateway" {
		return s.gateway() + "/healthz"
	}
	i := slices.Index(serviceNames, name)
	return "http://" + s.addr(servicesBase+i) + "/healthz"
}

func startStack(ctx context.Context, dir, binDir string, offset int, log io.Writer) (*stack, error) {
	s := &stack{dir: dir, offset: offset, binDir: binDir, log: log}
	var err error
	if s.pg, err = devstack.StartPostgres(ctx, filepath.Join(dir, "postgres"),
		devstack.PostgresOptions{Port: s.port(pgPort), Durable: true}); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if s.mock, err = devstack.StartStripeMock(ctx, s.port(stripePort), nil); err != nil {
		s.stop()
		return nil, fmt.Errorf("stripe-mock: %w", err)
	}
	if s.proxy, err = devstack.StartStripeProxy(s.mock.URL); err != nil {
		s.stop()
		return nil, err
	}
	if s.mail, err = devstack.StartMailSink(s.addr(smtpPort)); err != nil {
		s.stop()
		return nil, err
	}
	// Every service reaches Postgres, NATS and Stripe through toxiproxy,
	// where the run injects latency, timeouts, resets and partitions.
	s.toxics = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	stripeAddr := strings.TrimPrefix(s.proxy.URL, "http://")
	for _, p := range []struct{ name, listen, upstream string }{
		{"postgres", s.addr(pgFaultPort), s.addr(pgPort)},
		{"nats", s.addr(natsFault), s.addr(natsPort)},
		{"stripe", s.addr(stripeFault), stripeAddr},
	} {
		if err := s.toxics.Collection.Add(toxiproxy.NewProxy(s.toxics, p.name, p.listen, p.upstream), true); err != nil {
			s.stop()
			return nil, fmt.Errorf("toxiproxy %s: %w", p.name, err)
		}
	}
	if s.traces, err = startTraceSink(); err != nil {
		s.stop()
		return nil, err
	}
	faultyPG := strings.Replace(s.pg.AdminDSN("postgres"), s.addr(pgPort), s.addr(pgFaultPort), 1)
	dev := exec.Command(filepath.Join(binDir, "devstack"), "-data", filepath.Join(dir, "devstack"), "-bin", binDir)
	dev.Env = append(os.Environ(), "PORT_OFFSET="+strconv.Itoa(offset), "NATS_PROCESS=true",
		"NATS_SERVICE_URL=nats://"+s.addr(natsFault),
		"DATABASE_ADMIN_URL="+faultyPG,
		"STRIPE_API_KEY=sk_test_chaos", "STRIPE_API_BASE=http://"+s.addr(stripeFault), "STRIPE_WEBHOOK_SECRET="+webhookSecret,
		"SMTP_ADDR="+s.mail.Addr(), "SMTP_REQUIRE_TLS=false", "LOG_LEVEL=warn",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+s.traces.URL,
		// Patients, clinics and Stripe each call from an address of their
		// own, as a CDN in front of the gateway reports it.
		"GATEWAY_CLIENT_IP_HEADER=X-Forwarded-For")
	if dev.Dir, err = devstack.RepoRoot(); err != nil { // devstack reads the seeded catalog from there
		s.stop()
		return nil, err
	}
	dev.Stdout, dev.Stderr = log, log
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := dev.Start(); err != nil {
		s.stop()
		return nil, err
	}
	s.devCmd, s.devDone = dev, make(chan error, 1)
	go func() { s.devDone <- dev.Wait() }()
	if err := s.waitHealthy(ctx, 120*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitHealthy waits until the gateway answers /healthz.
func (s *stack) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.devDone:
			return fmt.Errorf("devstack exited: %v", err)
		default:
		}
		if resp, err := http.Get(s.gateway() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the platform did not become healthy")
}

// pids finds the processes running bin with args (the supervised services,
// nats-server), by /proc.
func pids(bin string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) > 0 && args[0] == bin {
			out = append(out, pid)
		}
	}
	return out
}

// kill sends SIGKILL to the process running bin; false when none was found.
func kill(bin string) bool {
	found := false
	for _, pid := range pids(bin) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			found = true
		}
	}
	return found
}

// killPostgres kills the postmaster with SIGKILL and starts it again on
// the same data directory once its orphaned backends are gone.
func (s *stack) killPostgres(ctx context.Context) error {
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	if err := s.pg.Kill(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pg, err := devstack.StartPostgres(ctx, s.pg.Dir, devstack.PostgresOptions{Port: s.pg.Port, Durable: true})
		if err == nil {
			s.pg = pg
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not come back: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stopPlatform stops devstack (the services, then nats-server) the way
// Ctrl-C does: each service drains and flushes its spans.
func (s *stack) stopPlatform() {
	if s.devCmd == nil {
		return
	}
	_ = s.devCmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.devDone:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-s.devCmd.Process.Pid, syscall.SIGKILL)
	}
	s.devCmd = nil
}

func (s *stack) stop() {
	s.stopPlatform()
	if s.toxics != nil {
		_ = s.toxics.Collection.Clear()
	}
	if s.traces != nil {
		s.traces.close()
	}
	if s.mail != nil {
		_ = s.mail.Close()
	}
	if s.proxy != nil {
		_ = s.proxy.Close()
	}
	if s.mock != nil {
		s.mock.Stop()
	}
	if s.pg != nil {
		s.pgMu.Lock()
		_ = s.pg.Stop()
		s.pgMu.Unlock()
	}
}
