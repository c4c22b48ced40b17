package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/booking/internal/domain"
	"github.com/saisei-health/platform/services/booking/internal/service"
	"github.com/saisei-health/platform/services/booking/internal/store"
)

// MakeHandler serves booking's HTTP API: patients' bookings and the
// clinics' reports.
// Patients book and read their own bookings; a clinic reads its own and
// files its reports on them. Which booking a caller may see is the
// service's to decide (another tenant's answers 404).
func MakeHandler(e Endpoints, log *slog.Logger, now func() time.Time, guard *identity.Guard) http.Handler {
	opts := append(httpkit.ServerOptions(log, problems), kithttp.ServerBefore(kithttp.PopulateRequestContext))
	patient, either, clinic := guard.Require(identity.Patient), guard.Require(identity.Patient, identity.Clinic), guard.Require(identity.Clinic)
	r := httpkit.NewRouter()
	r.Handle("POST /v1/bookings", patient(kithttp.NewServer(e.CreateBooking, decodeCreateBooking, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/bookings/{id}", either(kithttp.NewServer(e.GetBooking, decodeBookingID, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/clinic/bookings", clinic(kithttp.NewServer(e.ClinicBookings, decodeClinicBookings, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/clinic/bookings/{id}", clinic(kithttp.NewServer(e.ClinicBooking, decodeBookingID, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/clinic/bookings/{id}/harvest", clinic(kithttp.NewServer(e.RecordHarvest, decodeTimedReport("harvested_at", now), httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/clinic/bookings/{id}/cells-ready", clinic(kithttp.NewServer(e.RecordCellsReady, decodeCellsReady(now), httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/clinic/bookings/{id}/administered", clinic(kithttp.NewServer(e.RecordAdministration, decodeTimedReport("administered_at", now), httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/bookings/{id}/cancel", patient(kithttp.NewServer(e.Cancel, decodeBookingID, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/bookings/{id}/reculture", patient(kithttp.NewServer(e.Reculture, decodeBookingID, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/bookings/{id}/balance-payment", patient(kithttp.NewServer(e.PayBalance, decodeBookingID, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/clinic/bookings/{id}/ineligible", clinic(kithttp.NewServer(e.FindIneligible, decodeIneligible, httpkit.EncodeResponse, opts...)))
	return r
}

func decodeCreateBooking(_ context.Context, r *http.Request) (any, error) {
	var req createBookingRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.idempotencyKey = r.Header.Get("Idempotency-Key")
	return req, nil
}

// decodeClinicBookings reads status, from and to (dates on the clinic's
// calendar, Tokyo; to included), cursor and limit.
func decodeClinicBookings(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := store.ClinicFilter{Limit: 20}
	var v validation.Validator
	for key := range q {
		v.Check(slices.Contains([]string{"status", "from", "to", "cursor", "limit"}, key), key,
			"is not a filter of this endpoint (status, from, to, cursor, limit)")
	}
	if st := domain.Status(q.Get("status")); st != "" {
		v.Check(slices.Contains(domain.Statuses, st), "status", "must be one of "+joinStatuses())
		f.Status = st
	}
	day := func(key string) time.Time {
		s := q.Get(key)
		if s == "" {
			return time.Time{}
		}
		d, err := time.ParseInLocation(time.DateOnly, s, tokyo.Location)
		v.Check(err == nil, key, "must be a date YYYY-MM-DD (the clinic's, in Tokyo)")
		return d
	}
	f.From = day("from")
	if to := day("to"); !to.IsZero() {
		f.To = to.AddDate(0, 0, 1) // the whole of that day
		v.Check(f.From.IsZero() || !to.Before(f.From), "to", "must not be before from")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= 100, "limit", "must be 1 to 100")
		f.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		at, id, ok := decodeCursor(s)
		v.Check(ok, "cursor", "is not a cursor from a previous page")
		f.AfterCreated, f.AfterID = at, id
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return clinicListRequest{filter: f}, nil
}

func joinStatuses() string {
	parts := make([]string, len(domain.Statuses))
	for i, s := range domain.Statuses {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// A cursor is the last booking of a page: its creation time and id, opaque
// to clients.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(s string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", false
	}
	at, id, ok := strings.Cut(string(raw), "|")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || uuid.Validate(id) != nil {
		return time.Time{}, "", false
	}
	return t, id, true
}

func decodeBookingID(_ context.Context, r *http.Request) (any, error) {
	return bookingID{id: r.PathValue("id")}, nil
}

// decodeTimedReport accepts an empty body (the report is for now) or
// {"<field>": RFC 3339 time} for a report filed after the fact.
func decodeTimedReport(field string, now func() time.Time) kithttp.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		req := timedReport{id: r.PathValue("id"), at: now().UTC()}
		if r.ContentLength == 0 {
			return req, nil
		}
		body := map[string]*time.Time{}
		if err := httpkit.DecodeJSON(r, &body); err != nil {
			return nil, err
		}
		for k, v := range body {
			if k != field {
				return nil, httpkit.Malformed(k, "is not a field of this request")
			}
			if v != nil {
				if v.After(now().Add(5 * time.Minute)) {
					return nil, validation.FieldError{Field: field, Message: "must not be in the future"}
				}
				req.at = v.UTC()
			}
		}
		return req, nil
	}
}

// maxCellCount bounds a reported cell count: a hundred billion cells is far
// beyond any dose, and keeps the number exact everywhere it travels.
const maxCellCount = 100_000_000_000

type cellsReadyBody struct {
	CellCount *int64 `json:"cell_count"`
	// ViabilityPct is kept raw: a number (92.5) or a string holding one
	// ("92.5"); anything else is a 422 on the field, not a 400 on the body.
	ViabilityPct json.RawMessage `json:"viability_pct"`
	Sterility    string          `json:"sterility"`
	Endotoxin    string          `json:"endotoxin"`
	ReportedAt   *time.Time      `json:"reported_at"`
}

func decodeCellsReady(now func() time.Time) kithttp.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		var body cellsReadyBody
		if err := httpkit.DecodeJSON(r, &body); err != nil {
			return nil, err
		}
		var v validation.Validator
		v.Check(body.CellCount != nil && *body.CellCount > 0 && *body.CellCount <= maxCellCount, "cell_count",
			fmt.Sprintf("must be a positive number of cells, at most %d", maxCellCount))
		viability, err := domain.ParsePercent(percentLiteral(body.ViabilityPct))
		v.Check(err == nil, "viability_pct", "must be a percentage between 0 and 100 with at most two decimals")
		v.Check(body.Sterility == "pass" || body.Sterility == "fail", "sterility", `must be "pass" or "fail"`)
		v.Check(body.Endotoxin == "pass" || body.Endotoxin == "fail", "endotoxin", `must be "pass" or "fail"`)
		if err := v.Err(); err != nil {
			return nil, err
		}
		at := now().UTC()
		if body.ReportedAt != nil {
			at = body.ReportedAt.UTC()
		}
		return cellsReadyRequest{id: r.PathValue("id"), report: domain.QualityReport{
			CellCount: *body.CellCount, ViabilityBP: viability,
			SterilityPassed: body.Sterility == "pass", EndotoxinPassed: body.Endotoxin == "pass", ReportedAt: at,
		}}, nil
	}
}

// percentLiteral is a percentage as the clinic wrote it, from a JSON number
// or string; any other JSON reads as "", which ParsePercent refuses.
func percentLiteral(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// Booking's problem types, beyond httpkit's own. Why a quote cannot be
// booked is quoting's verdict, passed on with quoting's type.
var (
	problemKeyRequired = httpkit.DefineProblem(http.StatusBadRequest, "idempotency-key-required", "Idempotency-Key header is required")
	problemKeyReused   = httpkit.DefineProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key was used for another request")
	problemNotFound    = httpkit.DefineProblem(http.StatusNotFound, "not-found", "Booking not found")
	problemTransition  = httpkit.DefineProblem(http.StatusConflict, "invalid-transition", "Booking is not in a state for this report")
	problemQuoteBooked = httpkit.DefineProblem(http.StatusConflict, "quote-already-booked", "Quote is already booked")
)

// problems maps booking's errors; field errors need no rule.
var problems = httpkit.ProblemTable{
	{Err: service.ErrIdempotencyKeyRequired, Type: problemKeyRequired},
	{Err: service.ErrIdempotencyMismatch, Type: problemKeyReused},
	{Err: service.ErrNotFound, Type: problemNotFound},
	{Err: domain.ErrInvalidTransition, Type: problemTransition},
	{Err: service.ErrQuoteAlreadyBooked, Type: problemQuoteBooked},
	{Err: service.ErrUnavailable, Type: httpkit.ProblemDependencyUnavailable},
}
