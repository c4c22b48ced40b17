// Package upstream asks the catalog, at the moment a quote is accepted,
// whether its treatment may still be booked: the read model quoting keeps
// can lag a plan suspended a moment ago, the catalog cannot. Calls carry the
// trace (otelhttp).
package upstream

import (
	"context"
	"net/http"
	"net/url"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// treatmentJSON is what quoting reads of a catalog treatment.
type treatmentJSON struct {
	ID       string `json:"id"`
	Bookable bool   `json:"bookable"`
	Plan     struct {
		Number string `json:"number"`
		Status string `json:"status"`
	} `json:"plan"`
}

// Catalog is the catalog's HTTP API, as service.Catalog.
type Catalog struct{ getTreatment endpoint.Endpoint }

// NewCatalog returns a client of the catalog at baseURL.
func NewCatalog(baseURL string, client *http.Client) (*Catalog, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	encode := func(_ context.Context, r *http.Request, request any) error {
		r.URL.Path = "/v1/treatments/" + url.PathEscape(request.(string))
		return nil
	}
	return &Catalog{getTreatment: kithttp.NewClient(http.MethodGet, u, encode,
		httpkit.DecodeJSONResponse[treatmentJSON](), kithttp.SetClient(client)).Endpoint()}, nil
}

// Treatment says whether treatment id may be booked right now.
func (c *Catalog) Treatment(ctx context.Context, id string) (service.LiveTreatment, error) {
	v, err := c.getTreatment(ctx, id)
	if err != nil {
		return service.LiveTreatment{}, err
	}
	t := v.(*treatmentJSON)
	return service.LiveTreatment{ID: t.ID, Bookable: t.Bookable, PlanNumber: t.Plan.Number, PlanStatus: t.Plan.Status}, nil
}
