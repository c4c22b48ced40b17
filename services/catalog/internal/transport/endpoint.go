// Package transport exposes the catalog over HTTP with go-kit endpoints.
package transport

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/catalog/internal/document"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/service"
)

// Endpoints are the catalog's operations.
type Endpoints struct {
	SearchTreatments endpoint.Endpoint
	GetTreatment     endpoint.Endpoint
	ListConditions   endpoint.Endpoint
	PriceComparison  endpoint.Endpoint
	CreateClinic     endpoint.Endpoint
	PatchClinic      endpoint.Endpoint
	CreatePlan       endpoint.Endpoint
	PatchPlan        endpoint.Endpoint
	CreateTreatment  endpoint.Endpoint
	PatchTreatment   endpoint.Endpoint
}

// MakeEndpoints wires s into endpoints.
func MakeEndpoints(s *service.Catalogs) Endpoints {
	return Endpoints{
		SearchTreatments: makeSearchEndpoint(s),
		GetTreatment:     makeGetTreatmentEndpoint(s),
		ListConditions:   makeListConditionsEndpoint(),
		PriceComparison:  makePriceComparisonEndpoint(s),
		CreateClinic: func(ctx context.Context, r any) (any, error) {
			c, err := s.CreateClinic(ctx, r.(adminRequest).body)
			return created{document.FromClinic(c)}, err
		},
		PatchClinic: func(ctx context.Context, r any) (any, error) {
			c, err := s.PatchClinic(ctx, r.(adminRequest).key, r.(adminRequest).body)
			return document.FromClinic(c), err
		},
		CreatePlan: func(ctx context.Context, r any) (any, error) {
			p, err := s.CreatePlan(ctx, r.(adminRequest).body)
			return created{document.FromPlan(p)}, err
		},
		PatchPlan: func(ctx context.Context, r any) (any, error) {
			p, err := s.PatchPlan(ctx, r.(adminRequest).key, r.(adminRequest).body)
			return document.FromPlan(p), err
		},
		CreateTreatment: func(ctx context.Context, r any) (any, error) {
			l, err := s.CreateTreatment(ctx, r.(adminRequest).body)
			return created{viewOf(l, s.Today(), "en", s.Rates(), "")}, err
		},
		PatchTreatment: func(ctx context.Context, r any) (any, error) {
			l, err := s.PatchTreatment(ctx, r.(adminRequest).key, r.(adminRequest).body)
			return viewOf(l, s.Today(), "en", s.Rates(), ""), err
		},
	}
}

type searchRequest struct {
	filter  service.Filter
	lang    string
	display money.Currency
}

type treatmentPageView struct {
	Items      []TreatmentView `json:"items"`
	NextCursor *string         `json:"next_cursor"`
}

func makeSearchEndpoint(s *service.Catalogs) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(searchRequest)
		page, err := s.Search(ctx, req.filter)
		if err != nil {
			return nil, err
		}
		resp := treatmentPageView{Items: make([]TreatmentView, 0, len(page.Items))}
		day := s.Today()
		for _, l := range page.Items {
			resp.Items = append(resp.Items, viewOf(l, day, req.lang, s.Rates(), req.display))
		}
		if page.Next != "" {
			resp.NextCursor = &page.Next
		}
		return resp, nil
	}
}

type getTreatmentRequest struct {
	id      string
	lang    string
	display money.Currency
}

func makeGetTreatmentEndpoint(s *service.Catalogs) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(getTreatmentRequest)
		l, err := s.GetTreatment(ctx, req.id)
		if err != nil {
			return nil, err
		}
		return viewOf(l, s.Today(), req.lang, s.Rates(), req.display), nil
	}
}

type conditionListView struct {
	Items []ConditionView `json:"items"`
}

func makeListConditionsEndpoint() endpoint.Endpoint {
	return func(_ context.Context, request any) (any, error) {
		return conditionListView{Items: conditionViews(domain.Conditions, request.(string))}, nil
	}
}

type comparisonRequest struct {
	condition string
	lang      string
	currency  money.Currency
}

// CountryView is one country's price range, in the asked currency.
type CountryView struct {
	Country    string      `json:"country"`
	Min        money.Money `json:"min"`
	Max        money.Money `json:"max"`
	OpenEnded  bool        `json:"open_ended"`
	Regulation string      `json:"regulation"`
}

type comparisonView struct {
	Condition ConditionView  `json:"condition"`
	Currency  money.Currency `json:"currency"`
	Source    string         `json:"source"`
	Countries []CountryView  `json:"countries"`
}

func makePriceComparisonEndpoint(s *service.Catalogs) endpoint.Endpoint {
	return func(_ context.Context, request any) (any, error) {
		req := request.(comparisonRequest)
		names, ok := domain.ConditionNames[req.condition]
		if !ok {
			return nil, fmt.Errorf("%w: no condition %q", service.ErrNotFound, req.condition)
		}
		resp := comparisonView{Condition: ConditionView{Code: req.condition, Name: names.In(req.lang)}, Currency: req.currency,
			Source: "published estimates in USD (shared/domain.md), converted at the platform's rate", Countries: []CountryView{}}
		convert := func(m money.Money) (money.Money, error) {
			if req.currency == money.USD {
				return m, nil
			}
			yen, err := s.Rates().ToJPY(m)
			if err != nil {
				return m, err
			}
			return s.Rates().FromJPY(yen, req.currency)
		}
		for _, c := range domain.PriceComparisons[req.condition] {
			lo, err := convert(c.Min)
			if err != nil {
				return nil, err
			}
			hi, err := convert(c.Max)
			if err != nil {
				return nil, err
			}
			resp.Countries = append(resp.Countries, CountryView{Country: c.Country, Min: lo, Max: hi, OpenEnded: c.OpenEnded, Regulation: c.Regulation})
		}
		return resp, nil
	}
}

type adminRequest struct {
	key  string
	body []byte
}

type created struct{ v any }

func (c created) MarshalJSON() ([]byte, error) { return jsonMarshal(c.v) }
func (created) StatusCode() int                { return 201 }
