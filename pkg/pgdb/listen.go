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

// Run listens until ctx is done, reconnecting after errors.
func (w *Wakeup) Run(ctx context.Context) {
	go w.tick(ctx)
	for ctx.Err() == nil {
		if err := w.listen(ctx); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "listen failed; retrying", "channel", w.channel, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
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

func (w *Wakeup) listen(ctx context.Context) error {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A LISTENing connection must not go back to the pool.
	raw := conn.Hijack()
	defer raw.Close(context.WithoutCancel(ctx))
	if _, err := raw.Exec(ctx, "LISTEN "+pgx.Identifier{w.channel}.Sanitize()); err != nil {
		return err
	}
	w.signal() // catch up on anything committed before we listened
	for {
		if _, err := raw.WaitForNotification(ctx); err != nil {
			return err
		}
		w.signal()
	}
}
