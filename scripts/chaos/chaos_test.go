package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/devstack"
)

// TestAShortChaosRunKeepsEveryGuarantee is make chaos in small: a few
// hundred whole bookings while every kind of fault is injected at least
// once (a service, NATS and the Postgres postmaster killed; latency,
// timeouts, resets and a partition on the links), then every invariant
// checked. So no change lands that breaks a guarantee. CHAOS_SEED
// reproduces a failing run; CHAOS_BOOKINGS changes its size.
func TestAShortChaosRunKeepsEveryGuarantee(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run starts a whole platform")
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildPlatform(t, root)
	data, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(data) })
	_ = os.Chmod(data, 0o755) // Postgres runs as the postgres user when the tests run as root
	logFile, err := os.CreateTemp("", "chaos-log-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close(); _ = os.Remove(logFile.Name()) })

	faults, _ := parseFaults("all")
	cfg := config{Bookings: envInt(t, "CHAOS_BOOKINGS", 200), Concurrency: 16, Drive: 3 * time.Minute, Settle: 90 * time.Second,
		FaultEvery: 1500 * time.Millisecond, Faults: faults, Seed: uint64(envInt(t, "CHAOS_SEED", int(time.Now().UnixNano()&0x7fffffff))),
		QCFailRate: 0.15, DupRate: 0.3, StaleRate: 0.3, Offset: 3000, DataDir: filepath.Join(data, "run"), BinDir: bin, Log: logFile}
	t.Logf("seed %d (CHAOS_SEED=%d reproduces this run)", cfg.Seed, cfg.Seed)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(logFile.Name()))
	}
	var out bytes.Buffer
	rep.print(&out)
	t.Log(out.String())
	kinds := map[string]bool{}
	for _, f := range rep.Faults {
		if f.Err == "" {
			kinds[f.Kind] = true
		}
	}
	for _, k := range faultKinds {
		if !kinds[k] {
			t.Errorf("no %s was injected", k)
		}
	}
	if !rep.Passed() {
		t.Fatalf("an invariant was violated; CHAOS_SEED=%d reproduces the run\n%s", cfg.Seed, tail(logFile.Name()))
	}
}

// buildPlatform builds devstack and every service into a directory, beside
// the pinned nats-server that make tools built.
func buildPlatform(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	pkgs := []string{"./pkg/devstack/cmd/devstack"}
	for _, s := range append(append([]string{}, serviceNames...), "gateway") {
		pkgs = append(pkgs, "./services/"+s+"/cmd/"+s)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the platform: %v\n%s", err, out)
	}
	nats := filepath.Join(root, ".bin", "nats-server")
	if _, err := os.Stat(nats); err != nil {
		build := exec.Command("go", "build", "-o", nats, "github.com/nats-io/nats-server/v2")
		build.Dir, build.Env = filepath.Join(root, "scripts", "tools"), append(os.Environ(), "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building nats-server: %v\n%s", err, out)
		}
	}
	if err := os.Symlink(nats, filepath.Join(dir, "nats-server")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q is not a number", key, v)
	}
	return n
}

// tail is the end of the platform's log, for a failure's message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// A kill counts against a booking's trace from the journey's start until
// the export delay has passed after the trace's last span, which may end
// well after the journey's last answer (the events that answer caused):
// a span ended just before a kill is lost with its process.
func TestAKillOverlapsABookingUntilItsLastSpanIsExported(t *testing.T) {
	begin := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	j := &journey{Started: begin.Add(10 * time.Second), Finished: begin.Add(20 * time.Second)}
	trace := []span{{End: begin.Add(15 * time.Second)}, {End: begin.Add(24 * time.Second)}}
	for _, c := range []struct {
		kind string
		at   time.Duration
		want bool
	}{
		{"kill -9 service", 9 * time.Second, false},  // before the journey
		{"kill -9 service", 12 * time.Second, true},  // during it
		{"kill -9 service", 27 * time.Second, true},  // after its last answer, before its last span was exported
		{"kill -9 service", 30 * time.Second, true},  // the last span ended at 24 s, exported by 30 s
		{"kill -9 service", 31 * time.Second, false}, // everything exported
		{"network partition", 12 * time.Second, false},
	} {
		ck := &checker{faults: []fault{{Kind: c.kind, At: c.at}}, faultsBegin: begin}
		if got := ck.overlapsKill(j, trace); got != c.want {
			t.Errorf("%s at %s: overlaps %v, want %v", c.kind, c.at, got, c.want)
		}
	}
	// With no span after the journey, the window ends exportDelay after its last answer.
	ck := &checker{faults: []fault{{Kind: "kill -9 service", At: 27 * time.Second}}, faultsBegin: begin}
	if ck.overlapsKill(j, trace[:1]) {
		t.Error("a kill 7 s after the last answer, with no later span, overlaps")
	}
}
