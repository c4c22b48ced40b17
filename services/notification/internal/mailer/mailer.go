// Package mailer sends the queued emails over SMTP. Each email is sent
// while its row is locked, so two replicas never send the same one at
// once. When the relay took an email but the database failed before the
// sent mark committed, the mark is retried on its own until it holds,
// never the send. Only a crash of the process between the relay's answer
// and the mark can repeat a send (the chaos run measures how often), and
// the deterministic Message-ID lets mail clients fold such a repeat.
package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// Config says where and as whom to send.
type Config struct {
	// SMTPAddr is host:port of the relay (the SMTP sink under make run).
	SMTPAddr string
	Username string
	Password string
	// From is the sender, e.g. "Saisei Care <care@saisei.health>".
	From string
	// AllowPlaintext lets an email go out without TLS, for a local sink
	// only: by default a relay that offers no STARTTLS is refused, since
	// emails carry patients' names and bookings.
	AllowPlaintext bool
}

// Sender drains the email queue.
type Sender struct {
	cfg         Config
	pool        *pgxpool.Pool
	store       *store.Store
	tracer      trace.Tracer
	log         *slog.Logger
	MaxAttempts int
	// Backoff before the n-th retry; the last entry repeats.
	Backoff []time.Duration
	// retryScheduled is set when an attempt failed and its email was put
	// off, so Run asks when the next one falls due.
	retryScheduled atomic.Bool
}

// New returns a Sender.
func New(cfg Config, pool *pgxpool.Pool, s *store.Store, tp trace.TracerProvider, log *slog.Logger) *Sender {
	return &Sender{cfg: cfg, pool: pool, store: s, tracer: tp.Tracer("github.com/saisei-health/platform/services/notification/mailer"),
		log: log, MaxAttempts: 8, Backoff: []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute}}
}

// Run sends until ctx is done, woken by new rows and by the next retry's time.
func (s *Sender) Run(ctx context.Context) {
	// Queued emails NOTIFY; retries fall due at their time, which the
	// sender wakes for; the fallback poll is for a NOTIFY missed.
	wake := pgdb.NewWakeup(s.pool, "notification_emails", 30*time.Second, s.log)
	go wake.Run(ctx)
	started := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake.C():
		}
		for ctx.Err() == nil {
			n, err := s.SendDue(ctx, 10)
			if err != nil {
				s.log.WarnContext(ctx, "mailer: batch failed", "err", err)
				wake.At(time.Now().Add(time.Second))
				break
			}
			if n < 10 {
				// Only a failed attempt puts an email in the future; then
				// (and at start) the sender wakes for the earliest.
				if started || s.retryScheduled.Swap(false) {
					if next, ok, err := s.store.NextEmailDue(ctx, s.pool); err == nil && ok {
						wake.At(next)
					}
					started = false
				}
				break
			}
		}
	}
}

// SendDue sends up to n due emails and returns how many it handled. Each
// email is claimed, sent and marked in a transaction of its own: a failure
// while marking one email can repeat that email alone, never the ones
// sent before it.
func (s *Sender) SendDue(ctx context.Context, n int) (int, error) {
	// One connection to the relay serves the whole round: a connection
	// per email cost a TCP handshake and, in production, STARTTLS and
	// AUTH each time.
	conn := &relayConn{}
	defer conn.close()
	handled := 0
	tried := map[string]bool{} // an email retried at once waits for the next round
	for handled < n {
		found, more := false, false
		delivered := "" // an email the relay accepted in this transaction
		err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			// Two are claimed and one sent: the second says whether to
			// go on, without a transaction that finds nothing.
			due, err := s.store.ClaimDue(ctx, tx, 2)
			if err != nil || len(due) == 0 || tried[due[0].ID] {
				return err
			}
			found, more, tried[due[0].ID] = true, len(due) > 1, true
			sent, err := s.sendOne(ctx, tx, conn, due[0])
			if sent {
				delivered = due[0].ID
			}
			return err
		})
		if err != nil && delivered != "" {
			// The relay has the email but its sent mark was lost with the
			// transaction (the database went away): record it on its own
			// rather than let the email be claimed and sent again.
			s.log.WarnContext(ctx, "mailer: email sent but not recorded; recording it again", "email_id", delivered, "err", err)
			err = s.recordSent(ctx, delivered)
		}
		if err != nil || !found {
			return handled, err
		}
		handled++
		if !more {
			break
		}
	}
	return handled, nil
}

// recordSent marks an email the relay accepted as sent, in a transaction
// of its own, retried while the database is unreachable. A definite
// refusal by the database is returned at once: the email then stays due
// and is sent again.
func (s *Sender) recordSent(ctx context.Context, id string) error {
	return pgdb.InTxUntilCommitted(ctx, s.pool, func(tx pgx.Tx) error { return s.store.MarkSent(ctx, tx, id) })
}

// sendOne sends e and records the outcome in tx; sent is true once the
// relay accepted it, whatever happens to tx afterwards.
func (s *Sender) sendOne(ctx context.Context, tx pgx.Tx, conn *relayConn, e store.QueuedEmail) (sent bool, err error) {
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, e.Trace, "smtp send "+e.Template,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("booking.id", e.BookingID), attribute.String("email.id", e.ID)))
	defer span.End()
	if err := s.deliver(ctx, conn, e); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "smtp send failed")
		retry := s.Backoff[min(e.Attempts, len(s.Backoff)-1)]
		s.log.WarnContext(ctx, "email not sent; will retry", "email_id", e.ID, "attempt", e.Attempts+1, "retry_in", retry, "err", err)
		s.retryScheduled.Store(true)
		return false, s.store.MarkFailedAttempt(ctx, tx, e.ID, err.Error(), retry, s.MaxAttempts)
	}
	return true, s.store.MarkSent(ctx, tx, e.ID)
}

// relayConn is the SMTP connection of one round of sending, dialled for
// its first email; after a failure it is closed, and the next email dials
// again.
type relayConn struct{ c *mail.Client }

func (r *relayConn) close() {
	if r.c != nil {
		_ = r.c.Close()
		r.c = nil
	}
}

func (s *Sender) deliver(ctx context.Context, conn *relayConn, e store.QueuedEmail) error {
	msg := mail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := msg.To(e.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	msg.Subject(e.Subject)
	msg.SetMessageIDWithValue(e.ID + "@saisei.health")
	msg.SetDate()
	msg.SetGenHeader("Content-Language", e.Language)
	msg.SetBodyString(mail.TypeTextPlain, e.Body)
	if e.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, e.HTML)
	}
	if conn.c == nil {
		c, err := s.dial(ctx)
		if err != nil {
			return err
		}
		conn.c = c
	}
	if err := conn.c.Send(msg); err != nil {
		conn.close()
		return err
	}
	return nil
}

// dial connects to the relay, with STARTTLS unless plaintext is allowed,
// and authenticates when credentials are configured.
func (s *Sender) dial(ctx context.Context) (*mail.Client, error) {
	host, portStr, err := net.SplitHostPort(s.cfg.SMTPAddr)
	if err != nil {
		return nil, fmt.Errorf("SMTP_ADDR %q: %w", s.cfg.SMTPAddr, err)
	}
	port, _ := strconv.Atoi(portStr)
	policy := mail.TLSMandatory
	if s.cfg.AllowPlaintext {
		policy = mail.TLSOpportunistic
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTLSPolicy(policy), mail.WithTimeout(15 * time.Second)}
	if s.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.cfg.Username), mail.WithPassword(s.cfg.Password))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.DialWithContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}
