package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/sealed"
)

// ErrNotFound is an endpoint or delivery that does not exist or is another
// clinic's: the two are not told apart.
var ErrNotFound = errors.New("not found")

// ErrNotReplayable is a delivery that has not finally failed.
var ErrNotReplayable = errors.New("only a delivery that finally failed can be replayed")

// Endpoint is a clinic's registered webhook endpoint with its secrets open.
type Endpoint struct {
	ID       string
	ClinicID string
	URL      string
	Events   []string
	// ContactEmail is told when the endpoint is disabled for failing.
	ContactEmail string
	Secret       string
	// Previous still signs until PreviousUntil, after a rotation.
	Previous       string
	PreviousUntil  *time.Time
	Enabled        bool
	DisabledReason string
	FailingSince   *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Signers are the secrets that sign a delivery at now: the current one,
// and the previous one during the overlap after a rotation.
func (e Endpoint) Signers(now time.Time) []string {
	out := []string{e.Secret}
	if e.Previous != "" && e.PreviousUntil != nil && now.Before(*e.PreviousUntil) {
		out = append(out, e.Previous)
	}
	return out
}

// Webhooks keeps endpoints, deliveries and attempts. Secrets are sealed at
// rest with the service's data keyset, bound to the endpoint's id.
type Webhooks struct{ box *sealed.Box }

// NewWebhooks returns the webhook store sealing with box.
func NewWebhooks(box *sealed.Box) *Webhooks { return &Webhooks{box: box} }

func secretContext(id string) string { return "webhook-endpoint:" + id + ":secret" }

func (w *Webhooks) seal(id, secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	return w.box.Seal([]byte(secret), secretContext(id))
}

func (w *Webhooks) open(id string, sealedSecret []byte) (string, error) {
	if sealedSecret == nil {
		return "", nil
	}
	p, err := w.box.Open(sealedSecret, secretContext(id))
	return string(p), err
}

const endpointColumns = `id, clinic_id, url, events, contact_email, secret_sealed, previous_sealed, previous_until, enabled, disabled_reason,
	failing_since, created_at, updated_at`

func (w *Webhooks) scanEndpoint(r pgx.CollectableRow) (Endpoint, error) {
	var e Endpoint
	var secret, previous []byte
	if err := r.Scan(&e.ID, &e.ClinicID, &e.URL, &e.Events, &e.ContactEmail, &secret, &previous, &e.PreviousUntil, &e.Enabled,
		&e.DisabledReason, &e.FailingSince, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return e, err
	}
	var err1, err2 error
	e.Secret, err1 = w.open(e.ID, secret)
	e.Previous, err2 = w.open(e.ID, previous)
	return e, errors.Join(err1, err2)
}

// CountEndpoints counts a clinic's endpoints.
func (w *Webhooks) CountEndpoints(ctx context.Context, db pgdb.Querier, clinic string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE clinic_id = $1`, clinic).Scan(&n)
	return n, err
}

// SaveEndpoint inserts or replaces e.
func (w *Webhooks) SaveEndpoint(ctx context.Context, db pgdb.Querier, e Endpoint) error {
	secret, err := w.seal(e.ID, e.Secret)
	if err != nil {
		return err
	}
	previous, err := w.seal(e.ID, e.Previous)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO webhook_endpoints (id, clinic_id, url, events, secret_sealed, previous_sealed, previous_until, enabled,
			disabled_reason, failing_since, created_at, updated_at, contact_email)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
		ON CONFLICT (id) DO UPDATE SET url = $3, events = $4, secret_sealed = $5, previous_sealed = $6, previous_until = $7,
			enabled = $8, disabled_reason = $9, failing_since = $10, updated_at = $11, contact_email = $12`,
		e.ID, e.ClinicID, e.URL, e.Events, secret, previous, e.PreviousUntil, e.Enabled, e.DisabledReason, e.FailingSince,
		e.UpdatedAt, e.ContactEmail)
	return err
}

// Endpoints lists a clinic's endpoints, oldest first.
func (w *Webhooks) Endpoints(ctx context.Context, db pgdb.Querier, clinic string) ([]Endpoint, error) {
	rows, err := db.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE clinic_id = $1 ORDER BY created_at, id`, clinic)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, w.scanEndpoint)
}

// Endpoint reads one of clinic's endpoints, locked when forUpdate.
func (w *Webhooks) Endpoint(ctx context.Context, db pgdb.Querier, clinic, id string, forUpdate bool) (Endpoint, error) {
	q := `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE clinic_id = $1 AND id = $2`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	rows, err := db.Query(ctx, q, clinic, id)
	if err != nil {
		return Endpoint{}, err
	}
	e, err := pgx.CollectExactlyOneRow(rows, w.scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, ErrNotFound
	}
	return e, err
}

// DeleteEndpoint removes one of clinic's endpoints and its deliveries.
func (w *Webhooks) DeleteEndpoint(ctx context.Context, db pgdb.Querier, clinic, id string) error {
	tag, err := db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE clinic_id = $1 AND id = $2`, clinic, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// Delivery is one event to deliver to one endpoint.
type Delivery struct {
	ID         string
	EndpointID string
	// WebhookID is the webhook-id header: the notice's id.
	WebhookID  string
	EventType  string
	Payload    []byte
	Status     string
	Attempts   int
	Trace      map[string]string
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// QueueDeliveries queues the event for every enabled endpoint of clinic
// subscribed to its type; one delivery per endpoint and webhook id, ever.
func (w *Webhooks) QueueDeliveries(ctx context.Context, db pgdb.Querier, clinic string, d Delivery, newID func() string) error {
	trace, err := json.Marshal(d.Trace)
	if err != nil {
		return err
	}
	rows, err := db.Query(ctx, `SELECT id FROM webhook_endpoints WHERE clinic_id = $1 AND enabled AND $2 = ANY(events)`, clinic, d.EventType)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, endpoint := range ids {
		if _, err := db.Exec(ctx, `
			INSERT INTO webhook_deliveries (id, endpoint_id, webhook_id, event_type, payload, status, trace)
			VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (endpoint_id, webhook_id) DO NOTHING`,
			newID(), endpoint, d.WebhookID, d.EventType, d.Payload, trace); err != nil {
			return err
		}
	}
	return nil
}

// DueDelivery is a claimed delivery with its endpoint.
type DueDelivery struct {
	Delivery
	Endpoint Endpoint
}

// ClaimDueDelivery locks one delivery of an enabled endpoint due at now,
// skipping ones another sender holds.
func (w *Webhooks) ClaimDueDelivery(ctx context.Context, tx pgx.Tx, now time.Time) (*DueDelivery, error) {
	var d DueDelivery
	var trace []byte
	var clinic string
	err := tx.QueryRow(ctx, `
		SELECT d.id, d.endpoint_id, d.webhook_id, d.event_type, d.payload, d.status, d.attempts, d.trace, d.created_at, e.clinic_id
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled
		ORDER BY d.next_attempt_at LIMIT 1 FOR UPDATE OF d SKIP LOCKED`, now).
		Scan(&d.ID, &d.EndpointID, &d.WebhookID, &d.EventType, &d.Payload, &d.Status, &d.Attempts, &trace, &d.CreatedAt, &clinic)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(trace, &d.Trace); err != nil {
		return nil, err
	}
	d.Endpoint, err = w.Endpoint(ctx, tx, clinic, d.EndpointID, false)
	return &d, err
}

// NextDeliveryDue is when the earliest pending delivery to an enabled
// endpoint falls due (a retry, or a lease ending); ok is false when none is
// pending.
func (w *Webhooks) NextDeliveryDue(ctx context.Context, db pgdb.Querier) (next time.Time, ok bool, err error) {
	var at *time.Time
	err = db.QueryRow(ctx, `SELECT min(d.next_attempt_at) FROM webhook_deliveries d
		JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.status = 'pending' AND e.enabled`).Scan(&at)
	if err != nil || at == nil {
		return time.Time{}, false, err
	}
	return *at, true, nil
}

// LeaseDelivery keeps a claimed delivery from being claimed again until
// until: the sender posts it and records the attempt after the claim's
// transaction has committed, so neither a slow endpoint nor a database
// outage while recording lets another sender post it again meanwhile.
func (w *Webhooks) LeaseDelivery(ctx context.Context, tx pgx.Tx, id string, until time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id = $1`, id, until)
	return err
}

// Attempt is one try at a delivery, as the clinic reads it.
type Attempt struct {
	Attempt         int       `json:"attempt"`
	AttemptedAt     time.Time `json:"attempted_at"`
	StatusCode      int       `json:"status_code,omitempty"`
	LatencyMS       int       `json:"latency_ms"`
	ResponseExcerpt string    `json:"response_excerpt,omitempty"`
	Error           string    `json:"error,omitempty"`
}

// RecordAttempt logs a try and moves the delivery on: succeeded, retried
// retryIn after the attempt, or failed when there is no retry left. It also keeps the
// endpoint's failing_since, returned, so the caller can disable an endpoint
// that has failed for too long.
func (w *Webhooks) RecordAttempt(ctx context.Context, tx pgx.Tx, d DueDelivery, a Attempt, ok bool, retryIn time.Duration, retry bool) (*time.Time, error) {
	if _, err := tx.Exec(ctx, `
		INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, latency_ms, response_excerpt, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.ID, a.Attempt, a.AttemptedAt, a.StatusCode, a.LatencyMS, a.ResponseExcerpt, a.Error); err != nil {
		return nil, err
	}
	status := "pending"
	switch {
	case ok:
		status = "succeeded"
	case !retry:
		status = "failed"
	}
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_deliveries SET attempts = $2, status = $3, next_attempt_at = $4,
			finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $5::timestamptz END
		WHERE id = $1`, d.ID, a.Attempt, status, a.AttemptedAt.Add(retryIn), a.AttemptedAt); err != nil {
		return nil, err
	}
	var failingSince *time.Time
	err := tx.QueryRow(ctx, `
		UPDATE webhook_endpoints SET failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, $3) END
		WHERE id = $1 RETURNING failing_since`, d.EndpointID, ok, a.AttemptedAt).Scan(&failingSince)
	return failingSince, err
}

// DisableEndpoint turns an endpoint off, saying why.
func (w *Webhooks) DisableEndpoint(ctx context.Context, db pgdb.Querier, id, reason string) error {
	_, err := db.Exec(ctx, `UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1`, id, reason)
	return err
}

// DeliveryView is a delivery with its attempts, newest delivery first.
type DeliveryView struct {
	Delivery
	AttemptLog []Attempt
}

// DeliveryCursor is where a page of deliveries starts: after the delivery
// created at At with id ID (zero: from the newest).
type DeliveryCursor struct {
	At time.Time
	ID string
}

// Deliveries lists an endpoint's deliveries, newest first, after the
// cursor, at most limit.
func (w *Webhooks) Deliveries(ctx context.Context, db pgdb.Querier, endpointID string, after DeliveryCursor, limit int) ([]DeliveryView, error) {
	if after.At.IsZero() {
		after = DeliveryCursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	}
	rows, err := db.Query(ctx, `
		SELECT id, endpoint_id, webhook_id, event_type, status, attempts, created_at, finished_at
		FROM webhook_deliveries WHERE endpoint_id = $1 AND (created_at, id) < ($2, $3::uuid)
		ORDER BY created_at DESC, id DESC LIMIT $4`, endpointID, after.At, after.ID, limit)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryView, error) {
		var v DeliveryView
		err := r.Scan(&v.ID, &v.EndpointID, &v.WebhookID, &v.EventType, &v.Status, &v.Attempts, &v.CreatedAt, &v.FinishedAt)
		return v, err
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	// Every attempt of the page in one query, not one per delivery.
	ids := make([]string, len(out))
	at := make(map[string]int, len(out))
	for i, d := range out {
		ids[i], at[d.ID] = d.ID, i
	}
	rows, err = db.Query(ctx, `SELECT delivery_id, attempt, attempted_at, status_code, latency_ms, response_excerpt, error
		FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return nil, err
	}
	var delivery string
	var a Attempt
	_, err = pgx.ForEachRow(rows, []any{&delivery, &a.Attempt, &a.AttemptedAt, &a.StatusCode, &a.LatencyMS, &a.ResponseExcerpt, &a.Error},
		func() error {
			i := at[delivery]
			out[i].AttemptLog = append(out[i].AttemptLog, a)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReplayDelivery queues a failed delivery of the endpoint again, at once.
// Attempt numbers continue where they stopped.
func (w *Webhooks) ReplayDelivery(ctx context.Context, db pgdb.Querier, endpointID, deliveryID string) error {
	var status string
	err := db.QueryRow(ctx, `
		WITH d AS (SELECT id, status FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2 FOR UPDATE),
		     u AS (UPDATE webhook_deliveries w SET status = 'pending', next_attempt_at = now(), finished_at = NULL
		           FROM d WHERE w.id = d.id AND d.status = 'failed' RETURNING w.id)
		SELECT status FROM d`, deliveryID, endpointID).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case status != "failed":
		return ErrNotReplayable
	}
	return nil
}
