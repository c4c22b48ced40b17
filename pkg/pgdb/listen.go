package pgdb

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Wakeup turns Postgres NOTIFYs on a channel into a signal for a polling
// worker. The worker still polls every interval, so a NOTIFY lost while the
// listening connection reconnects only delays work, never loses it; work
// that falls due at a time rather than on a write (a retry after backoff)
// is woken for with At.
type Wakeup struct {
	pool     *pgxpool.Pool
	channel  string
	interval time.Duration
	log      *slog.Logger
	c        chan struct{}

	mu    sync.Mutex
	timer *time.Timer
	at    time.Time
}

// NewWakeup listens on channel (a valid identifier) and polls every interval.
func NewWakeup(pool *pgxpool.Pool, channel string, interval time.Duration, log *slog.Logger) *Wakeup {
	return &Wakeup{pool: pool, channel: channel, interval: interval, log: log, c: make(chan struct{}, 1)}
}

// At asks for a wake at t as well (the earliest of those asked for wins),
// so a worker sleeps until its next due work instead of polling for it.
func (w *Wakeup) At(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil && !w.at.IsZero() && !t.Before(w.at) && time.Until(w.at) > 0 {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.at = t
	w.timer = time.AfterFunc(max(time.Until(t), 0), w.signal)
}

// C delivers a value when there may be work: after a NOTIFY or a poll tick.
func (w *Wakeup) C() <-chan struct{} { return w.c }

// Run listens until ctx is done. The process's Wakeups on one pool share
// one listening connection (see listener), which reconnects after errors.
func (w *Wakeup) Run(ctx context.Context) {
	go w.tick(ctx)
	l := listenerFor(w.pool, w.log)
	l.join(w)
	<-ctx.Done()
	l.leave(w)
}

func (w *Wakeup) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

func (w *Wakeup) tick(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.signal()
		}
	}
}

// listeners holds the listening connection of each pool.
var listeners sync.Map // *pgxpool.Pool → *listener

// listener is one connection LISTENing on the channels of every Wakeup of
// a pool. Postgres signals every listening backend of a database on each
// NOTIFY, whatever its channels: a connection per Wakeup (relay, mailer,
// webhook sender, catalog changes) made nine backends wake for every event
// committed, about 3 % of the machine under load.
type listener struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu       sync.Mutex
	channels map[string]map[*Wakeup]struct{}
	added    chan struct{} // a channel to LISTEN on was added
	stop     context.CancelFunc
	stopped  chan struct{}
}

func listenerFor(pool *pgxpool.Pool, log *slog.Logger) *listener {
	l, _ := listeners.LoadOrStore(pool, &listener{pool: pool, log: log,
		channels: map[string]map[*Wakeup]struct{}{}, added: make(chan struct{}, 1)})
	return l.(*listener)
}

// join adds w; the first Wakeup starts the connection.
func (l *listener) join(w *Wakeup) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.channels[w.channel] == nil {
		l.channels[w.channel] = map[*Wakeup]struct{}{}
	}
	l.channels[w.channel][w] = struct{}{}
	select {
	case l.added <- struct{}{}:
	default:
	}
	if l.stop == nil {
		ctx, stop := context.WithCancel(context.Background())
		l.stop, l.stopped = stop, make(chan struct{})
		go l.run(ctx, l.stopped)
	}
	w.signal() // catch up on anything committed before
}

// leave removes w; the last Wakeup closes the connection.
func (l *listener) leave(w *Wakeup) {
	l.mu.Lock()
	delete(l.channels[w.channel], w)
	if len(l.channels[w.channel]) == 0 {
		delete(l.channels, w.channel)
	}
	var stop context.CancelFunc
	var stopped chan struct{}
	if len(l.channels) == 0 && l.stop != nil {
		stop, stopped, l.stop = l.stop, l.stopped, nil
	}
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-stopped
	}
}

func (l *listener) run(ctx context.Context, stopped chan struct{}) {
	defer close(stopped)
	for ctx.Err() == nil {
		if err := l.listen(ctx); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "listen failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// wanted lists the channels some Wakeup waits on.
func (l *listener) wanted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.channels))
	for ch := range l.channels {
		out = append(out, ch)
	}
	return out
}

// signal wakes the Wakeups of channel.
func (l *listener) signal(channel string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := range l.channels[channel] {
		w.signal()
	}
}

func (l *listener) listen(ctx context.Context) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A LISTENing connection must not go back to the pool.
	raw := conn.Hijack()
	defer raw.Close(context.WithoutCancel(ctx))
	listening := map[string]bool{}
	for {
		for _, ch := range l.wanted() {
			if listening[ch] {
				continue
			}
			if _, err := raw.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				return err
			}
			listening[ch] = true
			l.signal(ch) // catch up on anything committed before we listened
		}
		// A channel added meanwhile interrupts the wait to be listened to.
		// The interruption is a read deadline (pgconn's default context
		// handler), which leaves the connection usable.
		wait, interrupt := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.added:
				interrupt()
			case <-wait.Done():
			}
		}()
		n, err := raw.WaitForNotification(wait)
		interrupted := wait.Err() != nil && ctx.Err() == nil
		interrupt()
		switch {
		case err == nil:
			l.signal(n.Channel)
		case interrupted:
		default:
			return err
		}
	}
}
