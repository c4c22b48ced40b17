package transport

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/catalog/internal/service"
)

// MakeHandler serves the catalog's HTTP API.
func MakeHandler(e Endpoints, log *slog.Logger) http.Handler {
	opts := httpkit.ServerOptions(log, problemOf)
	r := httpkit.NewRouter()
	r.Handle("GET /v1/treatments", kithttp.NewServer(e.ListTreatments, decodeListTreatments, httpkit.EncodeResponse, opts...))
	r.Handle("GET /v1/treatments/{id}", kithttp.NewServer(e.GetTreatment, decodeGetTreatment, httpkit.EncodeResponse, opts...))
	return r
}

func decodeListTreatments(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	for key := range q {
		if key != "condition" && key != "city" {
			return nil, httpkit.Invalid(httpkit.FieldError{Field: key, Message: "is not a filter of this endpoint (condition, city)"})
		}
	}
	return listTreatmentsRequest{filter: service.Filter{Condition: q.Get("condition"), City: q.Get("city")}}, nil
}

func decodeGetTreatment(_ context.Context, r *http.Request) (any, error) {
	return getTreatmentRequest{id: r.PathValue("id")}, nil
}

func problemOf(err error) *httpkit.Problem {
	var inv service.InvalidFilter
	switch {
	case errors.As(err, &inv):
		return httpkit.Invalid(httpkit.FieldError{Field: inv.Field, Message: inv.Message})
	case errors.Is(err, service.ErrNotFound):
		return httpkit.NewProblem(http.StatusNotFound, "not-found", "Treatment not found", err.Error())
	}
	return nil
}
