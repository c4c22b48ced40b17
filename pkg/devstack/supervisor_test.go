package devstack

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A killed process is started again, a crashing one with a growing
// backoff, and Stop ends them all for good.
func TestTheSupervisorRestartsWhatDies(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := &Supervisor{MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, StableAfter: time.Hour,
		Log: func(source, line string) { mu.Lock(); defer mu.Unlock(); lines = append(lines, source+": "+line) }}
	logged := func(part string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.Contains(l, part) {
				n++
			}
		}
		return n
	}
	ctx := context.Background()
	if err := s.Add(ctx, "sleeper", "/bin/sh", []string{"-c", "sleep 60"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "crasher", "/bin/sh", []string{"-c", "exit 3"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, "missing", "/no/such/binary", nil, nil); err == nil {
		t.Fatal("a missing binary was accepted")
	}

	first := s.PID("sleeper")
	if err := s.Signal("sleeper", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the killed process to be restarted", func() bool { return s.PID("sleeper") != first && s.Restarts("sleeper") == 1 })
	if logged("sleeper: exited (signal: killed); restarting in 20ms") != 1 || logged("sleeper: restarted") != 1 {
		t.Fatalf("log %v", lines)
	}
	eventually(t, "the crashing process to back off", func() bool { return logged("crasher: exited (exit status 3); restarting in 80ms") >= 2 })
	if logged("restarting in 40ms") == 0 {
		t.Fatalf("the backoff did not double: %v", lines)
	}

	s.Stop(time.Second)
	restarts := s.Restarts("sleeper") + s.Restarts("crasher")
	time.Sleep(200 * time.Millisecond)
	if s.Restarts("sleeper")+s.Restarts("crasher") != restarts {
		t.Fatal("processes were restarted after Stop")
	}
	if err := syscall.Kill(s.PID("sleeper"), 0); err == nil {
		t.Fatal("the sleeper survived Stop")
	}
}
