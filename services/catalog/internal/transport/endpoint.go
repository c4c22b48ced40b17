// Package transport exposes the catalog over HTTP with go-kit endpoints.
package transport

import (
	"context"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/service"
)

// Endpoints are the catalog's operations.
type Endpoints struct {
	ListTreatments endpoint.Endpoint
	GetTreatment   endpoint.Endpoint
}

// MakeEndpoints wires s into endpoints.
func MakeEndpoints(s service.Service) Endpoints {
	return Endpoints{
		ListTreatments: makeListTreatmentsEndpoint(s),
		GetTreatment:   makeGetTreatmentEndpoint(s),
	}
}

type listTreatmentsRequest struct{ filter service.Filter }

type listTreatmentsResponse struct {
	Items []TreatmentView `json:"items"`
}

func makeListTreatmentsEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(listTreatmentsRequest)
		ls, day, err := s.ListTreatments(ctx, req.filter)
		if err != nil {
			return nil, err
		}
		resp := listTreatmentsResponse{Items: make([]TreatmentView, 0, len(ls))}
		for _, l := range ls {
			resp.Items = append(resp.Items, viewOf(l, day))
		}
		return resp, nil
	}
}

type getTreatmentRequest struct{ id string }

func makeGetTreatmentEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		l, day, err := s.GetTreatment(ctx, request.(getTreatmentRequest).id)
		if err != nil {
			return nil, err
		}
		return viewOf(l, day), nil
	}
}

// TreatmentView is a treatment as frontends see it.
type TreatmentView struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Condition   string     `json:"condition"`
	Description string     `json:"description"`
	Clinic      ClinicView `json:"clinic"`
	PlanNumber  string     `json:"plan_number"`
	RiskClass   string     `json:"risk_class"`
	Plan        PlanView   `json:"plan"`
	Bookable    bool       `json:"bookable"`
	CellSource  string     `json:"cell_source"`
	Autologous  bool       `json:"autologous"`
	Routes      []string   `json:"routes"`
	Sessions    int        `json:"sessions"`
	CultureDays DaysRange  `json:"culture_days"`
	Prices      PricesView `json:"prices"`
	DoseOptions []DoseView `json:"dose_options"`
	Revision    int64      `json:"revision"`
}

type ClinicView struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	NameJA    string   `json:"name_ja,omitempty"`
	City      string   `json:"city"`
	Languages []string `json:"languages"`
}

type PlanView struct {
	Number     string  `json:"number"`
	RiskClass  string  `json:"risk_class"`
	Status     string  `json:"status"`
	Therapy    string  `json:"therapy"`
	Committee  string  `json:"committee"`
	ValidFrom  string  `json:"valid_from"`
	ValidUntil string  `json:"valid_until"`
	CPC        CPCView `json:"cpc"`
}

type CPCView struct {
	Name    string `json:"name"`
	InHouse bool   `json:"in_house"`
}

type DaysRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

type PricesView struct {
	Consultation             money.Money `json:"consultation"`
	Harvest                  money.Money `json:"harvest"`
	QualityTesting           money.Money `json:"quality_testing"`
	AdministrationPerSession money.Money `json:"administration_per_session"`
}

// DoseView is one dose; price is the whole protocol at that dose.
type DoseView struct {
	Cells   int64       `json:"cells"`
	Culture money.Money `json:"culture"`
	Price   money.Money `json:"price"`
}

func viewOf(l domain.Listing, day time.Time) TreatmentView {
	t := l.Treatment
	v := TreatmentView{
		ID: t.ID, Name: t.Name, Condition: t.Condition, Description: t.Description,
		Clinic:     ClinicView{ID: l.Clinic.ID, Name: l.Clinic.Name, NameJA: l.Clinic.NameJA, City: l.Clinic.City, Languages: l.Clinic.Languages},
		PlanNumber: l.Plan.Number, RiskClass: l.Plan.RiskClass,
		Plan: PlanView{Number: l.Plan.Number, RiskClass: l.Plan.RiskClass, Status: l.Plan.Status, Therapy: l.Plan.Therapy,
			Committee: l.Plan.Committee, ValidFrom: l.Plan.ValidFrom.Format(time.DateOnly), ValidUntil: l.Plan.ValidUntil.Format(time.DateOnly),
			CPC: CPCView{Name: l.Plan.CPCName, InHouse: l.Plan.CPCInHouse}},
		Bookable:   l.Bookable(day),
		CellSource: t.CellSource, Autologous: t.Autologous, Routes: t.Routes, Sessions: t.Sessions,
		CultureDays: DaysRange{Min: t.CultureDaysMin, Max: t.CultureDaysMax},
		Prices: PricesView{Consultation: t.Prices.Consultation, Harvest: t.Prices.Harvest,
			QualityTesting: t.Prices.QualityTesting, AdministrationPerSession: t.Prices.AdministrationPerSession},
		Revision: t.Revision,
	}
	for _, d := range t.DoseOptions {
		total, _ := t.Total(d)
		v.DoseOptions = append(v.DoseOptions, DoseView{Cells: d.Cells, Culture: d.Culture, Price: total})
	}
	return v
}
