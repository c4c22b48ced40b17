// Package upstream calls the services booking depends on synchronously:
// quoting (which accepts the quote being booked, or says why it cannot be)
// and payment (the deposit PaymentIntent whose client secret the patient
// needs to pay). Calls carry the trace (otelhttp).
package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/money"
)

// Quote is what booking needs of an accepted quote: what the booking
// copies, and the booking id quoting recorded the acceptance under.
type Quote struct {
	ID              string       `json:"id"`
	TreatmentID     string       `json:"treatment_id"`
	TreatmentName   string       `json:"treatment_name"`
	ClinicID        string       `json:"clinic_id"`
	ClinicName      string       `json:"clinic_name"`
	DoseCells       int64        `json:"dose_cells"`
	RequiresHarvest bool         `json:"requires_harvest"`
	Patient         Patient      `json:"patient"`
	Total           money.Money  `json:"total"`
	Deposit         *money.Money `json:"deposit"`
	Balance         *money.Money `json:"balance"`
	BookingID       string       `json:"booking_id"`
	// CancellationTerms are null on quotes issued before terms existed.
	CancellationTerms *CancellationTerms `json:"cancellation_terms"`
}

// CancellationTerms are what a cancellation keeps, as the quote fixed them.
type CancellationTerms struct {
	PolicyVersion   int         `json:"policy_version"`
	CancellationFee money.Money `json:"cancellation_fee"`
	ConsultationFee money.Money `json:"consultation_fee"`
	CultureCost     money.Money `json:"culture_cost"`
}

// Patient as the other services spell it.
type Patient struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

// Acceptance asks quoting to accept a quote for a booking.
type Acceptance struct {
	BookingID      string `json:"booking_id"`
	IdempotencyKey string `json:"idempotency_key"`
	// PatientSubject is the patient booking; quoting accepts only their
	// own quote.
	PatientSubject string `json:"patient_subject"`
}

// DepositRequest asks payment for the deposit PaymentIntent.
type DepositRequest struct {
	BookingID string      `json:"booking_id"`
	ClinicID  string      `json:"clinic_id"`
	Deposit   money.Money `json:"deposit"`
	Balance   money.Money `json:"balance"`
	Patient   Patient     `json:"patient"`
	// DepositMethod is card or bank_transfer.
	DepositMethod string `json:"deposit_method,omitempty"`
}

// Deposit is payment's answer: what the patient's app confirms with Stripe.
type Deposit struct {
	PaymentID       string      `json:"payment_id"`
	Amount          money.Money `json:"amount"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	Status          string      `json:"status"`
	// BankTransfer is payment's transfer instructions, passed on as they are.
	BankTransfer json.RawMessage `json:"bank_transfer,omitempty"`
}

// BalanceSession is what the patient's app pays the balance with, on-session.
type BalanceSession struct {
	PaymentID       string      `json:"payment_id"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	Amount          money.Money `json:"amount"`
	Status          string      `json:"status"`
	// BankTransfer is where to transfer a balance asked for by bank transfer.
	BankTransfer json.RawMessage `json:"bank_transfer,omitempty"`
}

// Clients holds the go-kit client endpoints.
type Clients struct {
	acceptQuote    endpoint.Endpoint
	createDeposit  endpoint.Endpoint
	quoteAsCaller  endpoint.Endpoint
	balanceSession endpoint.Endpoint
}

// Screening is a quote's health information, as quoting shows it to the
// caller it is read for (and audits).
type Screening struct {
	Screening   json.RawMessage `json:"screening"`
	Eligibility json.RawMessage `json:"eligibility"`
}

type quoteAsCaller struct{ quoteID, authorization string }

// New builds clients for the given base URLs: client calls as booking
// itself, callerClient forwards the caller's own token.
func New(quotingURL, paymentURL string, client, callerClient *http.Client) (*Clients, error) {
	q, err := url.Parse(quotingURL)
	if err != nil {
		return nil, err
	}
	p, err := url.Parse(paymentURL)
	if err != nil {
		return nil, err
	}
	opt := kithttp.SetClient(client)
	return &Clients{
		acceptQuote: kithttp.NewClient(http.MethodPost, q, encodeAcceptance,
			httpkit.DecodeJSONResponse[Quote](), opt).Endpoint(),
		balanceSession: kithttp.NewClient(http.MethodPost, p.JoinPath("/internal/v1/balance-sessions"), httpkit.EncodeJSONRequest,
			httpkit.DecodeJSONResponse[BalanceSession](), opt).Endpoint(),
		createDeposit: kithttp.NewClient(http.MethodPost, p.JoinPath("/internal/v1/deposits"), httpkit.EncodeJSONRequest,
			httpkit.DecodeJSONResponse[Deposit](), opt).Endpoint(),
		quoteAsCaller: kithttp.NewClient(http.MethodGet, q, func(_ context.Context, r *http.Request, request any) error {
			req := request.(quoteAsCaller)
			r.URL.Path = "/v1/quotes/" + url.PathEscape(req.quoteID)
			r.Header.Set("Authorization", req.authorization)
			return nil
		}, httpkit.DecodeJSONResponse[Screening](), kithttp.SetClient(callerClient)).Endpoint(),
	}, nil
}

type acceptQuote struct {
	quoteID string
	Acceptance
}

func encodeAcceptance(ctx context.Context, r *http.Request, request any) error {
	a := request.(acceptQuote)
	r.URL.Path = "/internal/v1/quotes/" + url.PathEscape(a.quoteID) + "/acceptance"
	return httpkit.EncodeJSONRequest(ctx, r, a.Acceptance)
}

// AcceptQuote asks quoting to accept quote id for a booking. Quoting alone
// decides whether it can be booked: a refusal is quoting's *httpkit.Problem
// (404 for an unknown quote), to be passed on as it is.
func (c *Clients) AcceptQuote(ctx context.Context, id string, a Acceptance) (*Quote, error) {
	v, err := c.acceptQuote(ctx, acceptQuote{quoteID: id, Acceptance: a})
	if err != nil {
		return nil, err
	}
	return v.(*Quote), nil
}

// BalanceSession asks payment for the balance's PaymentIntent as Stripe has
// it now, for the patient to pay on-session. A refusal is payment's
// *httpkit.Problem.
func (c *Clients) BalanceSession(ctx context.Context, bookingID string) (*BalanceSession, error) {
	v, err := c.balanceSession(ctx, map[string]string{"booking_id": bookingID})
	if err != nil {
		return nil, err
	}
	return v.(*BalanceSession), nil
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

// Screening reads a quote's screening and eligibility from quoting as the
// caller whose token authorization is: quoting decides whether they may see
// it, and records that they did.
func (c *Clients) Screening(ctx context.Context, quoteID, authorization string) (*Screening, error) {
	v, err := c.quoteAsCaller(ctx, quoteAsCaller{quoteID: quoteID, authorization: authorization})
	if err != nil {
		return nil, err
	}
	return v.(*Screening), nil
}
