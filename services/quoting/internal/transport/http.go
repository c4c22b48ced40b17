package transport

import (
	"context"
	"log/slog"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// MakeHandler serves quoting's HTTP API.
// Patients ask for quotes and read their own; a clinic reads and revises
// its own; booking accepts them as a service. Which quote a caller may see
// is the service's to decide (another tenant's answers 404).
func MakeHandler(e Endpoints, log *slog.Logger, guard *identity.Guard) http.Handler {
	opts := httpkit.ServerOptions(log, problems)
	r := httpkit.NewRouter()
	r.Handle("POST /v1/quotes", guard.Require(identity.Patient)(kithttp.NewServer(e.IssueQuote, decodeIssueQuote, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/quotes/{id}", guard.Require(identity.Patient, identity.Clinic)(kithttp.NewServer(e.GetQuote, decodeGetQuote, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/clinic/quotes/{id}/revisions", guard.Require(identity.Clinic)(kithttp.NewServer(e.ReviseQuote, decodeReviseQuote, httpkit.EncodeResponse, opts...)))
	// Booking's synchronous acceptance; not routed by the gateway.
	r.Handle("POST /internal/v1/quotes/{id}/acceptance", guard.Require(identity.Service)(kithttp.NewServer(e.AcceptQuote, decodeAcceptQuote, httpkit.EncodeResponse, opts...)))
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

func decodeAcceptQuote(_ context.Context, r *http.Request) (any, error) {
	var req acceptQuoteRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.id = r.PathValue("id")
	return req, nil
}

func decodeReviseQuote(_ context.Context, r *http.Request) (any, error) {
	var req reviseQuoteRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.id = r.PathValue("id")
	return req, nil
}

// Quoting's problem types, beyond httpkit's own. The quote-* types and the
// 409 treatment-not-bookable answer booking's acceptance; booking passes
// them on to the patient as they are.
var (
	problemNotFound        = httpkit.DefineProblem(http.StatusNotFound, "not-found", "Quote not found")
	problemNotBookable     = httpkit.DefineProblem(http.StatusUnprocessableEntity, "treatment-not-bookable", "Treatment is not bookable")
	problemNotRevisable    = httpkit.DefineProblem(http.StatusConflict, "quote-not-revisable", "Quote cannot be revised")
	problemQuoteBooked     = httpkit.DefineProblem(http.StatusConflict, "quote-already-booked", "Quote is already booked")
	problemQuoteExpired    = httpkit.DefineProblem(http.StatusConflict, "quote-expired", "Quote has expired")
	problemQuoteSuperseded = httpkit.DefineProblem(http.StatusConflict, "quote-superseded", "Quote was superseded by a revision")
	problemQuoteWithdrawn  = httpkit.DefineProblem(http.StatusConflict, "quote-withdrawn", "Quote was withdrawn")
	problemQuoteReview     = httpkit.DefineProblem(http.StatusConflict, "quote-needs-review", "Quote awaits a clinician's review")
	problemQuoteIneligible = httpkit.DefineProblem(http.StatusUnprocessableEntity, "quote-ineligible", "Patient is not eligible for this treatment")
	problemQuoteNotBooked  = httpkit.DefineProblem(http.StatusConflict, "quote-not-bookable", "Quote cannot be booked")
	problemStopped         = httpkit.DefineProblem(http.StatusConflict, "treatment-not-bookable", "Treatment is not bookable")
	problemUnavailable     = httpkit.DefineProblem(http.StatusServiceUnavailable, "dependency-unavailable", "Try again shortly")
)

// problems maps quoting's errors; field errors need no rule.
var problems = httpkit.ProblemTable{
	{Err: service.ErrQuoteNotFound, Type: problemNotFound},
	{Err: domain.ErrNotBookable, Type: problemNotBookable},
	{Err: domain.ErrNotRevisable, Type: problemNotRevisable},
	{Err: domain.ErrAlreadyAccepted, Type: problemQuoteBooked},
	{Err: domain.ErrQuoteExpired, Type: problemQuoteExpired},
	{Err: domain.ErrQuoteSuperseded, Type: problemQuoteSuperseded},
	{Err: domain.ErrQuoteWithdrawn, Type: problemQuoteWithdrawn},
	{Err: domain.ErrNeedsReview, Type: problemQuoteReview},
	{Err: domain.ErrQuoteIneligible, Type: problemQuoteIneligible},
	{Err: domain.ErrQuoteNotBookable, Type: problemQuoteNotBooked},
	{Err: service.ErrTreatmentStopped, Type: problemStopped},
	{Err: service.ErrUnavailable, Type: problemUnavailable},
}
