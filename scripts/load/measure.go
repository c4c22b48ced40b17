package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/devstack"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every Linux this runs on).
const clockTicks = 100

// processNames are what the report counts CPU for: the six services,
// devstack (which embeds NATS JetStream under make run) and Postgres.
var processNames = []string{"catalog", "quoting", "booking", "payment", "notification", "gateway", "devstack (NATS, mail sink, issuer)", "postgres"}

// cpuSeconds reads each process's CPU time so far: a service's own, and
// for Postgres (the postmaster listening on pgPort) the postmaster's with
// every backend's, live or exited (the postmaster reaps its backends, so
// their time is in its children's).
func cpuSeconds(binDir string, pgPort int) (map[string]float64, error) {
	out := map[string]float64{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	type proc struct {
		pid, ppid      int
		argv           []string
		self, children float64
	}
	var procs []proc
	postmaster := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue
		}
		self, children, ppid, err := procTimes(pid)
		if err != nil {
			continue
		}
		p := proc{pid: pid, ppid: ppid, argv: strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00"), self: self, children: children}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && filepath.Dir(exe) == binDir {
			p.argv[0] = exe // make run starts devstack as .bin/devstack
		}
		procs = append(procs, p)
		if strings.HasSuffix(p.argv[0], "/postgres") && slices.Contains(p.argv, strconv.Itoa(pgPort)) {
			postmaster = pid
		}
	}
	for _, p := range procs {
		switch argv0 := p.argv[0]; {
		case p.pid == postmaster:
			out["postgres"] += p.self + p.children
		case postmaster != 0 && p.ppid == postmaster:
			out["postgres"] += p.self // a live backend
		case filepath.Dir(argv0) == binDir && filepath.Base(argv0) == "devstack":
			out["devstack (NATS, mail sink, issuer)"] += p.self
		case filepath.Dir(argv0) == binDir:
			out[filepath.Base(argv0)] += p.self
		}
	}
	return out, nil
}

// procTimes is a process's user+system seconds, its reaped children's,
// and its parent's pid.
func procTimes(pid int) (self, children float64, ppid int, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command is in parentheses and may hold spaces: fields start after it.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("short stat for %d", pid)
	}
	n := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
	ppid, _ = strconv.Atoi(f[1])
	// Fields 14–17 of stat (utime, stime, cutime, cstime) are 11–14 here.
	return (n(11) + n(12)) / clockTicks, (n(13) + n(14)) / clockTicks, ppid, nil
}

// commits is the platform database's committed transactions so far.
func commits(ctx context.Context, db *pgxpool.Pool) (int64, error) {
	// The statistics are flushed by each backend at most once a second.
	_, _ = db.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
	var n int64
	err := db.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n, err
}

// idleCommits counts the commits a second of the platform doing nothing.
func idleCommits(ctx context.Context, db *pgxpool.Pool, window time.Duration) (float64, error) {
	before, err := commits(ctx, db)
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	time.Sleep(1100 * time.Millisecond) // the last second's statistics
	after, err := commits(ctx, db)
	// Our own two statements commit too.
	return float64(after-before-2) / window.Seconds(), err
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs `pgbench -N` (the TPC-B-like script without the branch and
// teller updates) on a database of its own in the same Postgres, and
// returns its transactions per second.
func pgbench(ctx context.Context, adminURL string, clients int, d time.Duration) (float64, error) {
	bin, err := devstack.PostgresBinDir()
	if err != nil {
		return 0, err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return 0, err
	}
	_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS saisei_pgbench`)
	_, err = conn.Exec(ctx, `CREATE DATABASE saisei_pgbench`)
	conn.Close(ctx)
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return 0, err
	}
	u.Path = "/saisei_pgbench"
	dsn := u.String()
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "pgbench"), "-i", "-q", "-s", "10", dsn).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "pgbench"), "-N", "-c", strconv.Itoa(clients), "-j", "2",
		"-T", strconv.Itoa(int(d.Seconds())), dsn).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench said no tps:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// rssSampler keeps each service's highest resident memory while it runs,
// read from /proc every half second.
type rssSampler struct {
	mu   sync.Mutex
	peak map[string]int64 // bytes
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(binDir string) *rssSampler {
	s := &rssSampler{peak: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample(binDir)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample(binDir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Dir(exe) != binDir {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
				name := filepath.Base(exe)
				s.mu.Lock()
				s.peak[name] = max(s.peak[name], n*1024)
				s.mu.Unlock()
			}
		}
	}
}

// peaks stops sampling and returns each process's peak RSS in MB.
func (s *rssSampler) peaks() map[string]float64 {
	close(s.stop)
	<-s.done
	out := map[string]float64{}
	for name, b := range s.peak {
		out[name] = float64(b) / (1 << 20)
	}
	return out
}
