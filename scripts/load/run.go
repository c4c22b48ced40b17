package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// report is what a run measured.
type report struct {
	Mode            string                 `json:"mode"`
	Sagas           int                    `json:"sagas"`
	Completed       int                    `json:"completed"`
	Errors          []string               `json:"errors,omitempty"`
	Elapsed         time.Duration          `json:"elapsed"`
	SagasPerSecond  float64                `json:"sagas_per_second"`
	Steps           map[string]percentiles `json:"steps"`
	CPUPerSaga      map[string]float64     `json:"cpu_seconds_per_saga"`
	CPUTotal        float64                `json:"cpu_seconds_per_saga_total"`
	CommitsPerSaga  float64                `json:"commits_per_saga"`
	IdleCommitsPerS float64                `json:"idle_commits_per_second"`
	PgBenchTPS      float64                `json:"pgbench_tps"`
	Ratio           float64                `json:"sagas_per_pgbench_tps"`
	Search          *searchResult          `json:"catalog_search,omitempty"`
	TreatmentsAdded int                    `json:"treatments_added,omitempty"`
	PeakRSSMB       map[string]float64     `json:"peak_rss_mb"`
	stepOrder       []string
}

type percentiles struct {
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
	N   int           `json:"n"`
}

func percentilesOf(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1], N: len(d)}
}

func run(ctx context.Context, cfg config) (*report, error) {
	db, err := pgxpool.New(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	pgURL, err := url.Parse(cfg.PostgresURL)
	if err != nil {
		return nil, err
	}
	pgPort, _ := strconv.Atoi(pgURL.Port())
	natsURL := "nats://127.0.0.1:4222"
	events, err := watchEvents(natsURL, filepath.Join(cfg.DataDir, "nats-auth", "operator.creds"))
	if err != nil {
		return nil, fmt.Errorf("NATS (is make run running?): %w", err)
	}
	defer events.close()

	a := &api{base: cfg.Gateway, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}}
	runID := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	r := &sagaRunner{api: a, events: events, secret: cfg.Secret, runID: runID,
		stats: &sagaStats{timings: map[string][]time.Duration{}}}
	if r.patient, err = a.token(ctx, "patient", "load-"+runID, ""); err != nil {
		return nil, fmt.Errorf("a patient token (is make run running?): %w", err)
	}
	var t struct {
		Clinic struct {
			ID string `json:"id"`
		} `json:"clinic"`
	}
	if _, err := a.call(ctx, "GET", "/v1/treatments/"+treatmentID, "", nil, nil, &t); err != nil {
		return nil, err
	}
	if r.staff, err = a.token(ctx, "clinic", "load-staff", t.Clinic.ID); err != nil {
		return nil, err
	}

	rep := &report{Sagas: cfg.Sagas, stepOrder: steps}
	if cfg.IdleWindow > 0 {
		if rep.IdleCommitsPerS, err = idleCommits(ctx, db, cfg.IdleWindow); err != nil {
			return nil, err
		}
	}
	rss := sampleRSS(cfg.BinDir)
	defer func() {
		if rep.PeakRSSMB == nil {
			rep.PeakRSSMB = rss.peaks()
		}
	}()
	if cfg.Treatments > 0 {
		added, took, err := loadTreatments(ctx, a, cfg.SeedFile, cfg.Treatments, 16)
		if err != nil {
			return nil, fmt.Errorf("adding treatments: %w", err)
		}
		rep.TreatmentsAdded = added
		if added > 0 {
			fmt.Fprintf(os.Stderr, "load: added %d treatments in %s; waiting for the catalog's index\n", added, took.Round(time.Second))
		}
	}
	if cfg.Search > 0 {
		// The report names how many treatments were searched.
		listed, err := waitForTreatments(ctx, a, cfg.Treatments)
		if err != nil {
			return nil, err
		}
		s := searchLoad(ctx, cfg.Gateway, cfg.SearchClients, cfg.Search)
		s.Treatments = listed
		rep.Search = &s
	}
	if cfg.Sagas == 0 {
		rep.Mode = "no sagas"
		return rep, nil
	}
	// Warm up: one saga, so connections and caches are as they will be.
	if err := r.saga(ctx, -1); err != nil {
		return nil, fmt.Errorf("the first saga failed: %w", err)
	}
	r.stats.timings = map[string][]time.Duration{}

	cpuBefore, err := cpuSeconds(cfg.BinDir, pgPort)
	if err != nil {
		return nil, err
	}
	commitsBefore, err := commits(ctx, db)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	one := func(n int) {
		defer wg.Done()
		if err := r.saga(ctx, n); err != nil {
			r.failed(n, err)
			return
		}
		r.stats.mu.Lock()
		r.stats.done++
		r.stats.mu.Unlock()
	}
	if cfg.Rate > 0 {
		rep.Mode = fmt.Sprintf("open loop, %.1f sagas/s arriving", cfg.Rate)
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		for n := 0; n < cfg.Sagas && ctx.Err() == nil; n++ {
			wg.Add(1)
			go one(n)
			<-tick.C
		}
		tick.Stop()
	} else {
		rep.Mode = fmt.Sprintf("closed loop, %d in flight", cfg.Concurrency)
		next := make(chan int)
		for range cfg.Concurrency {
			go func() {
				for n := range next {
					one(n)
				}
			}()
		}
		for n := 0; n < cfg.Sagas && ctx.Err() == nil; n++ {
			wg.Add(1)
			next <- n
		}
		close(next)
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	time.Sleep(1100 * time.Millisecond) // the last second's statistics
	commitsAfter, err := commits(ctx, db)
	if err != nil {
		return nil, err
	}
	cpuAfter, err := cpuSeconds(cfg.BinDir, pgPort)
	if err != nil {
		return nil, err
	}
	rep.PeakRSSMB = rss.peaks()
	rep.Completed, rep.Errors = r.stats.done, r.stats.errors
	if rep.Completed > 0 {
		rep.SagasPerSecond = float64(rep.Completed) / rep.Elapsed.Seconds()
		rep.CommitsPerSaga = float64(commitsAfter-commitsBefore) / float64(rep.Completed)
		rep.CPUPerSaga = map[string]float64{}
		for _, name := range processNames {
			rep.CPUPerSaga[name] = (cpuAfter[name] - cpuBefore[name]) / float64(rep.Completed)
			rep.CPUTotal += rep.CPUPerSaga[name]
		}
	}
	rep.Steps = map[string]percentiles{}
	for step, d := range r.stats.timings {
		rep.Steps[step] = percentilesOf(d)
	}
	if cfg.PgBench > 0 {
		admin := *pgURL
		admin.Path = "/postgres"
		if rep.PgBenchTPS, err = pgbench(ctx, admin.String(), cfg.PgClients, cfg.PgBench); err != nil {
			return nil, err
		}
		rep.Ratio = rep.SagasPerSecond / rep.PgBenchTPS
	}
	return rep, nil
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nload: %d sagas, %s; %d completed in %s\n", r.Sagas, r.Mode, r.Completed, r.Elapsed.Round(time.Millisecond))
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if s := r.Search; s != nil {
		fmt.Fprintf(w, "\n  catalog search, %d clients, %d treatments: %.0f req/s, p50 %s, p99 %s, %.0f bytes per answer (gzip: %v), %d errors\n",
			s.Clients, s.Treatments, s.PerSecond, ms(s.P50), ms(s.P99), s.BytesPerReply, s.Compressed, s.Errors)
	}
	fmt.Fprintf(w, "\n  sagas/s                      %8.2f\n", r.SagasPerSecond)
	if r.PgBenchTPS > 0 {
		fmt.Fprintf(w, "  pgbench -N tps (same run)    %8.0f\n  sagas/s ÷ pgbench tps        %8.4f\n", r.PgBenchTPS, r.Ratio)
	}
	fmt.Fprintf(w, "  Postgres commits per saga    %8.1f\n", r.CommitsPerSaga)
	if r.IdleCommitsPerS > 0 || r.Completed > 0 {
		fmt.Fprintf(w, "  idle commits per second      %8.1f\n", r.IdleCommitsPerS)
	}
	fmt.Fprintf(w, "\n  %-34s %9s %9s %9s %9s\n", "step", "p50", "p90", "p99", "max")
	for _, s := range r.stepOrder {
		p, ok := r.Steps[s]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %-34s %9s %9s %9s %9s\n", s, ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))
	}
	fmt.Fprintf(w, "\n  CPU ms per saga:")
	for _, name := range processNames {
		fmt.Fprintf(w, " %s %.1f,", name, 1000*r.CPUPerSaga[name])
	}
	fmt.Fprintf(w, " total %.1f\n", 1000*r.CPUTotal)
	fmt.Fprintf(w, "  peak RSS MB:")
	for _, name := range []string{"catalog", "quoting", "booking", "payment", "notification", "gateway", "devstack"} {
		fmt.Fprintf(w, " %s %.1f,", name, r.PeakRSSMB[name])
	}
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
