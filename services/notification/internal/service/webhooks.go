package service

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/egress"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// Errors of the endpoint API.
var (
	ErrNotFound              = store.ErrNotFound
	ErrTooManyEndpoints      = errors.New("a clinic registers at most 10 webhook endpoints")
	ErrDeliveryNotReplayable = store.ErrNotReplayable
)

// Endpoints is the clinic's webhook endpoint API.
type Endpoints struct {
	pool   *pgxpool.Pool
	store  *store.Webhooks
	policy egress.Policy
	now    func() time.Time
}

// NewEndpoints returns the API over s; URLs must satisfy policy.
func NewEndpoints(pool *pgxpool.Pool, s *store.Webhooks, policy egress.Policy, now func() time.Time) *Endpoints {
	return &Endpoints{pool: pool, store: s, policy: policy, now: now}
}

// EndpointChange is a registration (URL and Events required) or an update
// (nil fields unchanged).
type EndpointChange struct {
	URL     *string
	Events  []string
	Enabled *bool
	// ContactEmail is told if the endpoint is disabled for failing; ""
	// removes it.
	ContactEmail *string
}

func (e *Endpoints) validate(ctx context.Context, c EndpointChange, creating bool) error {
	var v validation.Validator
	if c.URL != nil || creating {
		url := ""
		if c.URL != nil {
			url = *c.URL
		}
		if err := e.policy.CheckURL(ctx, url); err != nil {
			v.Check(false, "url", err.Error())
		}
	}
	if c.Events != nil || creating {
		v.Add(domain.ValidateWebhookEvents(c.Events)...)
	}
	if c.ContactEmail != nil && *c.ContactEmail != "" {
		v.Email("contact_email", *c.ContactEmail)
	}
	return v.Err()
}

// Register adds an endpoint for clinic and returns it with its secret,
// the only time the secret is shown.
func (e *Endpoints) Register(ctx context.Context, clinic string, c EndpointChange) (store.Endpoint, error) {
	if err := e.validate(ctx, c, true); err != nil {
		return store.Endpoint{}, err
	}
	now := e.now().UTC()
	ep := store.Endpoint{ID: uuid.NewString(), ClinicID: clinic, URL: *c.URL, Events: c.Events, Secret: domain.NewWebhookSecret(),
		Enabled: true, CreatedAt: now, UpdatedAt: now}
	if c.ContactEmail != nil {
		ep.ContactEmail = *c.ContactEmail
	}
	err := pgdb.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		// Serialize a clinic's registrations so the limit holds.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('webhook-endpoints:' || $1))`, clinic); err != nil {
			return err
		}
		n, err := e.store.CountEndpoints(ctx, tx, clinic)
		if err != nil {
			return err
		}
		if n >= domain.MaxEndpointsPerClinic {
			return ErrTooManyEndpoints
		}
		return e.store.SaveEndpoint(ctx, tx, ep)
	})
	return ep, err
}

// List is clinic's endpoints.
func (e *Endpoints) List(ctx context.Context, clinic string) ([]store.Endpoint, error) {
	return e.store.Endpoints(ctx, e.pool, clinic)
}

// Get is one of clinic's endpoints.
func (e *Endpoints) Get(ctx context.Context, clinic, id string) (store.Endpoint, error) {
	return e.store.Endpoint(ctx, e.pool, clinic, id, false)
}

// Update changes an endpoint's URL, events or whether it is enabled;
// enabling it again forgets its failures.
func (e *Endpoints) Update(ctx context.Context, clinic, id string, c EndpointChange) (store.Endpoint, error) {
	if err := e.validate(ctx, c, false); err != nil {
		return store.Endpoint{}, err
	}
	var ep store.Endpoint
	err := pgdb.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		if ep, err = e.store.Endpoint(ctx, tx, clinic, id, true); err != nil {
			return err
		}
		if c.URL != nil {
			ep.URL = *c.URL
		}
		if c.Events != nil {
			ep.Events = c.Events
		}
		if c.ContactEmail != nil {
			ep.ContactEmail = *c.ContactEmail
		}
		if c.Enabled != nil {
			if *c.Enabled && !ep.Enabled {
				ep.DisabledReason, ep.FailingSince = "", nil
			}
			if !*c.Enabled && ep.Enabled {
				ep.DisabledReason = "disabled by the clinic"
			}
			ep.Enabled = *c.Enabled
		}
		ep.UpdatedAt = e.now().UTC()
		return e.store.SaveEndpoint(ctx, tx, ep)
	})
	return ep, err
}

// RotateSecret gives the endpoint a new secret; the old one keeps signing
// for SecretOverlap, so both verify while the clinic deploys the new one.
func (e *Endpoints) RotateSecret(ctx context.Context, clinic, id string) (store.Endpoint, error) {
	var ep store.Endpoint
	err := pgdb.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		if ep, err = e.store.Endpoint(ctx, tx, clinic, id, true); err != nil {
			return err
		}
		now := e.now().UTC()
		until := now.Add(domain.SecretOverlap)
		ep.Previous, ep.PreviousUntil, ep.Secret, ep.UpdatedAt = ep.Secret, &until, domain.NewWebhookSecret(), now
		return e.store.SaveEndpoint(ctx, tx, ep)
	})
	return ep, err
}

// Delete removes the endpoint and its delivery log.
func (e *Endpoints) Delete(ctx context.Context, clinic, id string) error {
	return e.store.DeleteEndpoint(ctx, e.pool, clinic, id)
}

// Deliveries is the endpoint's delivery log, newest first.
func (e *Endpoints) Deliveries(ctx context.Context, clinic, id string, after store.DeliveryCursor, limit int) ([]store.DeliveryView, error) {
	if _, err := e.store.Endpoint(ctx, e.pool, clinic, id, false); err != nil {
		return nil, err
	}
	return e.store.Deliveries(ctx, e.pool, id, after, limit)
}

// Replay sends a delivery that finally failed again, at once.
func (e *Endpoints) Replay(ctx context.Context, clinic, id, deliveryID string) error {
	if _, err := e.store.Endpoint(ctx, e.pool, clinic, id, false); err != nil {
		return err
	}
	return e.store.ReplayDelivery(ctx, e.pool, id, deliveryID)
}
