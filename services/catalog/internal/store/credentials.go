package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/pgdb"
)

// NATSCredential is one NATS user issued to a clinic.
type NATSCredential struct {
	ID        string     `json:"id"`
	ClinicID  string     `json:"clinic_id"`
	PublicKey string     `json:"public_key"`
	IssuedAt  time.Time  `json:"issued_at"`
	IssuedBy  string     `json:"issued_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// CredentialKeyTaken names the constraint a public key issued twice breaks.
const CredentialKeyTaken = "clinic_nats_credentials_key"

const credentialColumns = `id, clinic_id, public_key, issued_at, issued_by, revoked_at, COALESCE(revoked_by, '')`

func scanCredential(row pgx.Row) (NATSCredential, error) {
	var c NATSCredential
	err := row.Scan(&c.ID, &c.ClinicID, &c.PublicKey, &c.IssuedAt, &c.IssuedBy, &c.RevokedAt, &c.RevokedBy)
	return c, err
}

// InsertCredential records an issued credential.
func (s *Store) InsertCredential(ctx context.Context, db pgdb.Querier, c NATSCredential) error {
	_, err := db.Exec(ctx, `INSERT INTO clinic_nats_credentials (id, clinic_id, public_key, issued_at, issued_by)
VALUES ($1, $2, $3, $4, $5)`, c.ID, c.ClinicID, c.PublicKey, c.IssuedAt, c.IssuedBy)
	return err
}

// ActiveCredentials counts a clinic's credentials not revoked.
func (s *Store) ActiveCredentials(ctx context.Context, db pgdb.Querier, clinicID string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM clinic_nats_credentials WHERE clinic_id = $1 AND revoked_at IS NULL`, clinicID).Scan(&n)
	return n, err
}

// Credentials lists a clinic's credentials, oldest first.
func (s *Store) Credentials(ctx context.Context, db pgdb.Querier, clinicID string) ([]NATSCredential, error) {
	rows, err := db.Query(ctx, `SELECT `+credentialColumns+` FROM clinic_nats_credentials WHERE clinic_id = $1 ORDER BY issued_at, id`, clinicID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (NATSCredential, error) { return scanCredential(r) })
}

// RevokeCredential marks credential id of clinicID revoked, unless it
// already is, and returns it; ErrNotFound if the clinic has no such one.
func (s *Store) RevokeCredential(ctx context.Context, db pgdb.Querier, clinicID, id string, at time.Time, by string) (NATSCredential, error) {
	c, err := scanCredential(db.QueryRow(ctx, `UPDATE clinic_nats_credentials
SET revoked_at = COALESCE(revoked_at, $3), revoked_by = COALESCE(revoked_by, $4)
WHERE clinic_id = $1 AND id = $2 RETURNING `+credentialColumns, clinicID, id, at, by))
	if err == pgx.ErrNoRows {
		return c, ErrNotFound
	}
	return c, err
}

// RevokedKeys are every revoked user key with the time of its revocation.
func (s *Store) RevokedKeys(ctx context.Context, db pgdb.Querier) (map[string]time.Time, error) {
	rows, err := db.Query(ctx, `SELECT public_key, revoked_at FROM clinic_nats_credentials WHERE revoked_at IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	keys := map[string]time.Time{}
	for rows.Next() {
		var k string
		var at time.Time
		if err := rows.Scan(&k, &at); err != nil {
			return nil, err
		}
		keys[k] = at
	}
	return keys, rows.Err()
}
