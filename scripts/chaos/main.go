// Command chaos is `make chaos`: it starts a whole platform of its own on
// loopback (Postgres, a nats-server process, stripe-mock behind the
// recording proxy, an SMTP sink, every service supervised by devstack, and
// toxiproxy in front of Postgres, NATS and Stripe), drives many whole
// bookings through the gateway as real clients do, breaks things at random
// moments while they run — kill -9 of services, NATS and the Postgres
// postmaster, latency, timeouts, resets and partitions on the links — and
// then checks every guarantee from the system of record. It prints a
// report and exits 1 if any invariant was violated.
//
// A failing run is reproduced with the seed it printed: -seed N.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/devstack"
)

// config bounds a run.
type config struct {
	Bookings    int
	Concurrency int
	// Drive bounds the time journeys may start in; Settle the time after
	// the faults stop for the platform to catch up and journeys to end.
	Drive      time.Duration
	Settle     time.Duration
	FaultEvery time.Duration
	Faults     map[string]bool
	Seed       uint64
	QCFailRate float64
	DupRate    float64
	StaleRate  float64
	Offset     int
	DataDir    string
	BinDir     string
	Keep       bool
	Log        io.Writer
}

func main() {
	root, err := devstack.RepoRoot()
	if err != nil {
		fatal(err)
	}
	cfg := config{Faults: map[string]bool{}}
	flag.IntVar(&cfg.Bookings, "bookings", 1000, "whole bookings to drive")
	flag.IntVar(&cfg.Concurrency, "concurrency", 32, "bookings in flight at once")
	flag.DurationVar(&cfg.Drive, "drive", 15*time.Minute, "the most time bookings may be started in")
	flag.DurationVar(&cfg.Settle, "settle", 3*time.Minute, "the most time, after the faults stop, for every booking to end")
	flag.DurationVar(&cfg.FaultEvery, "fault-every", 2*time.Second, "mean time between faults")
	faults := flag.String("faults", "all", "fault kinds, comma-separated: all, none, or of "+strings.Join(faultKeys(), ","))
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: from the clock); a failing run prints its seed")
	flag.Float64Var(&cfg.QCFailRate, "qc-fail", 0.15, "share of cells that fail QC")
	flag.Float64Var(&cfg.DupRate, "duplicate", 0.3, "share of Stripe events delivered twice at once")
	flag.Float64Var(&cfg.StaleRate, "stale", 0.3, "share of payments whose stale processing event arrives after the success")
	flag.IntVar(&cfg.Offset, "port-offset", 10000, "moves every port of the run's platform (beside make run's)")
	flag.StringVar(&cfg.DataDir, "data", filepath.Join(root, ".data", "chaos"), "where the run's platform keeps its data (emptied first)")
	flag.StringVar(&cfg.BinDir, "bin", filepath.Join(root, ".bin"), "where devstack, the services and nats-server are built")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the data directory afterwards")
	reportPath := flag.String("report", "", "also write the report as JSON to this file")
	verbose := flag.Bool("v", false, "show the platform's logs")
	flag.Parse()
	if cfg.Faults, err = parseFaults(*faults); err != nil {
		fatal(err)
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	cfg.Log = io.Discard
	if *verbose {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg)
	if err != nil {
		fatal(err)
	}
	rep.print(os.Stdout)
	if *reportPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*reportPath, b, 0o644); err != nil {
			fatal(err)
		}
	}
	if !rep.Passed() {
		fmt.Printf("\nFAILED: reproduce with -seed %d\n", cfg.Seed)
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "chaos:", err)
	os.Exit(2)
}

var faultFlags = map[string]string{
	"service": killService, "nats": killNATS, "postgres": killPostgres,
	"latency": netLatency, "timeout": netTimeout, "reset": netReset, "partition": netPartition,
}

func faultKeys() []string {
	keys := make([]string, 0, len(faultFlags))
	for k := range faultFlags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseFaults(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, k := range strings.Split(s, ",") {
		switch k = strings.TrimSpace(k); k {
		case "none", "":
		case "all":
			for _, kind := range faultKinds {
				out[kind] = true
			}
		default:
			kind, ok := faultFlags[k]
			if !ok {
				return nil, fmt.Errorf("unknown fault %q (want all, none or %s)", k, strings.Join(faultKeys(), ", "))
			}
			out[kind] = true
		}
	}
	return out, nil
}

// run is one whole chaos run.
func run(ctx context.Context, cfg config) (*report, error) {
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	_ = os.Chmod(cfg.DataDir, 0o755) // Postgres may run as the postgres user
	if !cfg.Keep {
		defer os.RemoveAll(cfg.DataDir)
	}
	started := time.Now()
	s, err := startStack(ctx, cfg.DataDir, cfg.BinDir, cfg.Offset, cfg.Log)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	rep := &report{Seed: cfg.Seed, Bookings: cfg.Bookings, Concurrency: cfg.Concurrency, StartUp: time.Since(started)}

	stats := newClientStats()
	c := &client{base: s.gateway(), stats: stats, http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: cfg.Concurrency * 2, IdleConnTimeout: 30 * time.Second}}}
	clinicID, err := ready(ctx, c)
	if err != nil {
		return nil, err
	}
	d := &driver{c: c, webhookPath: "/v1/webhooks/stripe", secret: webhookSecret, runID: fmt.Sprint(cfg.Seed % 1_000_000),
		seed: cfg.Seed, qcFailRate: cfg.QCFailRate, dupRate: cfg.DupRate, staleRate: cfg.StaleRate,
		clinics: &clinicTokens{tokens: map[string]string{}}, customerOf: customerOf(s.proxy)}
	// The clinic takes its notices by signed webhook too.
	endpoint, err := startClinicEndpoint(cfg.Seed, 0.1)
	if err != nil {
		return nil, err
	}
	defer endpoint.close()
	clinicToken, err := d.clinicToken(ctx, clinicID)
	if err != nil {
		return nil, err
	}
	if err := endpoint.register(ctx, c.from(clinicIP), clinicToken); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	journeys := make([]*journey, cfg.Bookings)
	for i := range journeys {
		journeys[i] = &journey{N: i, Key: fmt.Sprintf("chaos-%d-%d", cfg.Seed, i),
			Email: fmt.Sprintf("chaos-%d@example.com", i), QCFails: rng.Float64() < cfg.QCFailRate}
	}

	// Faults run while bookings are driven; journeys in flight when the
	// faults stop finish within the settle time.
	faultCtx, stopFaults := context.WithCancel(ctx)
	in := &injector{s: s, rng: rand.New(rand.NewPCG(cfg.Seed, 1)), every: cfg.FaultEvery, kinds: cfg.Faults, begin: time.Now()}
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); in.run(faultCtx) }()

	driveStart := time.Now()
	journeyCtx, cancelJourneys := context.WithTimeout(ctx, cfg.Drive+cfg.Settle)
	defer cancelJourneys()
	next := make(chan *journey)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				d.run(journeyCtx, j)
			}
		}()
	}
	driveEnd := time.After(cfg.Drive)
feed:
	for _, j := range journeys {
		select {
		case next <- j:
		case <-driveEnd:
			j.Err = fmt.Errorf("not started: the drive time (%s) ran out", cfg.Drive)
			for _, rest := range journeys[j.N+1:] {
				rest.Err = j.Err
			}
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	// The faults stop once every booking has started (or the drive time
	// ran out); those in flight finish on a healing platform.
	stopFaults()
	<-faultsDone
	rep.FaultsStopped = time.Since(driveStart)
	if err := s.ensureUp(ctx); err != nil {
		return nil, err
	}
	wg.Wait()
	rep.Drive = time.Since(driveStart)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	db, err := pgxpool.New(ctx, s.adminDSN())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	nc, js, err := connectJetStream(s)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if rep.Settle, err = settle(ctx, db, js, cfg.Settle); err != nil {
		rep.SettleErr = err.Error()
	}
	ch := &checker{s: s, db: db, js: js, journeys: journeys, spans: s.traces, endpoint: endpoint, faults: in.injected(), faultsBegin: in.begin}
	if err := ch.run(ctx); err != nil {
		return nil, fmt.Errorf("checking: %w", err)
	}
	// Spans are exported in batches: the services flush what they hold
	// when they stop, so the traces are checked once they have.
	s.stopPlatform()
	if err := ch.traces(ctx); err != nil {
		return nil, fmt.Errorf("checking traces: %w", err)
	}
	rep.Checks = ch.checks
	rep.Faults = in.injected()
	rep.finish(journeys, stats)
	return rep, nil
}

// ready waits until the platform can issue a quote for the journeys'
// treatment (quoting learns the catalog from events); it returns the
// treatment's clinic.
func ready(ctx context.Context, c *client) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	token, err := c.token(ctx, "patient", "chaos-probe", "")
	if err != nil {
		return "", err
	}
	yes, no := true, false
	for {
		a, err := c.do(ctx, "POST", "/v1/quotes", token, map[string]any{
			"treatment_id": treatmentID, "dose_cells": dose, "currency": "jpy",
			"patient":   map[string]string{"name": "Probe", "email": "probe@example.com", "country": "JP", "language": "ja"},
			"screening": map[string]*bool{"diagnosis_confirmed": &yes, "severe_organ_disease": &no, "can_travel": &yes},
		}, nil)
		if err != nil {
			return "", fmt.Errorf("the platform never issued a quote: %w", err)
		}
		if a.Status == http.StatusCreated {
			var q struct {
				ClinicID string `json:"clinic_id"`
			}
			return q.ClinicID, a.decode(&q)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the platform never issued a quote: last %d %s", a.Status, a.Body)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// customerOf finds the customer payment created for a booking in the
// requests the recording proxy saw (stripe-mock answers every customer with
// its fixture, so the form is where the booking's customer is named).
func customerOf(p *devstack.StripeProxy) func(string) string {
	return func(bookingID string) string {
		for _, r := range p.Requests() {
			if r.Method == "POST" && r.Path == "/v1/payment_intents" && r.Form.Get("metadata[booking_id]") == bookingID {
				return r.Form.Get("customer")
			}
		}
		return ""
	}
}

// ensureUp waits until everything the faults broke is back: Postgres
// restarted, the links healed, every service answering.
func (s *stack) ensureUp(ctx context.Context) error {
	s.clearToxics()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, name := range append(append([]string{}, serviceNames...), "gateway") {
		for {
			resp, err := http.Get(s.healthURL(name))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not come back after the faults", name)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
