package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/booking/internal/contract"
)

// expiryBatch bounds one pass: a pass that filled it runs again at once.
const expiryBatch = 100

// ExpireUnpaid ends bookings whose deposit was not paid by its deadline,
// announcing each (payment cancels the intent, quoting releases the
// quote). It sleeps until the earliest deadline, at most poll, so an idle
// platform reads the database once per poll; replicas share the work
// (rows are locked with SKIP LOCKED).
func (s *Bookings) ExpireUnpaid(ctx context.Context, poll time.Duration, log *slog.Logger) {
	for {
		n, err := s.expireDue(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "could not expire unpaid bookings", "err", err)
		}
		m, err := s.chaseBalances(ctx)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "could not remind or cancel unpaid balances", "err", err)
		}
		n = max(n, m)
		wait := poll
		if n == expiryBatch {
			wait = 0
		} else if next, ok, err := s.store.NextDepositDeadline(ctx, s.pool); err == nil && ok {
			wait = min(poll, max(0, next.Sub(s.now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// chaseBalances reminds the patients whose balance still waits (every
// remindEvery) and cancels, under their policy, the bookings whose balance
// deadline passed.
func (s *Bookings) chaseBalances(ctx context.Context) (int, error) {
	n := 0
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now().UTC()
		due, err := s.store.AwaitingPatient(ctx, tx, now, now.Add(-s.remindEvery), expiryBatch)
		if err != nil {
			return err
		}
		for _, b := range due {
			bctx, span := telemetry.ContinueTrace(ctx, s.tracer, b.Trace, "booking balance deadline",
				trace.WithAttributes(attribute.String("booking.id", b.ID)))
			if _, t, cerr := b.CancelUnpaidBalance(now); cerr == nil {
				err = s.save(bctx, tx, b, &t)
			} else if b.ReminderDue(now, s.remindEvery) {
				b.Remind(now)
				if err = s.store.Update(bctx, tx, b, nil); err == nil {
					err = outbox.Enqueue(bctx, tx, contract.Reminder(b))
				}
			}
			span.End()
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// expireDue expires one batch of overdue bookings, each in its own trace.
func (s *Bookings) expireDue(ctx context.Context) (int, error) {
	n := 0
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		due, err := s.store.DueForExpiry(ctx, tx, s.now(), expiryBatch)
		if err != nil {
			return err
		}
		for _, b := range due {
			bctx, span := telemetry.ContinueTrace(ctx, s.tracer, b.Trace, "booking expire",
				trace.WithAttributes(attribute.String("booking.id", b.ID)))
			t, err := b.Expire(s.now().UTC())
			if err == nil {
				err = s.save(bctx, tx, b, &t)
			}
			span.End()
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
