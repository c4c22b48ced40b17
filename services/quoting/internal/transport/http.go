package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// MakeHandler serves quoting's HTTP API.
func MakeHandler(e Endpoints, log *slog.Logger) http.Handler {
	opts := httpkit.ServerOptions(log, problemOf)
	r := httpkit.NewRouter()
	r.Handle("POST /v1/quotes", kithttp.NewServer(e.IssueQuote, decodeIssueQuote, httpkit.EncodeResponse, opts...))
	r.Handle("GET /v1/quotes/{id}", kithttp.NewServer(e.GetQuote, decodeGetQuote, httpkit.EncodeResponse, opts...))
	return r
}

func decodeIssueQuote(_ context.Context, r *http.Request) (any, error) {
	var req issueQuoteRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeGetQuote(_ context.Context, r *http.Request) (any, error) {
	return getQuoteRequest{id: r.PathValue("id")}, nil
}

func problemOf(err error) *httpkit.Problem {
	var fields []httpkit.FieldError
	for _, e := range flatten(err) {
		var fe domain.FieldError
		if errors.As(e, &fe) {
			fields = append(fields, httpkit.FieldError{Field: fe.Field, Message: fe.Message})
		}
	}
	switch {
	case len(fields) > 0:
		return httpkit.Invalid(fields...)
	case errors.Is(err, service.ErrQuoteNotFound):
		return httpkit.NewProblem(http.StatusNotFound, "not-found", "Quote not found", err.Error())
	case errors.Is(err, domain.ErrNotBookable):
		return httpkit.NewProblem(http.StatusUnprocessableEntity, "treatment-not-bookable", "Treatment is not bookable", err.Error())
	}
	return nil
}

// flatten unpacks errors.Join trees so every field error is reported.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
