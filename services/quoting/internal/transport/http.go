package transport

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/service"
	"github.com/saisei-health/platform/services/quoting/internal/store"
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
	// Operators read who saw patients' health information.
	r.Handle("GET /v1/admin/audit", guard.Require(identity.Admin)(kithttp.NewServer(e.AuditLog, decodeAuditLog, httpkit.EncodeResponse, opts...)))
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

func decodeAuditLog(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Record: q.Get("record"), Subject: q.Get("subject"), Limit: 100}
	var v validation.Validator
	for key := range q {
		v.Check(slices.Contains([]string{"record", "subject", "since", "cursor", "limit"}, key), key, "is not a filter of the audit log (record, subject, since, cursor, limit)")
	}
	v.Text("record", f.Record, 100, false)
	v.Text("subject", f.Subject, 200, false)
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		v.Check(err == nil, "since", "must be an RFC 3339 time")
		f.Since = t
	}
	if s := q.Get("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		v.Check(err == nil && n >= 0, "cursor", "is not a cursor from a previous page")
		f.After = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= 500, "limit", "must be 1 to 500")
		f.Limit = n
	}
	return f, v.Err()
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
	{Err: service.ErrUnavailable, Type: httpkit.ProblemDependencyUnavailable},
}
