package transport

import (
	"context"
	"net/http"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/notification/internal/domain"
	"github.com/saisei-health/platform/services/notification/internal/store"
)

// PreferencesView is a patient's email settings as the API shows them:
// every optional email with whether it is wanted, and the emails that are
// always sent because they are about money or about the cells.
type PreferencesView struct {
	// Language overrides the language given on each quote; "" uses it.
	Language   string          `json:"language"`
	Emails     map[string]bool `json:"emails"`
	AlwaysSent []string        `json:"always_sent"`
}

// preferencesRequest is the body of PUT: the whole setting, replaced. An
// optional email left out of emails is wanted.
type preferencesRequest struct {
	Language *string         `json:"language"`
	Emails   map[string]bool `json:"emails"`
}

func viewOf(p domain.Preferences) PreferencesView {
	v := PreferencesView{Language: p.Language, Emails: map[string]bool{}, AlwaysSent: []string{}}
	for _, t := range domain.OptionalTemplates {
		v.Emails[t] = p.Wants(t)
	}
	for _, t := range domain.Templates {
		if !slices.Contains(domain.OptionalTemplates, t) {
			v.AlwaysSent = append(v.AlwaysSent, t)
		}
	}
	return v
}

// preferencesEndpoints serve GET and PUT /v1/me/notification-preferences:
// the caller's own settings, so there is no id to guess.
func preferencesEndpoints(pool *pgxpool.Pool, s *store.Store) (get, put func(context.Context, any) (any, error)) {
	get = func(ctx context.Context, _ any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		p, err := s.Preferences(ctx, pool, caller.Subject)
		if err != nil {
			return nil, err
		}
		return viewOf(p), nil
	}
	put = func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		p := request.(domain.Preferences)
		if err := s.SavePreferences(ctx, pool, caller.Subject, p); err != nil {
			return nil, err
		}
		return viewOf(p), nil
	}
	return get, put
}

func decodeNothing(context.Context, *http.Request) (any, error) { return nil, nil }

func decodePreferences(_ context.Context, r *http.Request) (any, error) {
	var req preferencesRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	var p domain.Preferences
	if req.Language != nil {
		p.Language = *req.Language
	}
	if len(req.Emails) > len(domain.Templates) {
		return nil, validation.FieldError{Field: "emails", Message: "names more emails than exist"}
	}
	var v validation.Validator
	for t, wanted := range req.Emails {
		if !wanted {
			p.Declined = append(p.Declined, t)
		} else {
			v.Check(slices.Contains(domain.OptionalTemplates, t), "emails."+t, "is not an optional email")
		}
	}
	slices.Sort(p.Declined)
	v.Add(p.Validate()...)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return p, nil
}
