package transport

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/booking/internal/domain"
	"github.com/saisei-health/platform/services/booking/internal/service"
)

// MakeHandler serves booking's HTTP API: patients' bookings and the
// clinics' reports.
func MakeHandler(e Endpoints, log *slog.Logger, now func() time.Time) http.Handler {
	opts := append(httpkit.ServerOptions(log, problemOf), kithttp.ServerBefore(kithttp.PopulateRequestContext))
	r := httpkit.NewRouter()
	r.Handle("POST /v1/bookings", kithttp.NewServer(e.CreateBooking, decodeCreateBooking, encodeWithHeaders, opts...))
	r.Handle("GET /v1/bookings/{id}", kithttp.NewServer(e.GetBooking, decodeBookingID, httpkit.EncodeResponse, opts...))
	r.Handle("POST /v1/clinic/bookings/{id}/harvest", kithttp.NewServer(e.RecordHarvest, decodeTimedReport("harvested_at", now), httpkit.EncodeResponse, opts...))
	r.Handle("POST /v1/clinic/bookings/{id}/cells-ready", kithttp.NewServer(e.RecordCellsReady, decodeCellsReady(now), httpkit.EncodeResponse, opts...))
	r.Handle("POST /v1/clinic/bookings/{id}/administered", kithttp.NewServer(e.RecordAdministration, decodeTimedReport("administered_at", now), httpkit.EncodeResponse, opts...))
	return r
}

func encodeWithHeaders(ctx context.Context, w http.ResponseWriter, response any) error {
	if h, ok := response.(interface{ Headers() http.Header }); ok {
		for k, vs := range h.Headers() {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
	}
	return httpkit.EncodeResponse(ctx, w, response)
}

func decodeCreateBooking(_ context.Context, r *http.Request) (any, error) {
	var req createBookingRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.idempotencyKey = r.Header.Get("Idempotency-Key")
	return req, nil
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
					return nil, httpkit.Invalid(httpkit.FieldError{Field: field, Message: "must not be in the future"})
				}
				req.at = v.UTC()
			}
		}
		return req, nil
	}
}

type cellsReadyBody struct {
	CellCount    *int64      `json:"cell_count"`
	ViabilityPct json.Number `json:"viability_pct"`
	Sterility    string      `json:"sterility"`
	Endotoxin    string      `json:"endotoxin"`
	ReportedAt   *time.Time  `json:"reported_at"`
}

func decodeCellsReady(now func() time.Time) kithttp.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		var body cellsReadyBody
		if err := httpkit.DecodeJSON(r, &body); err != nil {
			return nil, err
		}
		var v httpkit.Validator
		v.Check(body.CellCount != nil && *body.CellCount > 0, "cell_count", "must be a positive number of cells")
		viability, err := domain.ParsePercent(body.ViabilityPct.String())
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

func problemOf(err error) *httpkit.Problem {
	var fe service.FieldError
	var te domain.TransitionError
	switch {
	case errors.As(err, &fe):
		if fe.Field == "Idempotency-Key" {
			p := httpkit.NewProblem(http.StatusBadRequest, "idempotency-key-required", "Idempotency-Key header is required", fe.Message)
			p.Errors = []httpkit.FieldError{{Field: fe.Field, Message: fe.Message}}
			return p
		}
		return httpkit.Invalid(httpkit.FieldError{Field: fe.Field, Message: fe.Message})
	case errors.As(err, &te):
		return httpkit.Conflict("invalid-transition", "Booking is not in a state for this report", err.Error())
	case errors.Is(err, service.ErrNotFound):
		return httpkit.NewProblem(http.StatusNotFound, "not-found", "Booking not found", err.Error())
	case errors.Is(err, service.ErrQuoteExpired):
		return httpkit.Conflict("quote-expired", "Quote has expired", err.Error())
	case errors.Is(err, service.ErrQuoteAlreadyBooked):
		return httpkit.Conflict("quote-already-booked", "Quote is already booked", err.Error())
	case errors.Is(err, service.ErrQuoteSuperseded):
		return httpkit.Conflict("quote-superseded", "Quote was superseded by a revision", err.Error())
	case errors.Is(err, service.ErrQuoteWithdrawn):
		return httpkit.Conflict("quote-withdrawn", "Quote was withdrawn", err.Error())
	case errors.Is(err, service.ErrQuoteNeedsReview):
		return httpkit.Conflict("quote-needs-review", "Quote awaits a clinician's review", err.Error())
	case errors.Is(err, service.ErrQuoteIneligible):
		return httpkit.NewProblem(http.StatusUnprocessableEntity, "quote-ineligible", "Patient is not eligible for this treatment", err.Error())
	case errors.Is(err, service.ErrQuoteNotBookable):
		return httpkit.Conflict("quote-not-bookable", "Quote cannot be booked", err.Error())
	case errors.Is(err, service.ErrTreatmentNotBookable):
		return httpkit.Conflict("treatment-not-bookable", "Treatment is not bookable", err.Error())
	case errors.Is(err, service.ErrIdempotencyMismatch):
		return httpkit.NewProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key was used for another request", err.Error())
	case errors.Is(err, service.ErrUnavailable):
		return httpkit.NewProblem(http.StatusServiceUnavailable, "dependency-unavailable", "Try again shortly", err.Error())
	}
	return nil
}
