// Command devstack is `make run`: it starts the platform's dependencies on
// this machine — PostgreSQL in .data/postgres, an embedded NATS JetStream
// server storing in .data/nats, stripe-mock and an SMTP sink — provisions a
// schema and role per service, then runs every service binary from .bin/
// with its configuration, prefixing their logs. Ctrl-C stops the services
// first, then the dependencies; the next run keeps the data.
//
// Anything already provided is used instead: DATABASE_ADMIN_URL (an
// external Postgres), NATS_URL (an external NATS or cluster), STRIPE_API_KEY
// with STRIPE_API_BASE (real Stripe test mode), SMTP_ADDR (a real relay).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/devstack"
	"github.com/saisei-health/platform/pkg/identity/devissuer"
	"github.com/saisei-health/platform/pkg/natsauth"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/sealed"
)

const (
	audience = "https://api.saisei.health"
	database = "saisei"
)

// Ports of the local stack. Services listen on loopback; the gateway on all
// interfaces so a phone on the LAN can reach it. PORT_OFFSET moves them
// all, so a second stack (the chaos run's) can run beside make run.
var (
	pgPort      = 15432
	natsPort    = 4222
	stripePort  = 12111
	gatewayPort = 8080
	smtpAddr    = "127.0.0.1:1025"
	issuerAddr  = "127.0.0.1:8090"
	mailUIAddr  = "127.0.0.1:8025"
	// debugBase is the first service's profiles (DEBUG_ADDR), in the
	// order of services: 6061 catalog … 6066 gateway.
	debugBase = 6061
)

var services = []struct {
	name string
	addr string
}{
	{"catalog", "127.0.0.1:8081"},
	{"quoting", "127.0.0.1:8082"},
	{"booking", "127.0.0.1:8083"},
	{"payment", "127.0.0.1:8084"},
	{"notification", "127.0.0.1:8085"},
	{"gateway", ":8080"},
}

// offsetPorts moves every port of the stack by n.
func offsetPorts(n int) {
	pgPort, natsPort, stripePort, gatewayPort, debugBase = pgPort+n, natsPort+n, stripePort+n, gatewayPort+n, debugBase+n
	smtpAddr, issuerAddr, mailUIAddr = fmt.Sprintf("127.0.0.1:%d", 1025+n), fmt.Sprintf("127.0.0.1:%d", 8090+n),
		fmt.Sprintf("127.0.0.1:%d", 8025+n)
	for i, s := range services {
		host, port, _ := strings.Cut(s.addr, ":")
		p, _ := strconv.Atoi(port)
		services[i].addr = fmt.Sprintf("%s:%d", host, p+n)
	}
}

// gatewayURL is the gateway on loopback.
func gatewayURL() string { return fmt.Sprintf("http://127.0.0.1:%d", gatewayPort) }

func main() {
	root, err := devstack.RepoRoot()
	if err != nil {
		fatal(err)
	}
	dataDir := flag.String("data", filepath.Join(root, ".data"), "where Postgres and NATS keep their data")
	binDir := flag.String("bin", filepath.Join(root, ".bin"), "where the service binaries are")
	flag.Parse()
	if off := os.Getenv("PORT_OFFSET"); off != "" {
		n, err := strconv.Atoi(off)
		if err != nil || n < 0 || n > 40000 {
			fatal(fmt.Errorf("PORT_OFFSET %q is not a number from 0 to 40000", off))
		}
		offsetPorts(n)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dataDir, *binDir); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "devstack:", err)
	os.Exit(1)
}

func run(ctx context.Context, dataDir, binDir string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	_ = os.Chmod(dataDir, 0o755) // the Postgres server may run as the postgres user
	logs := newLogMux()
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	adminURL := os.Getenv("DATABASE_ADMIN_URL")
	if adminURL == "" {
		logs.line("devstack", "starting PostgreSQL in "+filepath.Join(dataDir, "postgres"))
		pg, err := devstack.StartPostgres(ctx, filepath.Join(dataDir, "postgres"), devstack.PostgresOptions{
			Port: pgPort, Durable: true, Log: logs.writer("postgres")})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() { logs.line("devstack", "stopping PostgreSQL"); _ = pg.Stop() })
		adminURL = pg.AdminDSN("postgres")
	}
	dbURL, err := ensureDatabase(ctx, adminURL, database)
	if err != nil {
		return err
	}
	dsns := map[string]string{}
	for _, s := range services[:5] {
		password := s.name + "-dev"
		if err := pgdb.Provision(ctx, dbURL, s.name, s.name, password); err != nil {
			return err
		}
		u, _ := url.Parse(dbURL)
		u.User = url.UserPassword(s.name, password)
		dsns[s.name] = u.String()
	}

	// NATS: each service and each clinic on credentials of its own
	// (docs/clinic-integration.md); an external server brings its own, as
	// <SERVICE>_NATS_CREDS.
	// Supervised dependencies (a nats-server process), stopped after the services.
	infra := &devstack.Supervisor{Log: logs.line, Output: logs.writer}
	cleanups = append(cleanups, func() { infra.Stop(10 * time.Second) })
	natsURL := os.Getenv("NATS_URL")
	natsCreds := map[string]string{}
	var clinicCreds, clinicIssuer string
	if natsURL == "" {
		trust, err := natsauth.LoadOrCreate(filepath.Join(dataDir, "nats-auth", "trust.json"))
		if err != nil {
			return err
		}
		if os.Getenv("NATS_PROCESS") == "true" {
			// A real nats-server, its own supervised process: it can be
			// killed and comes back (the chaos run does).
			if natsURL, err = startNATSProcess(ctx, infra, trust, dataDir, binDir); err != nil {
				return err
			}
		} else {
			ns, err := devstack.StartNATS(filepath.Join(dataDir, "nats"), devstack.NATSOptions{Port: natsPort, Trust: trust})
			if err != nil {
				return err
			}
			cleanups = append(cleanups, func() { logs.line("devstack", "stopping NATS"); ns.Shutdown(); ns.WaitForShutdown() })
			natsURL = ns.ClientURL()
		}
		if natsCreds, err = issueServiceCreds(trust, filepath.Join(dataDir, "nats-auth")); err != nil {
			return err
		}
		// The catalog issues and revokes clinics' credentials (the admin API).
		issuer, err := trust.ClinicIssuer()
		if err != nil {
			return err
		}
		clinicIssuer = filepath.Join(dataDir, "nats-auth", "clinic-issuer.json")
		if err := issuer.Save(clinicIssuer); err != nil {
			return err
		}
		clinicCreds = filepath.Join(dataDir, "clinics")
	} else {
		for _, s := range services {
			if c := os.Getenv(strings.ToUpper(s.name) + "_NATS_CREDS"); c != "" {
				natsCreds[s.name] = c
			}
		}
	}

	stripeKey, stripeBase := os.Getenv("STRIPE_API_KEY"), os.Getenv("STRIPE_API_BASE")
	if stripeKey == "" {
		sm, err := devstack.StartStripeMock(ctx, stripePort, logs.writer("stripe-mock"))
		if err != nil {
			return err
		}
		cleanups = append(cleanups, sm.Stop)
		stripeKey, stripeBase = "sk_test_localDevStripeMock", sm.URL
	} else if stripeBase == "" {
		stripeBase = "https://api.stripe.com"
	}
	webhookSecret := envOr("STRIPE_WEBHOOK_SECRET", "whsec_local_dev")

	smtp := os.Getenv("SMTP_ADDR")
	if smtp == "" {
		sink, err := devstack.StartMailSink(smtpAddr)
		if err != nil {
			return err
		}
		sink.KeepLast(1000) // the mail UI shows the latest; a load test sends thousands
		cleanups = append(cleanups, func() { _ = sink.Close() })
		go serveMailUI(ctx, sink, logs)
		smtp = smtpAddr
	}

	// Identity: an external issuer when OIDC_ISSUER_URL is given (each
	// service then needs OIDC_CLIENT_ID/SECRET of its own from the
	// environment, as <SERVICE>_OIDC_CLIENT_ID/SECRET), otherwise the dev
	// issuer, with fresh client secrets every run.
	issuerURL := os.Getenv("OIDC_ISSUER_URL")
	clientSecrets := map[string]string{}
	for _, s := range services {
		clientSecrets[s.name] = envOr(strings.ToUpper(s.name)+"_OIDC_CLIENT_SECRET", randomSecret())
	}
	devIssuer := issuerURL == ""
	var dev *devissuer.Issuer
	if devIssuer {
		issuerURL = "http://" + issuerAddr
		var stopIssuer func()
		var err error
		dev, stopIssuer, err = startDevIssuer(ctx, issuerURL, envOr("OIDC_AUDIENCE", audience), clientSecrets, logs)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, stopIssuer)
	}

	urls := map[string]string{}
	for _, s := range services {
		urls[s.name] = "http://" + strings.Replace(s.addr, "0.0.0.0", "127.0.0.1", 1)
	}
	// NATS_SERVICE_URL: the services reach NATS through another address
	// (the chaos run puts a fault-injecting proxy there).
	common := []string{"NATS_URL=" + envOr("NATS_SERVICE_URL", natsURL), "LOG_LEVEL=" + envOr("LOG_LEVEL", "info"),
		"CATALOG_URL=" + urls["catalog"], "QUOTING_URL=" + urls["quoting"], "BOOKING_URL=" + urls["booking"],
		"PAYMENT_URL=" + urls["payment"], "NOTIFICATION_URL=" + urls["notification"]}
	common = append(common, "OIDC_ISSUER_URL="+issuerURL, "OIDC_AUDIENCE="+envOr("OIDC_AUDIENCE", audience))
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "NATS_STREAM_REPLICAS", "FX_RATES", "PATH", "HOME",
		"OIDC_ROLE_CLAIM", "OIDC_CLINIC_CLAIM"} {
		if v, ok := os.LookupEnv(k); ok {
			common = append(common, k+"="+v)
		}
	}
	keyset, err := dataKeyset(filepath.Join(dataDir, "keys"))
	if err != nil {
		return err
	}
	env := map[string][]string{
		"catalog": {"NATS_CLINIC_ISSUER=" + clinicIssuer},
		"quoting": {"DATA_KEYSET=" + keyset},
		"payment": {"STRIPE_API_KEY=" + stripeKey, "STRIPE_API_BASE=" + stripeBase, "STRIPE_WEBHOOK_SECRET=" + webhookSecret},
		// make run alone lets a clinic developer's webhook receiver on
		// http://127.0.0.1 be registered.
		"notification": {"SMTP_ADDR=" + smtp, "SMTP_REQUIRE_TLS=" + envOr("SMTP_REQUIRE_TLS", localSMTPTLS(smtp)),
			"DATA_KEYSET=" + keyset, "WEBHOOK_ALLOW_LOOPBACK_HTTP=true"},
	}

	for _, k := range []string{"GATEWAY_RATE_PER_CLIENT", "GATEWAY_RATE_BURST", "GATEWAY_STRIPE_CALLS_PER_SECOND",
		"GATEWAY_STRIPE_BURST", "GATEWAY_CLIENT_IP_HEADER"} {
		if v, ok := os.LookupEnv(k); ok {
			env["gateway"] = append(env["gateway"], k+"="+v)
		}
	}
	if devIssuer {
		// Only while the dev issuer runs does the gateway route
		// POST /v1/dev/tokens to it.
		env["gateway"] = append(env["gateway"], "DEV_ISSUER_URL="+issuerURL)
	}

	// Supervised as an orchestrator would: a service that exits or is
	// killed is started again with backoff; only Ctrl-C stops them all.
	procs := &devstack.Supervisor{Log: logs.line, Output: logs.writer}
	stop := func() { procs.Stop(20 * time.Second) }
	for i, s := range services {
		e := append(append([]string{"HTTP_ADDR=" + s.addr, "DATABASE_URL=" + dsns[s.name],
			fmt.Sprintf("DEBUG_ADDR=127.0.0.1:%d", debugBase+i)}, common...), env[s.name]...)
		e = append(e, "OIDC_CLIENT_ID="+envOr(strings.ToUpper(s.name)+"_OIDC_CLIENT_ID", s.name), "OIDC_CLIENT_SECRET="+clientSecrets[s.name])
		if c, ok := natsCreds[s.name]; ok {
			e = append(e, "NATS_CREDS="+c)
		}
		if err := procs.Add(ctx, s.name, filepath.Join(binDir, s.name), nil, e); err != nil {
			stop()
			return fmt.Errorf("%w (run `make run`, which builds it)", err)
		}
	}
	// Every service, not only the gateway: the catalog must be serving
	// before the clinics' credentials are asked of it.
	for _, s := range services {
		url := urls[s.name]
		if s.name == "gateway" {
			url = gatewayURL()
		}
		if err := waitHealthy(ctx, url+"/healthz", 60*time.Second); err != nil {
			stop()
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if clinicCreds != "" && dev != nil {
		// Through the admin API, as an operator would: listed and revocable.
		if err := issueClinicCreds(ctx, dev, clinicCreds); err != nil {
			stop()
			return fmt.Errorf("clinic NATS credentials: %w", err)
		}
	} else {
		clinicCreds = ""
	}
	printBanner(dsns, natsURL, stripeBase, webhookSecret, smtp, issuerURL, devIssuer, clinicCreds)

	<-ctx.Done()
	logs.line("devstack", "stopping services")
	stop()
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ensureDatabase creates the platform's database if missing and returns its
// superuser URL.
func ensureDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return "", err
		}
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func waitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok, _ := get(ctx, url); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("not healthy in time; see the logs above")
}

var bannerOnce sync.Once

func printBanner(dsns map[string]string, natsURL, stripeBase, webhookSecret, smtp, issuerURL string, devIssuer bool, clinicCreds string) {
	bannerOnce.Do(func() {
		tokens := "POST " + gatewayURL() + "/v1/dev/tokens {\"role\": \"patient\"|\"clinic\"|\"finance\"|\"admin\", \"subject\": \"me\"}"
		if !devIssuer {
			tokens = "from your issuer"
		}
		creds := "from your NATS operator"
		if clinicCreds != "" {
			creds = filepath.Join(clinicCreds, "<clinic_id>.creds") + "   (nats --creds …; docs/clinic-integration.md)"
		}
		fmt.Printf(`
  Saisei is running. Ctrl-C stops it; data stays in .data/.

  Gateway (the API)      %s        try: curl '%s/v1/treatments?condition=stroke&city=tokyo'
  OpenID issuer          %s
  Tokens                 %s
  Emails sent            http://%s/api/messages
  SMTP                   %s
  NATS JetStream         %s
  Clinic NATS creds      %s
  Stripe API             %s   (webhook secret %s)
  Postgres (booking)     %s

`, gatewayURL(), gatewayURL(), issuerURL, tokens, mailUIAddr, smtp, natsURL, creds, stripeBase, webhookSecret, dsns["booking"])
	})
}

// startDevIssuer serves the dev OpenID Connect issuer at url until ctx ends.
func startDevIssuer(ctx context.Context, url, audience string, clients map[string]string, logs *logMux) (*devissuer.Issuer, func(), error) {
	iss, err := devissuer.New(url, audience, clients)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", issuerAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("dev issuer: %w", err)
	}
	srv := &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logs.line("devstack", "dev OpenID issuer at "+url+" (tokens for any role: never run this in production)")
	return iss, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// randomSecret is a fresh client secret.
func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// localSMTPTLS is the TLS requirement for the relay: the local sink speaks
// plain SMTP, a relay you provide is held to TLS unless you say otherwise.
func localSMTPTLS(smtp string) string {
	if smtp == smtpAddr {
		return "false"
	}
	return "true"
}

// dataKeyset is the Tink keyset sealing health information locally, made
// once and kept in .data/keys so sealed rows open after a restart
// (DATA_KEYSET given in the environment wins).
func dataKeyset(dir string) (string, error) {
	if ks := os.Getenv("DATA_KEYSET"); ks != "" {
		return ks, nil
	}
	path := filepath.Join(dir, "data-keyset.json")
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	ks, err := sealed.NewKeysetJSON()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return ks, os.WriteFile(path, []byte(ks), 0o600)
}

// issueServiceCreds writes a fresh user for each service, and one for the
// operator's tools (deadletters), into dir; it returns each service's file.
func issueServiceCreds(trust *natsauth.Trust, dir string) (map[string]string, error) {
	files := map[string]string{}
	for name := range natsauth.ServiceTrees {
		creds, _, err := trust.User(name, natsauth.ServiceUser(name))
		if err != nil {
			return nil, err
		}
		files[name] = filepath.Join(dir, name+".creds")
		if err := natsauth.WriteCreds(files[name], creds); err != nil {
			return nil, err
		}
	}
	// The operator replays dead letters onto any subject.
	creds, _, err := trust.User("operator", natsauth.Operator())
	if err != nil {
		return nil, err
	}
	return files, natsauth.WriteCreds(filepath.Join(dir, "operator.creds"), creds)
}
