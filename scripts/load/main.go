// Command load is `make load`: it measures the platform that `make run`
// is running. It drives whole booking sagas through the gateway — quote,
// booking, the signed deposit webhook, harvest, cells ready, the signed
// balance webhook, administration — either N sagas at a concurrency
// (closed loop) or at a fixed arrival rate (open loop, so queueing shows),
// timing each step by the platform's own NATS events rather than by
// polling. It reports sagas/s, each step's latency percentiles, deposit
// webhook → clinic notice, CPU seconds per saga of every process,
// Postgres commits per saga, and `pgbench -N` on the same Postgres in the
// same run, with the ratio the performance targets are set in
// (docs/performance.md).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/saisei-health/platform/pkg/devstack"
)

type config struct {
	Gateway     string
	DataDir     string
	BinDir      string
	PostgresURL string
	Secret      string
	Sagas       int
	Concurrency int
	// Rate, when above zero, starts sagas at this many a second (open
	// loop) instead of keeping Concurrency in flight.
	Rate       float64
	PgBench    time.Duration
	PgClients  int
	IdleWindow time.Duration
	// Search, when above zero, runs the catalog search load for this long
	// with SearchClients.
	Search        time.Duration
	SearchClients int
	// Treatments, when above the seeded count, is how many treatments the
	// catalog should hold before the search load (added through the admin
	// API, once).
	Treatments int
	SeedFile   string
}

func main() {
	root, err := devstack.RepoRoot()
	if err != nil {
		fatal(err)
	}
	var cfg config
	flag.StringVar(&cfg.Gateway, "gateway", "http://127.0.0.1:8080", "make run's gateway")
	flag.StringVar(&cfg.DataDir, "data", filepath.Join(root, ".data"), "make run's data directory (NATS operator credentials)")
	flag.StringVar(&cfg.BinDir, "bin", filepath.Join(root, ".bin"), "where make run's service binaries are (to find their processes)")
	flag.StringVar(&cfg.PostgresURL, "postgres", "postgres://postgres:postgres@127.0.0.1:15432/saisei?sslmode=disable", "make run's Postgres, as superuser")
	flag.StringVar(&cfg.Secret, "webhook-secret", "whsec_local_dev", "the Stripe webhook secret make run's payment service checks")
	flag.IntVar(&cfg.Sagas, "sagas", 300, "whole sagas to drive")
	flag.IntVar(&cfg.Concurrency, "concurrency", 16, "sagas in flight (closed loop)")
	flag.Float64Var(&cfg.Rate, "rate", 0, "sagas started per second (open loop); 0 for closed loop")
	flag.DurationVar(&cfg.PgBench, "pgbench", 15*time.Second, "how long pgbench -N runs on the same Postgres afterwards (0: not at all)")
	flag.IntVar(&cfg.PgClients, "pgbench-clients", 8, "pgbench's clients")
	flag.DurationVar(&cfg.IdleWindow, "idle", 10*time.Second, "how long to count the idle platform's commits first (0: not at all)")
	flag.DurationVar(&cfg.Search, "search", 0, "how long to run the catalog search load afterwards (0: not at all)")
	flag.IntVar(&cfg.SearchClients, "search-clients", 16, "catalog searchers in parallel")
	flag.IntVar(&cfg.Treatments, "treatments", 0, "before the search load, add treatments through the admin API until the catalog holds this many (copies of the seeded ones; they stay)")
	flag.StringVar(&cfg.SeedFile, "seed", filepath.Join(root, "services", "catalog", "internal", "seed", "catalog.json"), "the seeded catalog the added treatments copy")
	repeat := flag.Int("repeat", 1, "runs one after another (each with its own pgbench), then their spread and median: the machines are noisy")
	reportPath := flag.String("report", "", "also write the report as JSON to this file (an array with -repeat)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var reps []*report
	for i := range max(*repeat, 1) {
		if *repeat > 1 {
			fmt.Printf("\n=== run %d of %d\n", i+1, *repeat)
		}
		rep, err := run(ctx, cfg)
		if err != nil {
			fatal(err)
		}
		rep.print(os.Stdout)
		reps = append(reps, rep)
	}
	if len(reps) > 1 {
		printSpread(os.Stdout, reps)
	}
	if *reportPath != "" {
		var v any = reps[0]
		if len(reps) > 1 {
			v = reps
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(*reportPath, b, 0o644); err != nil {
			fatal(err)
		}
	}
}

// printSpread prints each run's headline figures and their medians.
func printSpread(w io.Writer, reps []*report) {
	fmt.Fprintf(w, "\n  %-8s %10s %12s %9s %14s %16s\n", "run", "sagas/s", "pgbench tps", "ratio", "CPU ms/saga", "commits/saga")
	var sagas, tps, ratio, cpu, commits []float64
	for i, r := range reps {
		fmt.Fprintf(w, "  %-8d %10.2f %12.0f %9.4f %14.1f %16.1f\n", i+1, r.SagasPerSecond, r.PgBenchTPS, r.Ratio, r.CPUTotal*1000, r.CommitsPerSaga)
		sagas, tps, ratio = append(sagas, r.SagasPerSecond), append(tps, r.PgBenchTPS), append(ratio, r.Ratio)
		cpu, commits = append(cpu, r.CPUTotal*1000), append(commits, r.CommitsPerSaga)
	}
	fmt.Fprintf(w, "  %-8s %10.2f %12.0f %9.4f %14.1f %16.1f\n", "median", median(sagas), median(tps), median(ratio), median(cpu), median(commits))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "load:", err)
	os.Exit(1)
}
