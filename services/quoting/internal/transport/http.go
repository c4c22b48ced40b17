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
	r.Handle("POST /v1/clinic/quotes/{id}/revisions", kithttp.NewServer(e.ReviseQuote, decodeReviseQuote, httpkit.EncodeResponse, opts...))
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

func decodeReviseQuote(_ context.Context, r *http.Request) (any, error) {
	var req reviseQuoteRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.id = r.PathValue("id")
	return req, nil
}

type fieldErrors []domain.FieldError

func (f fieldErrors) Error() string { return "invalid fields" }

func problemOf(err error) *httpkit.Problem {
	var fields []httpkit.FieldError
	var list fieldErrors
	if errors.As(err, &list) {
		for _, fe := range list {
			fields = append(fields, httpkit.FieldError{Field: fe.Field, Message: fe.Message})
		}
	}
	for _, e := range httpkit.Flatten(err) {
		var fe domain.FieldError
		if errors.As(e, &fe) {
			fields = append(fields, httpkit.FieldError{Field: fe.Field, Message: fe.Message})
		}
	}
	unprocessable := func(slug, title string) *httpkit.Problem {
		return httpkit.NewProblem(http.StatusUnprocessableEntity, slug, title, err.Error())
	}
	switch {
	case len(fields) > 0:
		return httpkit.Invalid(fields...)
	case errors.Is(err, service.ErrQuoteNotFound):
		return httpkit.NewProblem(http.StatusNotFound, "not-found", "Quote not found", err.Error())
	case errors.Is(err, domain.ErrNotBookable):
		return unprocessable("treatment-not-bookable", "Treatment is not bookable")
	case errors.Is(err, domain.ErrNotRevisable):
		return httpkit.Conflict("quote-not-revisable", "Quote cannot be revised", err.Error())
	}
	return nil
}
