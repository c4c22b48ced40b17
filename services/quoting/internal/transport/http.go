package transport

import (
	"context"
	"log/slog"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// MakeHandler serves quoting's HTTP API.
func MakeHandler(e Endpoints, log *slog.Logger) http.Handler {
	opts := httpkit.ServerOptions(log, problems)
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

// Quoting's problem types, beyond httpkit's own.
var (
	problemNotFound     = httpkit.DefineProblem(http.StatusNotFound, "not-found", "Quote not found")
	problemNotBookable  = httpkit.DefineProblem(http.StatusUnprocessableEntity, "treatment-not-bookable", "Treatment is not bookable")
	problemNotRevisable = httpkit.DefineProblem(http.StatusConflict, "quote-not-revisable", "Quote cannot be revised")
)

// problems maps quoting's errors; field errors need no rule.
var problems = httpkit.ProblemTable{
	{Err: service.ErrQuoteNotFound, Type: problemNotFound},
	{Err: domain.ErrNotBookable, Type: problemNotBookable},
	{Err: domain.ErrNotRevisable, Type: problemNotRevisable},
}
