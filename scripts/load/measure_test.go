package main

import (
	"os"
	"testing"
	"time"
)

// The figures the tool prints: percentiles by rank over what was measured,
// and the median of the repeated runs.
func TestPercentilesAndMedians(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // out of order, as the sagas finish
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentilesOf(d)
	if p.P50 != 51*time.Millisecond || p.P90 != 91*time.Millisecond || p.P99 != 100*time.Millisecond || p.Max != 100*time.Millisecond || p.N != 100 {
		t.Errorf("percentiles of 1..100 ms: %+v", p)
	}
	if one := percentilesOf([]time.Duration{7 * time.Millisecond}); one.P50 != 7*time.Millisecond || one.P99 != 7*time.Millisecond {
		t.Errorf("one sample: %+v", one)
	}
	if none := percentilesOf(nil); none != (percentiles{}) {
		t.Errorf("no sample: %+v", none)
	}
	if m := median([]float64{0.0067, 0.0062, 0.0074}); m != 0.0067 {
		t.Errorf("median of three runs: %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of four: %v", m)
	}
}

// procTimes reads /proc/<pid>/stat after the command's parentheses, so a
// process name with spaces does not shift the fields.
func TestProcTimesReadsThisProcess(t *testing.T) {
	sum, start := 0, time.Now()
	for time.Since(start) < 50*time.Millisecond { // burn some CPU to be seen
		sum++
	}
	if sum == 0 {
		t.Fatal("the clock did not move")
	}
	self, _, ppid, err := procTimes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ppid != os.Getppid() {
		t.Errorf("ppid %d, want %d", ppid, os.Getppid())
	}
	if self <= 0 || self > 3600 {
		t.Errorf("this process used %v s of CPU", self)
	}
}
