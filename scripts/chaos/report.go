package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// report is what a run found.
type report struct {
	Seed          uint64         `json:"seed"`
	Bookings      int            `json:"bookings"`
	Concurrency   int            `json:"concurrency"`
	StartUp       time.Duration  `json:"start_up"`
	Drive         time.Duration  `json:"drive"`
	FaultsStopped time.Duration  `json:"faults_stopped"`
	Settle        time.Duration  `json:"settle"`
	SettleErr     string         `json:"settle_error,omitempty"`
	Faults        []fault        `json:"faults"`
	FinalStates   map[string]int `json:"final_states"`
	Completed     int            `json:"completed"`
	Throughput    float64        `json:"bookings_per_second"`
	JourneyP50    time.Duration  `json:"journey_p50"`
	JourneyP99    time.Duration  `json:"journey_p99"`
	Answers       map[int]int    `json:"answers_by_status"`
	ConnErrors    int            `json:"connection_errors"`
	Retries       int            `json:"client_retries"`
	Checks        []*check       `json:"invariants"`
	// Unexpected are a few 4xx answers other than 404, 409 and 429.
	Unexpected []string `json:"unexpected_answers,omitempty"`
}

func (r *report) finish(journeys []*journey, stats *clientStats) {
	r.FinalStates = map[string]int{}
	var took []time.Duration
	for _, j := range journeys {
		state := j.Final
		if j.Err != nil {
			state = "(client gave up) " + state
		}
		r.FinalStates[state]++
		if j.Err == nil && j.Final == j.expectedFinal() {
			r.Completed++
			took = append(took, j.Finished.Sub(j.Started))
		}
	}
	if r.Drive > 0 {
		r.Throughput = float64(r.Completed) / r.Drive.Seconds()
	}
	sort.Slice(took, func(a, b int) bool { return took[a] < took[b] })
	if len(took) > 0 {
		r.JourneyP50, r.JourneyP99 = took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	r.Answers, r.ConnErrors, r.Retries = stats.status, stats.connErrs, stats.retries
	// "Never 500": a dependency that is down answers 503 with Retry-After.
	never500 := &check{Name: "no request answered 500 (a dependency down answers 503)", Checked: sum(stats.status)}
	never500.Violations = stats.status[500]
	never500.Examples = append(never500.Examples, stats.fiveHundreds[:min(5, len(stats.fiveHundreds))]...)
	r.Checks = append(r.Checks, never500)
	r.Unexpected = stats.odd
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Passed is true when every invariant held (documented exceptions aside).
func (r *report) Passed() bool {
	if r.SettleErr != "" {
		return false
	}
	for _, c := range r.Checks {
		if c.Violations > 0 && !c.Exception {
			return false
		}
	}
	return true
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nchaos run, seed %d: %d bookings, %d in flight\n", r.Seed, r.Bookings, r.Concurrency)
	fmt.Fprintf(w, "  start-up %s, drive %s (faults for the first %s), settle %s\n",
		r.StartUp.Round(time.Millisecond), r.Drive.Round(time.Millisecond), r.FaultsStopped.Round(time.Millisecond), r.Settle.Round(time.Millisecond))
	if r.SettleErr != "" {
		fmt.Fprintf(w, "  SETTLE: %s\n", r.SettleErr)
	}

	fmt.Fprintf(w, "\nfaults injected: %d\n", len(r.Faults))
	byKind := map[string][]fault{}
	for _, f := range r.Faults {
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	for _, kind := range faultKinds {
		fs := byKind[kind]
		if len(fs) == 0 {
			continue
		}
		targets := map[string]int{}
		var worst, total time.Duration
		errs := 0
		for _, f := range fs {
			targets[f.Target]++
			total += f.Recovery + f.Lasted
			worst = max(worst, f.Recovery+f.Lasted)
			if f.Err != "" {
				errs++
			}
		}
		what := "recovery"
		if !strings.HasPrefix(kind, "kill") {
			what = "lasting"
		}
		fmt.Fprintf(w, "  %-28s %3d  %s mean %s, max %s  %s", kind, len(fs), what,
			(total / time.Duration(len(fs))).Round(time.Millisecond), worst.Round(time.Millisecond), countMap(targets))
		if errs > 0 {
			fmt.Fprintf(w, "  (%d could not be injected)", errs)
		}
		fmt.Fprintln(w)
	}

	var kills []string
	for _, f := range r.Faults {
		if strings.HasPrefix(f.Kind, "kill") && f.Err == "" {
			kills = append(kills, fmt.Sprintf("%s@%s→%s", f.Target, f.At.Round(time.Second), f.Recovery.Round(time.Millisecond)))
		}
	}
	if len(kills) > 0 {
		fmt.Fprintf(w, "  recovery after each kill (target@when→back): %s\n", strings.Join(kills, " "))
	}

	fmt.Fprintf(w, "\nbookings by final state:\n")
	states := make([]string, 0, len(r.FinalStates))
	for s := range r.FinalStates {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(w, "  %-40s %d\n", s, r.FinalStates[s])
	}
	fmt.Fprintf(w, "  completed %d at %.1f bookings/s; journey p50 %s, p99 %s\n", r.Completed, r.Throughput,
		r.JourneyP50.Round(time.Millisecond), r.JourneyP99.Round(time.Millisecond))
	fmt.Fprintf(w, "  client: %d retries, %d connection errors, answers %s\n", r.Retries, r.ConnErrors, countMap(r.Answers))

	for _, u := range r.Unexpected {
		fmt.Fprintf(w, "    unexpected: %s\n", u)
	}

	fmt.Fprintf(w, "\ninvariants (violations / checked):\n")
	for _, c := range r.Checks {
		mark := "ok  "
		if c.Violations > 0 {
			mark = "FAIL"
			if c.Exception {
				mark = "exc "
			}
		}
		fmt.Fprintf(w, "  %s %5d / %-6d %s\n", mark, c.Violations, c.Checked, c.Name)
		for _, e := range c.Examples {
			fmt.Fprintf(w, "         - %s\n", e)
		}
	}
}

func countMap[K comparable](m map[K]int) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v×%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
