// Package stripegw is payment's only door to Stripe (stripe-go v76): it
// creates customers and PaymentIntents with deterministic idempotency keys
// and turns Stripe's answers and webhook payloads into domain terms.
package stripegw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

// Gateway talks to the Stripe API (or stripe-mock) at a configurable URL.
type Gateway struct{ api *client.API }

// New returns a Gateway. baseURL is https://api.stripe.com in production
// and stripe-mock's URL in development; httpClient carries the trace.
func New(apiKey, baseURL string, httpClient *http.Client) *Gateway {
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(baseURL),
		HTTPClient:        httpClient,
		MaxNetworkRetries: stripe.Int64(2), // retried with the same idempotency key
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelError},
	})
	return &Gateway{api: client.New(apiKey, backends)}
}

// Intent is a created PaymentIntent.
type Intent struct {
	ID           string
	ClientSecret string
	State        domain.IntentState
}

// CardError is a declined or authentication-requiring card. Intent, when
// Stripe attached one, carries the PaymentIntent's state.
type CardError struct {
	Code    string
	Message string
	Intent  *domain.IntentState
}

func (e *CardError) Error() string { return "stripe card error " + e.Code + ": " + e.Message }

// CreateCustomer creates the Stripe customer whose saved card pays the balance.
func (g *Gateway) CreateCustomer(ctx context.Context, bookingID, name, email string) (string, error) {
	p := &stripe.CustomerParams{Name: stripe.String(name), Email: stripe.String(email)}
	p.Context = ctx
	p.AddMetadata("booking_id", bookingID)
	p.SetIdempotencyKey(domain.IdempotencyKey(bookingID, "customer"))
	c, err := g.api.Customers.New(p)
	if err != nil {
		return "", translate(err)
	}
	return c.ID, nil
}

// CreateDepositIntent creates the deposit PaymentIntent. The patient's app
// confirms it with the client secret; setup_future_usage=off_session saves
// the card to the customer for the balance.
func (g *Gateway) CreateDepositIntent(ctx context.Context, pay domain.Payment) (Intent, error) {
	p := &stripe.PaymentIntentParams{
		Amount:                  stripe.Int64(pay.Amount.Amount),
		Currency:                stripe.String(strings.ToLower(string(pay.Amount.Currency))),
		Customer:                stripe.String(pay.CustomerID),
		SetupFutureUsage:        stripe.String(string(stripe.PaymentIntentSetupFutureUsageOffSession)),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
		Description:             stripe.String("Deposit for cell culture, booking " + pay.BookingID),
	}
	return g.createIntent(ctx, p, pay, "deposit")
}

// ChargeBalance charges the balance off-session on the card saved with the
// deposit. It is called only when the cells have passed QC, shortly before
// administration: an authorization taken weeks ahead would have expired.
func (g *Gateway) ChargeBalance(ctx context.Context, pay domain.Payment) (Intent, error) {
	p := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(pay.Amount.Amount),
		Currency:      stripe.String(strings.ToLower(string(pay.Amount.Currency))),
		Customer:      stripe.String(pay.CustomerID),
		PaymentMethod: stripe.String(pay.PaymentMethodID),
		OffSession:    stripe.Bool(true),
		Confirm:       stripe.Bool(true),
		Description:   stripe.String("Balance before administration, booking " + pay.BookingID),
	}
	return g.createIntent(ctx, p, pay, "balance")
}

func (g *Gateway) createIntent(ctx context.Context, p *stripe.PaymentIntentParams, pay domain.Payment, stage string) (Intent, error) {
	p.Context = ctx
	p.AddMetadata("booking_id", pay.BookingID)
	p.AddMetadata("payment_id", pay.ID)
	p.AddMetadata("clinic_id", pay.ClinicID)
	p.AddMetadata("stage", stage)
	p.SetIdempotencyKey(domain.IdempotencyKey(pay.BookingID, stage))
	pi, err := g.api.PaymentIntents.New(p)
	if err != nil {
		return Intent{}, translate(err)
	}
	return Intent{ID: pi.ID, ClientSecret: pi.ClientSecret, State: StateOf(pi, time.Now())}, nil
}

func translate(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && se.Type == stripe.ErrorTypeCard {
		ce := &CardError{Code: string(se.Code), Message: se.Msg}
		if se.PaymentIntent != nil && se.PaymentIntent.ID != "" {
			st := StateOf(se.PaymentIntent, time.Now())
			ce.Intent = &st
		}
		return ce
	}
	return fmt.Errorf("stripe: %w", err)
}

// StateOf reads a PaymentIntent into domain terms.
func StateOf(pi *stripe.PaymentIntent, at time.Time) domain.IntentState {
	s := domain.IntentState{ID: pi.ID, Status: string(pi.Status), At: at}
	if c, err := money.ParseCurrency(string(pi.Currency)); err == nil {
		s.AmountReceived = money.New(pi.AmountReceived, c)
	}
	if pi.PaymentMethod != nil {
		s.PaymentMethodID = pi.PaymentMethod.ID
	}
	if e := pi.LastPaymentError; e != nil {
		s.FailureCode, s.FailureMessage = string(e.Code), e.Msg
		if s.FailureCode == "" {
			s.FailureCode = string(e.Type)
		}
	}
	return s
}

// IntentFromEvent reads the PaymentIntent a webhook event carries, and the
// payment id we put in its metadata. Its state is dated by the event's
// creation, so late deliveries order right.
func IntentFromEvent(e stripe.Event) (state domain.IntentState, paymentID string, err error) {
	var pi stripe.PaymentIntent
	if err := json.Unmarshal(e.Data.Raw, &pi); err != nil {
		return domain.IntentState{}, "", err
	}
	if pi.ID == "" {
		return domain.IntentState{}, "", errors.New("event carries no PaymentIntent id")
	}
	return StateOf(&pi, time.Unix(e.Created, 0).UTC()), pi.Metadata["payment_id"], nil
}
