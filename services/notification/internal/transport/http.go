package transport

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/notification/internal/service"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// EmailView is one queued or sent email, for support staff.
type EmailView struct {
	ID        string     `json:"id"`
	Template  string     `json:"template"`
	Language  string     `json:"language"`
	To        string     `json:"to"`
	Subject   string     `json:"subject"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

// emailQuery names a booking's or a quote's emails.
type emailQuery struct {
	id    string
	quote bool
}

type emailListView struct {
	Items []EmailView `json:"items"`
}

// MakeHandler serves GET /internal/v1/emails?booking_id=… (or quote_id=…)
// and the patient's GET and PUT /v1/me/notification-preferences.
// The email list is internal, as every /internal route: for services only
// (it names patients' addresses); the gateway never routes it.
func MakeHandler(pool *pgxpool.Pool, s *store.Store, endpoints *service.Endpoints, log *slog.Logger, guard *identity.Guard, now func() time.Time) http.Handler {
	list := func(ctx context.Context, request any) (any, error) {
		q := request.(emailQuery)
		emails := s.Emails
		if q.quote {
			emails = s.QuoteEmails
		}
		es, err := emails(ctx, pool, q.id)
		if err != nil {
			return nil, err
		}
		resp := emailListView{Items: []EmailView{}}
		for _, e := range es {
			resp.Items = append(resp.Items, EmailView{ID: e.ID, Template: e.Template, Language: e.Language, To: e.To,
				Subject: e.Subject, Status: e.Status, Attempts: e.Attempts, LastError: e.LastError, CreatedAt: e.CreatedAt, SentAt: e.SentAt})
		}
		return resp, nil
	}
	decode := func(_ context.Context, r *http.Request) (any, error) {
		if id := r.URL.Query().Get("quote_id"); id != "" {
			if uuid.Validate(id) != nil {
				return nil, validation.FieldError{Field: "quote_id", Message: "must be a quote id"}
			}
			return emailQuery{id: id, quote: true}, nil
		}
		id := r.URL.Query().Get("booking_id")
		if uuid.Validate(id) != nil {
			return nil, validation.FieldError{Field: "booking_id", Message: "must be a booking id"}
		}
		return emailQuery{id: id}, nil
	}
	opts := httpkit.ServerOptions(log, nil)
	getPrefs, putPrefs := preferencesEndpoints(pool, s)
	patient := guard.Require(identity.Patient)
	r := httpkit.NewRouter()
	r.Handle("GET /internal/v1/emails", guard.Require(identity.Service)(
		kithttp.NewServer(endpoint.Endpoint(list), decode, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/me/notification-preferences", patient(kithttp.NewServer(getPrefs, decodeNothing, httpkit.EncodeResponse, opts...)))
	r.Handle("PUT /v1/me/notification-preferences", patient(kithttp.NewServer(putPrefs, decodePreferences, httpkit.EncodeResponse, opts...)))
	webhookRoutes(r, endpoints, guard.Require(identity.Clinic), httpkit.ServerOptions(log, webhookProblems), now)
	return r
}
