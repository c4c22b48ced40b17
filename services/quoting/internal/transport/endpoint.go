// Package transport exposes quoting over HTTP with go-kit endpoints and
// subscribes it to the events it follows.
package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/service"
)

// Endpoints are quoting's operations.
type Endpoints struct {
	IssueQuote endpoint.Endpoint
	GetQuote   endpoint.Endpoint
}

// MakeEndpoints wires s into endpoints.
func MakeEndpoints(s service.Service) Endpoints {
	return Endpoints{IssueQuote: makeIssueQuoteEndpoint(s), GetQuote: makeGetQuoteEndpoint(s)}
}

// PatientJSON is the patient block of a quote request and response.
type PatientJSON struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

type issueQuoteRequest struct {
	TreatmentID string      `json:"treatment_id"`
	DoseCells   int64       `json:"dose_cells"`
	Currency    string      `json:"currency"`
	Patient     PatientJSON `json:"patient"`
}

func makeIssueQuoteEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(issueQuoteRequest)
		q, err := s.IssueQuote(ctx, service.IssueRequest{
			TreatmentID: req.TreatmentID, DoseCells: req.DoseCells, Currency: req.Currency,
			Patient: domain.Patient{Name: req.Patient.Name, Email: req.Patient.Email, Country: req.Patient.Country, Language: req.Patient.Language},
		})
		if err != nil {
			return nil, err
		}
		return created{viewOf(q)}, nil
	}
}

type getQuoteRequest struct{ id string }

func makeGetQuoteEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		q, err := s.GetQuote(ctx, request.(getQuoteRequest).id)
		if err != nil {
			return nil, err
		}
		return viewOf(q), nil
	}
}

// QuoteView is a quote as frontends (and the booking service) see it.
type QuoteView struct {
	ID            string        `json:"id"`
	Version       int           `json:"version"`
	Status        string        `json:"status"`
	TreatmentID   string        `json:"treatment_id"`
	TreatmentName string        `json:"treatment_name"`
	ClinicID      string        `json:"clinic_id"`
	ClinicName    string        `json:"clinic_name"`
	DoseCells     int64         `json:"dose_cells"`
	Patient       PatientJSON   `json:"patient"`
	Lines         []domain.Line `json:"lines"`
	Total         money.Money   `json:"total"`
	Deposit       money.Money   `json:"deposit"`
	Balance       money.Money   `json:"balance"`
	DisplayTotal  money.Money   `json:"display_total"`
	FX            FXView        `json:"fx"`
	IssuedAt      time.Time     `json:"issued_at"`
	ValidUntil    time.Time     `json:"valid_until"`
	BookingID     string        `json:"booking_id,omitempty"`
}

// FXView states the locked rate: 1 Base = Price Quote.
type FXView struct {
	Currency money.Currency `json:"currency"`
	Rate     string         `json:"rate"`
	Base     money.Currency `json:"base"`
	Quote    money.Currency `json:"quote"`
	AsOf     time.Time      `json:"as_of"`
}

type created struct{ QuoteView }

func (created) StatusCode() int { return http.StatusCreated }

func viewOf(q domain.Quote) QuoteView {
	return QuoteView{
		ID: q.ID, Version: q.Version, Status: q.Status, TreatmentID: q.TreatmentID, TreatmentName: q.TreatmentName,
		ClinicID: q.ClinicID, ClinicName: q.ClinicName, DoseCells: q.DoseCells,
		Patient: PatientJSON{Name: q.Patient.Name, Email: q.Patient.Email, Country: q.Patient.Country, Language: q.Patient.Language},
		Lines:   q.Lines, Total: q.Total, Deposit: q.Deposit, Balance: q.Balance, DisplayTotal: q.DisplayTotal,
		FX:       FXView{Currency: q.FX.Currency, Rate: q.FX.Price, Base: q.FX.Base, Quote: q.FX.Quote, AsOf: q.FX.AsOf},
		IssuedAt: q.IssuedAt, ValidUntil: q.ValidUntil, BookingID: q.BookingID,
	}
}
