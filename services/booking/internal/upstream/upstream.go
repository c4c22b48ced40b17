// Package upstream calls the services booking depends on synchronously:
// quoting (the quote being booked), catalog (is the treatment still
// bookable right now) and payment (the deposit PaymentIntent whose client
// secret the patient needs to pay). Calls carry the trace (otelhttp).
package upstream

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/money"
)

// Quote is what booking needs of a quote.
type Quote struct {
	ID              string  `json:"id"`
	Version         int     `json:"version"`
	Status          string  `json:"status"`
	SupersededBy    string  `json:"superseded_by"`
	TreatmentID     string  `json:"treatment_id"`
	TreatmentName   string  `json:"treatment_name"`
	ClinicID        string  `json:"clinic_id"`
	ClinicName      string  `json:"clinic_name"`
	DoseCells       int64   `json:"dose_cells"`
	RequiresHarvest bool    `json:"requires_harvest"`
	Patient         Patient `json:"patient"`
	Eligibility     struct {
		Status string `json:"status"`
	} `json:"eligibility"`
	Total      money.Money  `json:"total"`
	Deposit    *money.Money `json:"deposit"`
	Balance    *money.Money `json:"balance"`
	ValidUntil time.Time    `json:"valid_until"`
	BookingID  string       `json:"booking_id"`
}

// Patient as the other services spell it.
type Patient struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

// Treatment is what booking needs of a catalog treatment.
type Treatment struct {
	ID       string `json:"id"`
	Bookable bool   `json:"bookable"`
	Plan     struct {
		Number string `json:"number"`
		Status string `json:"status"`
	} `json:"plan"`
}

// DepositRequest asks payment for the deposit PaymentIntent.
type DepositRequest struct {
	BookingID string      `json:"booking_id"`
	ClinicID  string      `json:"clinic_id"`
	Deposit   money.Money `json:"deposit"`
	Balance   money.Money `json:"balance"`
	Patient   Patient     `json:"patient"`
}

// Deposit is payment's answer: what the patient's app confirms with Stripe.
type Deposit struct {
	PaymentID       string      `json:"payment_id"`
	Amount          money.Money `json:"amount"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	Status          string      `json:"status"`
}

// Clients holds the go-kit client endpoints.
type Clients struct {
	getQuote      endpoint.Endpoint
	getTreatment  endpoint.Endpoint
	createDeposit endpoint.Endpoint
}

// New builds clients for the given base URLs.
func New(quotingURL, catalogURL, paymentURL string, client *http.Client) (*Clients, error) {
	q, err := url.Parse(quotingURL)
	if err != nil {
		return nil, err
	}
	c, err := url.Parse(catalogURL)
	if err != nil {
		return nil, err
	}
	p, err := url.Parse(paymentURL)
	if err != nil {
		return nil, err
	}
	opt := kithttp.SetClient(client)
	return &Clients{
		getQuote: kithttp.NewClient(http.MethodGet, q, pathParam("/v1/quotes/"),
			httpkit.DecodeJSONResponse[Quote](), opt).Endpoint(),
		getTreatment: kithttp.NewClient(http.MethodGet, c, pathParam("/v1/treatments/"),
			httpkit.DecodeJSONResponse[Treatment](), opt).Endpoint(),
		createDeposit: kithttp.NewClient(http.MethodPost, p.JoinPath("/internal/v1/deposits"), httpkit.EncodeJSONRequest,
			httpkit.DecodeJSONResponse[Deposit](), opt).Endpoint(),
	}, nil
}

func pathParam(prefix string) kithttp.EncodeRequestFunc {
	return func(_ context.Context, r *http.Request, request any) error {
		r.URL.Path = prefix + url.PathEscape(request.(string))
		return nil
	}
}

// Quote fetches a quote; an unknown id is a *httpkit.Problem with status 404.
func (c *Clients) Quote(ctx context.Context, id string) (*Quote, error) {
	v, err := c.getQuote(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.(*Quote), nil
}

// Treatment fetches a catalog treatment.
func (c *Clients) Treatment(ctx context.Context, id string) (*Treatment, error) {
	v, err := c.getTreatment(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.(*Treatment), nil
}

// CreateDeposit asks payment for the deposit PaymentIntent. Payment keys it
// on the booking id, so calling again returns the same intent.
func (c *Clients) CreateDeposit(ctx context.Context, req DepositRequest) (*Deposit, error) {
	v, err := c.createDeposit(ctx, req)
	if err != nil {
		return nil, err
	}
	return v.(*Deposit), nil
}
