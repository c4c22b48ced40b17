package transport

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/notification/internal/service"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// Problem types of the webhook endpoint API.
var (
	problemNotFound      = httpkit.DefineProblem(http.StatusNotFound, "not-found", "Not found")
	problemTooMany       = httpkit.DefineProblem(http.StatusConflict, "too-many-endpoints", "The clinic has as many webhook endpoints as it may")
	problemNotReplayable = httpkit.DefineProblem(http.StatusConflict, "delivery-not-replayable", "Only a delivery that finally failed can be replayed")
	webhookProblems      = httpkit.ProblemTable{
		{Err: service.ErrNotFound, Type: problemNotFound},
		{Err: service.ErrTooManyEndpoints, Type: problemTooMany},
		{Err: service.ErrDeliveryNotReplayable, Type: problemNotReplayable},
	}
)

// EndpointView is an endpoint as its clinic sees it. Secret is shown when
// the endpoint is registered and when its secret is rotated, never again.
type EndpointView struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"`
	ContactEmail            string     `json:"contact_email,omitempty"`
	Secret                  string     `json:"secret,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason,omitempty"`
	FailingSince            *time.Time `json:"failing_since,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`

	status int
}

// StatusCode is 201 for a registration.
func (v EndpointView) StatusCode() int {
	if v.status == 0 {
		return http.StatusOK
	}
	return v.status
}

func endpointView(e store.Endpoint, withSecret bool, now time.Time) EndpointView {
	v := EndpointView{ID: e.ID, URL: e.URL, Events: e.Events, ContactEmail: e.ContactEmail, Enabled: e.Enabled, DisabledReason: e.DisabledReason,
		FailingSince: e.FailingSince, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	if withSecret {
		v.Secret = e.Secret
	}
	if e.PreviousUntil != nil && now.Before(*e.PreviousUntil) {
		v.PreviousSecretExpiresAt = e.PreviousUntil
	}
	return v
}

// DeliveryView is one delivery with every attempt.
type DeliveryView struct {
	ID         string          `json:"id"`
	WebhookID  string          `json:"webhook_id"`
	EventType  string          `json:"event_type"`
	Status     string          `json:"status"`
	CreatedAt  time.Time       `json:"created_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Attempts   []store.Attempt `json:"attempts"`
}

type deliveryList struct {
	Items      []DeliveryView `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

type endpointList struct {
	Items []EndpointView `json:"items"`
}

type accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (accepted) StatusCode() int { return http.StatusAccepted }

type noContent struct{}

func (noContent) StatusCode() int { return http.StatusNoContent }

// endpointRequest is a registration or an update.
type endpointRequest struct {
	URL          *string  `json:"url"`
	Events       []string `json:"events"`
	Enabled      *bool    `json:"enabled"`
	ContactEmail *string  `json:"contact_email"`
}

type endpointCall struct {
	id, delivery string
	change       service.EndpointChange
	after        store.DeliveryCursor
	limit        int
}

func clinicOf(ctx context.Context) string {
	p, _ := identity.FromContext(ctx)
	return p.ClinicID
}

// webhookRoutes serve the clinic's endpoint API, all behind the clinic role
// and each on the caller's own clinic: another clinic's endpoint is 404.
func webhookRoutes(r *httpkit.Router, api *service.Endpoints, clinic func(http.Handler) http.Handler, opts []kithttp.ServerOption, now func() time.Time) {
	handle := func(route string, ep endpoint.Endpoint, dec kithttp.DecodeRequestFunc) {
		r.Handle(route, clinic(kithttp.NewServer(ep, dec, httpkit.EncodeResponse, opts...)))
	}
	handle("POST /v1/clinic/webhook-endpoints", func(ctx context.Context, req any) (any, error) {
		e, err := api.Register(ctx, clinicOf(ctx), req.(endpointCall).change)
		if err != nil {
			return nil, err
		}
		v := endpointView(e, true, now())
		v.status = http.StatusCreated
		return v, nil
	}, decodeEndpoint(true))
	handle("GET /v1/clinic/webhook-endpoints", func(ctx context.Context, _ any) (any, error) {
		es, err := api.List(ctx, clinicOf(ctx))
		if err != nil {
			return nil, err
		}
		out := endpointList{Items: []EndpointView{}}
		for _, e := range es {
			out.Items = append(out.Items, endpointView(e, false, now()))
		}
		return out, nil
	}, decodeNothing)
	handle("GET /v1/clinic/webhook-endpoints/{id}", func(ctx context.Context, req any) (any, error) {
		e, err := api.Get(ctx, clinicOf(ctx), req.(endpointCall).id)
		return endpointView(e, false, now()), err
	}, decodeEndpointID)
	handle("PATCH /v1/clinic/webhook-endpoints/{id}", func(ctx context.Context, req any) (any, error) {
		c := req.(endpointCall)
		e, err := api.Update(ctx, clinicOf(ctx), c.id, c.change)
		return endpointView(e, false, now()), err
	}, decodeEndpoint(false))
	handle("POST /v1/clinic/webhook-endpoints/{id}/rotate-secret", func(ctx context.Context, req any) (any, error) {
		e, err := api.RotateSecret(ctx, clinicOf(ctx), req.(endpointCall).id)
		return endpointView(e, true, now()), err
	}, decodeEndpointID)
	handle("DELETE /v1/clinic/webhook-endpoints/{id}", func(ctx context.Context, req any) (any, error) {
		return noContent{}, api.Delete(ctx, clinicOf(ctx), req.(endpointCall).id)
	}, decodeEndpointID)
	handle("GET /v1/clinic/webhook-endpoints/{id}/deliveries", func(ctx context.Context, req any) (any, error) {
		c := req.(endpointCall)
		ds, err := api.Deliveries(ctx, clinicOf(ctx), c.id, c.after, c.limit+1)
		if err != nil {
			return nil, err
		}
		out := deliveryList{Items: []DeliveryView{}}
		for i, d := range ds {
			if i == c.limit {
				last := ds[i-1]
				out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(last.CreatedAt.Format(time.RFC3339Nano) + " " + last.ID))
				break
			}
			attempts := d.AttemptLog
			if attempts == nil {
				attempts = []store.Attempt{}
			}
			out.Items = append(out.Items, DeliveryView{ID: d.ID, WebhookID: d.WebhookID, EventType: d.EventType, Status: d.Status,
				CreatedAt: d.CreatedAt, FinishedAt: d.FinishedAt, Attempts: attempts})
		}
		return out, nil
	}, decodeDeliveries)
	handle("POST /v1/clinic/webhook-endpoints/{id}/deliveries/{delivery_id}/replay", func(ctx context.Context, req any) (any, error) {
		c := req.(endpointCall)
		if err := api.Replay(ctx, clinicOf(ctx), c.id, c.delivery); err != nil {
			return nil, err
		}
		return accepted{ID: c.delivery, Status: "pending"}, nil
	}, decodeEndpointID)
}

// decodeEndpointID reads {id} (and {delivery_id}); an id that is not a
// UUID names nothing, so it is 404 like any unknown id.
func decodeEndpointID(_ context.Context, r *http.Request) (any, error) {
	c := endpointCall{id: r.PathValue("id"), delivery: r.PathValue("delivery_id")}
	if uuid.Validate(c.id) != nil || (c.delivery != "" && uuid.Validate(c.delivery) != nil) {
		return nil, service.ErrNotFound
	}
	return c, nil
}

func decodeEndpoint(creating bool) kithttp.DecodeRequestFunc {
	return func(ctx context.Context, r *http.Request) (any, error) {
		c := endpointCall{}
		if !creating {
			id, err := decodeEndpointID(ctx, r)
			if err != nil {
				return nil, err
			}
			c = id.(endpointCall)
		}
		var req endpointRequest
		if err := httpkit.DecodeJSON(r, &req); err != nil {
			return nil, err
		}
		if creating && req.Enabled != nil {
			return nil, validation.FieldError{Field: "enabled", Message: "is set by updating a registered endpoint"}
		}
		c.change = service.EndpointChange{URL: req.URL, Events: req.Events, Enabled: req.Enabled, ContactEmail: req.ContactEmail}
		return c, nil
	}
}

func decodeDeliveries(ctx context.Context, r *http.Request) (any, error) {
	id, err := decodeEndpointID(ctx, r)
	if err != nil {
		return nil, err
	}
	c := id.(endpointCall)
	c.limit = 20
	var v validation.Validator
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= 100, "limit", "must be a whole number from 1 to 100")
		c.limit = n
	}
	if s := q.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		at, id, _ := strings.Cut(string(raw), " ")
		t, perr := time.Parse(time.RFC3339Nano, at)
		v.Check(err == nil && perr == nil && uuid.Validate(id) == nil, "cursor", "must be a next_cursor this endpoint returned")
		c.after = store.DeliveryCursor{At: t, ID: id}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return c, nil
}
