package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Fault kinds, as the report counts them.
const (
	killService  = "kill -9 service"
	killNATS     = "kill -9 nats-server"
	killPostgres = "kill -9 postgres postmaster"
	netLatency   = "network latency"
	netTimeout   = "network timeout"
	netReset     = "network reset"
	netPartition = "network partition"
)

var faultKinds = []string{killService, killNATS, killPostgres, netLatency, netTimeout, netReset, netPartition}

// fault is one fault the run injected.
type fault struct {
	Kind   string        `json:"kind"`
	Target string        `json:"target"`
	At     time.Duration `json:"at"` // since the run's drive began
	// Lasted is how long a network fault was in place.
	Lasted time.Duration `json:"lasted,omitempty"`
	// Recovery is, for a kill, the time until the process served again
	// (its /healthz for a service, accepting connections for NATS and
	// Postgres).
	Recovery time.Duration `json:"recovery,omitempty"`
	Err      string        `json:"error,omitempty"`
}

// injector breaks the stack at random moments, one fault at a time, going
// through a shuffled deck of every kind and target so that each is hit
// several times in a long run.
type injector struct {
	s     *stack
	rng   *rand.Rand
	every time.Duration
	kinds map[string]bool
	begin time.Time

	mu     sync.Mutex
	faults []fault
}

type faultCard struct{ kind, target string }

func (in *injector) deck() []faultCard {
	var d []faultCard
	if in.kinds[killService] {
		// Twice each: the most common fault in production.
		for _, name := range append(append([]string{}, serviceNames...), "gateway") {
			d = append(d, faultCard{killService, name}, faultCard{killService, name})
		}
	}
	if in.kinds[killNATS] {
		d = append(d, faultCard{killNATS, "nats-server"}, faultCard{killNATS, "nats-server"})
	}
	if in.kinds[killPostgres] {
		d = append(d, faultCard{killPostgres, "postgres"})
	}
	for _, k := range []string{netLatency, netTimeout, netReset, netPartition} {
		if in.kinds[k] {
			for _, link := range []string{"postgres", "nats", "stripe"} {
				d = append(d, faultCard{k, link})
			}
		}
	}
	in.rng.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	// One card of each kind first, so that even a short run meets every
	// kind of fault.
	var first, rest []faultCard
	seen := map[string]bool{}
	for _, c := range d {
		if seen[c.kind] {
			rest = append(rest, c)
		} else {
			seen[c.kind] = true
			first = append(first, c)
		}
	}
	return append(first, rest...)
}

// run injects faults until ctx ends, then lifts every network fault.
func (in *injector) run(ctx context.Context) {
	defer in.s.clearToxics()
	var deck []faultCard
	for {
		wait := in.every/2 + rand.N(in.every)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if len(deck) == 0 {
			if deck = in.deck(); len(deck) == 0 {
				return
			}
		}
		card := deck[0]
		deck = deck[1:]
		f := fault{Kind: card.kind, Target: card.target, At: time.Since(in.begin)}
		var err error
		switch card.kind {
		case killService:
			err = in.killService(ctx, card.target, &f)
		case killNATS:
			err = in.killProcess(ctx, filepath.Join(in.s.binDir, "nats-server"), in.s.addr(natsPort), &f)
		case killPostgres:
			err = in.killPostgres(ctx, &f)
		default:
			err = in.network(ctx, card, &f)
		}
		if err != nil {
			f.Err = err.Error()
		}
		in.mu.Lock()
		in.faults = append(in.faults, f)
		in.mu.Unlock()
	}
}

func (in *injector) injected() []fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]fault(nil), in.faults...)
}

// killService kills the service with SIGKILL; devstack's supervisor starts
// it again, and the recovery is the time until it answers /healthz.
func (in *injector) killService(ctx context.Context, name string, f *fault) error {
	if !kill(filepath.Join(in.s.binDir, name)) {
		return fmt.Errorf("no %s process found", name)
	}
	killed := time.Now()
	url := in.s.healthURL(name)
	time.Sleep(50 * time.Millisecond) // the old listener is gone by now
	for ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				f.Recovery = time.Since(killed)
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// killProcess kills bin and waits until addr accepts connections again.
func (in *injector) killProcess(ctx context.Context, bin, addr string, f *fault) error {
	if !kill(bin) {
		return fmt.Errorf("no %s process found", filepath.Base(bin))
	}
	killed := time.Now()
	time.Sleep(50 * time.Millisecond)
	for ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			f.Recovery = time.Since(killed)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// killPostgres crashes the postmaster and starts it again on the same data
// directory: Postgres recovers from its WAL.
func (in *injector) killPostgres(ctx context.Context, f *fault) error {
	start := time.Now()
	if err := in.s.killPostgres(ctx); err != nil {
		return err
	}
	f.Recovery = time.Since(start)
	return nil
}

// network puts a toxic on one link (services ↔ Postgres, NATS or Stripe)
// for a few seconds.
func (in *injector) network(ctx context.Context, card faultCard, f *fault) error {
	lasting := 2*time.Second + rand.N(3*time.Second)
	var toxics []string
	switch card.kind {
	case netLatency:
		toxics = []string{`{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":250,"jitter":200}}`}
	case netTimeout:
		// Data stops and each connection is closed after a second.
		toxics = []string{`{"name":"timeout","type":"timeout","stream":"upstream","attributes":{"timeout":1000}}`}
	case netReset:
		toxics = []string{`{"name":"reset","type":"reset_peer","stream":"upstream","attributes":{"timeout":100}}`}
	case netPartition:
		// Nothing passes either way until the partition heals; the
		// connections caught in it are closed when it does.
		ms := (lasting - 300*time.Millisecond).Milliseconds()
		toxics = []string{
			fmt.Sprintf(`{"name":"partition-up","type":"timeout","stream":"upstream","attributes":{"timeout":%d}}`, ms),
			fmt.Sprintf(`{"name":"partition-down","type":"timeout","stream":"downstream","attributes":{"timeout":%d}}`, ms),
		}
	}
	proxy, err := in.s.toxics.Collection.Get(card.target)
	if err != nil {
		return err
	}
	for _, t := range toxics {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
			return err
		}
	}
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(lasting):
	}
	proxy.Toxics.ResetToxics(context.Background())
	if card.kind == netTimeout || card.kind == netPartition {
		// The timeout toxic drops what it holds; a connection that lived
		// through it has lost bytes and must not be reused, so the link
		// resets every connection as it heals (as TCP keepalive would).
		proxy.Stop()
		if err := proxy.Start(); err != nil {
			return fmt.Errorf("restarting the %s link: %w", card.target, err)
		}
	}
	f.Lasted = time.Since(start)
	return nil
}

// clearToxics lifts every network fault.
func (s *stack) clearToxics() {
	for _, p := range s.toxics.Collection.Proxies() {
		p.Toxics.ResetToxics(context.Background())
	}
}
