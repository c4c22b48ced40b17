// Package store keeps notification's email queue.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/notification/internal/domain"
)

// Store reads and writes notification's tables.
type Store struct{}

// New returns a Store.
func New() *Store { return &Store{} }

// QueueEmail stores an email to send unless one with its id exists.
func (s *Store) QueueEmail(ctx context.Context, db pgdb.Querier, e domain.Email, trace map[string]string) error {
	t, err := json.Marshal(trace)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO emails (id, booking_id, quote_id, endpoint_id, template, language, to_address, subject, body, html, status, trace)
		VALUES ($1, NULLIF($2, '')::uuid, NULLIF($3, '')::uuid, NULLIF($4, '')::uuid, $5, $6, $7, $8, $9, $10, 'pending', $11)
		ON CONFLICT (id) DO NOTHING`,
		e.ID, e.BookingID, e.QuoteID, e.EndpointID, e.Template, e.Language, e.To, e.Subject, e.Body, e.HTML, t)
	return err
}

// QueuedEmail is a row of the queue.
type QueuedEmail struct {
	domain.Email
	Status    string
	Attempts  int
	LastError string
	Trace     map[string]string
	CreatedAt time.Time
	SentAt    *time.Time
}

const emailColumns = `id, COALESCE(booking_id::text, ''), COALESCE(quote_id::text, ''), COALESCE(endpoint_id::text, ''), template, language, to_address, subject, body, html, status, attempts, last_error, trace, created_at, sent_at`

func scanEmail(r pgx.CollectableRow) (QueuedEmail, error) {
	var q QueuedEmail
	var trace []byte
	err := r.Scan(&q.ID, &q.BookingID, &q.QuoteID, &q.EndpointID, &q.Template, &q.Language, &q.To, &q.Subject, &q.Body, &q.HTML, &q.Status, &q.Attempts,
		&q.LastError, &trace, &q.CreatedAt, &q.SentAt)
	if err == nil {
		err = json.Unmarshal(trace, &q.Trace)
	}
	return q, err
}

// ClaimDue locks up to n emails that are due, skipping ones another sender holds.
func (s *Store) ClaimDue(ctx context.Context, tx pgx.Tx, n int) ([]QueuedEmail, error) {
	rows, err := tx.Query(ctx, `SELECT `+emailColumns+` FROM emails
		WHERE status = 'pending' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED`, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanEmail)
}

// MarkSent records a delivered email.
// NextEmailDue is when the earliest pending email falls due; ok is false
// when none is pending.
func (s *Store) NextEmailDue(ctx context.Context, db pgdb.Querier) (next time.Time, ok bool, err error) {
	var at *time.Time
	err = db.QueryRow(ctx, `SELECT min(next_attempt_at) FROM emails WHERE status = 'pending'`).Scan(&at)
	if err != nil || at == nil {
		return time.Time{}, false, err
	}
	return *at, true, nil
}

func (s *Store) MarkSent(ctx context.Context, db pgdb.Querier, id string) error {
	_, err := db.Exec(ctx, `UPDATE emails SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = '' WHERE id = $1`, id)
	return err
}

// MarkFailedAttempt records a failed attempt and when to try next; after
// maxAttempts the email is given up as failed, for a person to look at.
func (s *Store) MarkFailedAttempt(ctx context.Context, db pgdb.Querier, id, reason string, retryIn time.Duration, maxAttempts int) error {
	_, err := db.Exec(ctx, `
		UPDATE emails SET attempts = attempts + 1, last_error = $2,
			next_attempt_at = now() + make_interval(secs => $3),
			status = CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE 'pending' END
		WHERE id = $1`, id, reason, retryIn.Seconds(), maxAttempts)
	return err
}

// Emails lists a booking's emails.
func (s *Store) Emails(ctx context.Context, db pgdb.Querier, bookingID string) ([]QueuedEmail, error) {
	return s.emailsWhere(ctx, db, "booking_id", bookingID)
}

// EndpointEmails lists the emails about a webhook endpoint.
func (s *Store) EndpointEmails(ctx context.Context, db pgdb.Querier, endpointID string) ([]QueuedEmail, error) {
	return s.emailsWhere(ctx, db, "endpoint_id", endpointID)
}

// QuoteEmails lists a quote's emails.
func (s *Store) QuoteEmails(ctx context.Context, db pgdb.Querier, quoteID string) ([]QueuedEmail, error) {
	return s.emailsWhere(ctx, db, "quote_id", quoteID)
}

// emailsWhere lists the emails whose column (booking_id, quote_id or
// endpoint_id, never input) is id.
func (s *Store) emailsWhere(ctx context.Context, db pgdb.Querier, column, id string) ([]QueuedEmail, error) {
	rows, err := db.Query(ctx, `SELECT `+emailColumns+` FROM emails WHERE `+column+` = $1 ORDER BY created_at`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanEmail)
}

// Preferences reads a patient's settings; a patient who never set any has
// the zero Preferences.
func (s *Store) Preferences(ctx context.Context, db pgdb.Querier, patient string) (domain.Preferences, error) {
	var p domain.Preferences
	err := db.QueryRow(ctx, `SELECT language, declined FROM notification_preferences WHERE patient_subject = $1`, patient).
		Scan(&p.Language, &p.Declined)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Preferences{}, nil
	}
	return p, err
}

// SavePreferences replaces a patient's settings.
func (s *Store) SavePreferences(ctx context.Context, db pgdb.Querier, patient string, p domain.Preferences) error {
	if p.Declined == nil {
		p.Declined = []string{}
	}
	_, err := db.Exec(ctx, `
		INSERT INTO notification_preferences (patient_subject, language, declined) VALUES ($1, $2, $3)
		ON CONFLICT (patient_subject) DO UPDATE SET language = $2, declined = $3, updated_at = now()`,
		patient, p.Language, p.Declined)
	return err
}
