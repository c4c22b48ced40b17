package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/natsauth"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/catalog/internal/store"
)

// Errors of the clinics' NATS credentials.
var (
	// ErrCredentialsUnconfigured means this deployment was given no
	// natsauth.ClinicIssuer (NATS_CLINIC_ISSUER): its NATS is not the
	// platform's own, and credentials come from whoever runs it.
	ErrCredentialsUnconfigured = errors.New("this deployment issues no NATS credentials: its NATS server's operator does")
	// ErrTooManyCredentials bounds what one clinic holds at once.
	ErrTooManyCredentials = errors.New("the clinic holds as many NATS credentials as it may: revoke one first")
	// ErrNATSUnavailable means the revocation could not reach the NATS
	// servers; nothing was recorded, and retrying is safe.
	ErrNATSUnavailable = errors.New("the NATS servers did not take the revocation")
)

// MaxActiveCredentials is how many unrevoked NATS users a clinic may hold:
// enough to roll one over while the other still runs, with room to spare.
const MaxActiveCredentials = 5

// revocationLock serializes updates of the account's revocation list (a
// read-modify-write of its JWT) across the catalog's replicas.
const revocationLock = 0x5a15e1_c1

// NATSCredentials issues clinics' NATS users and revokes them: the record
// is the catalog's table, the enforcement the NATS servers', which are
// told of every revocation before it is recorded, and again every
// KeepRevokedEvery in case a server came back with an older account JWT.
type NATSCredentials struct {
	pool   *pgxpool.Pool
	store  *store.Store
	issuer *natsauth.ClinicIssuer // nil: ErrCredentialsUnconfigured
	sys    *nats.Conn             // the issuer's system-account connection
	now    func() time.Time
	log    *slog.Logger
}

// KeepRevokedEvery is how often the revocations are re-asserted.
const KeepRevokedEvery = 30 * time.Second

// NewNATSCredentials returns the credentials use cases; issuer and sys may
// be nil when the deployment has no issuer.
func NewNATSCredentials(pool *pgxpool.Pool, s *store.Store, issuer *natsauth.ClinicIssuer, sys *nats.Conn,
	now func() time.Time, log *slog.Logger) *NATSCredentials {
	return &NATSCredentials{pool: pool, store: s, issuer: issuer, sys: sys, now: now, log: log}
}

// IssuedCredential is a credential as issued: the user JWT, and the whole
// credentials file when the platform made the key (never kept).
type IssuedCredential struct {
	store.NATSCredential
	JWT   string
	Creds []byte
}

// Issue issues a NATS user to clinic clinicID. With publicKey (an nkey
// user public key the clinic made, keeping its seed) it signs that key;
// without, it makes the key and returns the credentials file once.
func (n *NATSCredentials) Issue(ctx context.Context, clinicID, publicKey string) (IssuedCredential, error) {
	if n.issuer == nil {
		return IssuedCredential{}, ErrCredentialsUnconfigured
	}
	var out IssuedCredential
	err := pgdb.InTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := n.store.Clinic(ctx, tx, clinicID); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no clinic %q", ErrNotFound, clinicID)
		} else if err != nil {
			return err
		}
		// Counted under the clinic's row lock, so two issues cannot both
		// take the last place.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM clinics WHERE id = $1 FOR UPDATE`, clinicID); err != nil {
			return err
		}
		if active, err := n.store.ActiveCredentials(ctx, tx, clinicID); err != nil {
			return err
		} else if active >= MaxActiveCredentials {
			return ErrTooManyCredentials
		}
		var err error
		if publicKey == "" {
			if out.Creds, publicKey, err = n.issuer.NewClinicUser(clinicID); err != nil {
				return err
			}
			out.JWT, err = jwt.ParseDecoratedJWT(out.Creds)
		} else {
			out.JWT, err = n.issuer.IssueClinic(clinicID, publicKey)
			if errors.Is(err, natsauth.ErrNotAUserKey) {
				return validation.FieldError{Field: "public_key", Message: "must be an nkey user public key (U…, 56 characters)"}
			}
		}
		if err != nil {
			return err
		}
		out.NATSCredential = store.NATSCredential{ID: uuid.NewString(), ClinicID: clinicID, PublicKey: publicKey,
			IssuedAt: n.now().UTC().Truncate(time.Microsecond), IssuedBy: subjectOf(ctx)}
		err = n.store.InsertCredential(ctx, tx, out.NATSCredential)
		if pgdb.IsUniqueViolation(err, store.CredentialKeyTaken) {
			// A revoked key stays revoked: a clinic makes a new one.
			return fmt.Errorf("%w: %w", ErrExists, validation.FieldError{Field: "public_key", Message: "was issued before; make a new key"})
		}
		return err
	})
	if err == nil {
		n.log.InfoContext(ctx, "clinic NATS credential issued", "clinic_id", clinicID, "credential_id", out.ID,
			"public_key", out.PublicKey, "by", out.IssuedBy)
	}
	return out, err
}

// List is a clinic's credentials, revoked ones included.
func (n *NATSCredentials) List(ctx context.Context, clinicID string) ([]store.NATSCredential, error) {
	if _, err := n.store.Clinic(ctx, n.pool, clinicID); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no clinic %q", ErrNotFound, clinicID)
	} else if err != nil {
		return nil, err
	}
	return n.store.Credentials(ctx, n.pool, clinicID)
}

// Revoke revokes credential id of clinic clinicID. The NATS servers take
// the revocation, closing the user's connections, before it is recorded:
// if they cannot be reached nothing changes and the call may be retried.
// Revoking a revoked credential changes nothing.
func (n *NATSCredentials) Revoke(ctx context.Context, clinicID, id string) (store.NATSCredential, error) {
	if n.issuer == nil {
		return store.NATSCredential{}, ErrCredentialsUnconfigured
	}
	if _, err := uuid.Parse(id); err != nil {
		return store.NATSCredential{}, fmt.Errorf("%w: no credential %q", ErrNotFound, id)
	}
	var c store.NATSCredential
	err := pgdb.InTx(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, revocationLock); err != nil {
			return err
		}
		var err error
		c, err = n.store.RevokeCredential(ctx, tx, clinicID, id, n.now().UTC().Truncate(time.Microsecond), subjectOf(ctx))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: clinic %q has no credential %q", ErrNotFound, clinicID, id)
		} else if err != nil {
			return err
		}
		return n.push(ctx, tx)
	})
	if err == nil {
		n.log.InfoContext(ctx, "clinic NATS credential revoked", "clinic_id", clinicID, "credential_id", c.ID,
			"public_key", c.PublicKey, "by", c.RevokedBy)
	}
	return c, err
}

// push tells the NATS servers of every revocation the table holds (tx
// holds the revocation lock).
func (n *NATSCredentials) push(ctx context.Context, tx pgx.Tx) error {
	revoked, err := n.store.RevokedKeys(ctx, tx)
	if err != nil || len(revoked) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.issuer.Revoke(ctx, n.sys, revoked); err != nil {
		return fmt.Errorf("%w: %w", ErrNATSUnavailable, err)
	}
	return nil
}

// KeepRevoked re-asserts every recorded revocation at start and every
// KeepRevokedEvery until ctx ends: a NATS server restored from an older
// account JWT (a regenerated preload, a restored volume) revokes again
// within seconds what the platform revoked.
func (n *NATSCredentials) KeepRevoked(ctx context.Context) {
	if n.issuer == nil {
		return
	}
	t := time.NewTicker(KeepRevokedEvery)
	defer t.Stop()
	for {
		err := pgdb.InTx(ctx, n.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, revocationLock); err != nil {
				return err
			}
			return n.push(ctx, tx)
		})
		if err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "could not re-assert the clinics' NATS revocations", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func subjectOf(ctx context.Context) string {
	p, _ := identity.FromContext(ctx)
	return p.Subject
}
