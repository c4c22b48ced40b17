// Package webhooks delivers clinic notices to the HTTPS endpoints clinics
// register, signed by the Standard Webhooks specification so a clinic can
// verify them with an off-the-shelf library. Deliveries are queued in the
// notice's transaction and sent here, retried on Svix's schedule.
package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/saisei-health/platform/pkg/egress"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/telemetry"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// Sender drains the delivery queue.
type Sender struct {
	pool   *pgxpool.Pool
	store  *store.Webhooks
	client *http.Client
	tracer trace.Tracer
	log    *slog.Logger
	now    func() time.Time
	// OnDisabled is told, in the same transaction, of an endpoint disabled
	// for failing since failingSince.
	OnDisabled func(ctx context.Context, tx pgx.Tx, e store.Endpoint, failingSince time.Time) error
	// Workers send in parallel, so one slow endpoint does not hold up
	// every other clinic's deliveries.
	Workers int
}

// NewSender returns a Sender whose connections obey policy.
func NewSender(pool *pgxpool.Pool, s *store.Webhooks, policy egress.Policy, tp trace.TracerProvider, log *slog.Logger, now func() time.Time) *Sender {
	return &Sender{pool: pool, store: s, client: policy.Client(domain.WebhookTimeout),
		tracer: tp.Tracer("github.com/saisei-health/platform/services/notification/webhooks"), log: log, now: now, Workers: 4}
}

// Run sends until ctx is done, woken by new deliveries and polling every second.
func (s *Sender) Run(ctx context.Context) {
	// New deliveries NOTIFY; retries fall due at their time, which the
	// sender wakes for; the fallback poll is for a NOTIFY missed.
	wake := pgdb.NewWakeup(s.pool, "notification_webhooks", 30*time.Second, s.log)
	go wake.Run(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake.C():
		}
		// One delivery first: when nothing is due, the workers are not
		// started (an idle platform does no database work).
		sent, err := s.SendOne(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "webhooks: delivery failed to record", "err", err)
			wake.At(time.Now().Add(time.Second))
			continue
		}
		if !sent {
			s.wakeForNext(ctx, wake)
			continue
		}
		done := make(chan struct{})
		for range s.Workers {
			go func() {
				defer func() { done <- struct{}{} }()
				for ctx.Err() == nil {
					sent, err := s.SendOne(ctx)
					if err != nil {
						s.log.WarnContext(ctx, "webhooks: delivery failed to record", "err", err)
						return
					}
					if !sent {
						return
					}
				}
			}()
		}
		for range s.Workers {
			<-done
		}
		s.wakeForNext(ctx, wake)
	}
}

// wakeForNext asks wake for the time the next pending delivery falls due
// (the clock is the service's: tests move it).
func (s *Sender) wakeForNext(ctx context.Context, wake *pgdb.Wakeup) {
	if next, ok, err := s.store.NextDeliveryDue(ctx, s.pool); err == nil && ok {
		wake.At(time.Now().Add(next.Sub(s.now())))
	}
}

// deliveryLease is how long a claimed delivery is kept from other senders
// while it is posted (at most domain.WebhookTimeout) and its attempt
// recorded. A sender that dies meanwhile leaves it to be retried once the
// lease ends.
const deliveryLease = time.Minute

// SendOne claims one due delivery under a lease and commits the claim,
// posts it, then records the attempt in a transaction of its own, retried
// while the database is unreachable; it reports whether there was one. So
// a delivery the endpoint accepted is never posted again because its
// record was lost (found by the chaos run), and no transaction stays open
// while an endpoint takes up to 15 s to answer.
func (s *Sender) SendOne(ctx context.Context) (bool, error) {
	var d *store.DueDelivery
	err := pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if d, err = s.store.ClaimDueDelivery(ctx, tx, s.now()); err != nil || d == nil {
			return err
		}
		return s.store.LeaseDelivery(ctx, tx, d.ID, s.now().Add(deliveryLease))
	})
	if err != nil || d == nil {
		return false, err
	}
	return true, s.attempt(ctx, *d)
}

func (s *Sender) attempt(ctx context.Context, d store.DueDelivery) error {
	ctx, span := telemetry.ContinueTrace(ctx, s.tracer, d.Trace, "webhook deliver "+d.EventType,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("webhook.id", d.WebhookID), attribute.String("webhook.endpoint_id", d.EndpointID),
			attribute.Int("webhook.attempt", d.Attempts+1)))
	defer span.End()

	a := store.Attempt{Attempt: d.Attempts + 1, AttemptedAt: s.now().UTC()}
	code, excerpt, err := s.post(ctx, d)
	a.LatencyMS = int(s.now().Sub(a.AttemptedAt).Milliseconds())
	a.StatusCode, a.ResponseExcerpt = code, excerpt
	// Only a 2xx is a delivery: a redirect is not followed, since where it
	// points was never checked.
	ok := err == nil && code >= 200 && code < 300
	if err != nil {
		a.Error = truncate(err.Error(), 500)
	} else if !ok {
		a.Error = fmt.Sprintf("answered %d", code)
	}
	span.SetAttributes(attribute.Int("http.response.status_code", code))
	if !ok {
		span.SetStatus(codes.Error, a.Error)
		s.log.WarnContext(ctx, "webhook not delivered", "webhook_id", d.WebhookID, "endpoint_id", d.EndpointID,
			"attempt", a.Attempt, "status", code, "err", a.Error)
	}
	retryIn, retry := domain.RetryAfter(a.Attempt + 1)
	return pgdb.InTxUntilCommitted(ctx, s.pool, func(tx pgx.Tx) error {
		failingSince, err := s.store.RecordAttempt(ctx, tx, d, a, ok, retryIn, retry)
		if err != nil || failingSince == nil || s.now().Sub(*failingSince) < domain.DisableAfterFailing {
			return err
		}
		reason := "every delivery failed since " + failingSince.UTC().Format(time.RFC3339)
		if err := s.store.DisableEndpoint(ctx, tx, d.EndpointID, reason); err != nil {
			return err
		}
		s.log.WarnContext(ctx, "webhook endpoint disabled", "endpoint_id", d.EndpointID, "clinic_id", d.Endpoint.ClinicID)
		if s.OnDisabled != nil {
			return s.OnDisabled(ctx, tx, d.Endpoint, *failingSince)
		}
		return nil
	})
}

// post sends the delivery, signed with every secret that signs now.
func (s *Sender) post(ctx context.Context, d store.DueDelivery) (int, string, error) {
	// The signed timestamp is the wall clock's: the receiver checks it
	// against its own (the Standard Webhooks libraries allow 5 minutes).
	at := time.Now()
	var sigs []string
	for _, secret := range d.Endpoint.Signers(s.now()) {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return 0, "", fmt.Errorf("endpoint secret: %w", err)
		}
		sig, err := wh.Sign(d.WebhookID, at, d.Payload)
		if err != nil {
			return 0, "", err
		}
		sigs = append(sigs, sig)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Saisei-Webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, d.WebhookID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(at.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, strings.Join(sigs, " "))
	// The clinic's systems may join our trace; baggage stays inside.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, egress.ErrForbiddenAddress) {
			return 0, "", fmt.Errorf("the endpoint resolves to an address deliveries may not reach")
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, domain.ResponseExcerpt))
	return resp.StatusCode, truncate(string(body), domain.ResponseExcerpt), nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, string(utf8.RuneError))
}
