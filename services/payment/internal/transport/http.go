package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// maxWebhookBody bounds a Stripe event; real ones are a few kilobytes.
const maxWebhookBody = 256 << 10

// MakeHandler serves payment's HTTP API.
func MakeHandler(e Endpoints, log *slog.Logger) http.Handler {
	opts := httpkit.ServerOptions(log, problemOf)
	r := httpkit.NewRouter()
	r.Handle("POST /internal/v1/deposits", kithttp.NewServer(e.CreateDeposit, decodeCreateDeposit, httpkit.EncodeResponse, opts...))
	r.Handle("GET /internal/v1/payments", kithttp.NewServer(e.ListPayments, decodeBookingQuery, httpkit.EncodeResponse, opts...))
	r.Handle("GET /v1/finance/bookings/{id}", kithttp.NewServer(e.Finance, decodeBookingPath, httpkit.EncodeResponse, opts...))
	r.Handle("POST /v1/webhooks/stripe", kithttp.NewServer(e.StripeWebhook, decodeStripeWebhook, httpkit.EncodeResponse, opts...))
	return r
}

func decodeCreateDeposit(_ context.Context, r *http.Request) (any, error) {
	var req createDepositRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeBookingQuery(_ context.Context, r *http.Request) (any, error) {
	id := r.URL.Query().Get("booking_id")
	if id == "" {
		return nil, httpkit.Invalid(httpkit.FieldError{Field: "booking_id", Message: "query parameter is required"})
	}
	return listPaymentsRequest{bookingID: id}, nil
}

func decodeBookingPath(_ context.Context, r *http.Request) (any, error) {
	return listPaymentsRequest{bookingID: r.PathValue("id")}, nil
}

// decodeStripeWebhook keeps the body byte for byte: the signature is over
// the exact bytes Stripe sent.
func decodeStripeWebhook(_ context.Context, r *http.Request) (any, error) {
	sig := r.Header.Get("Stripe-Signature")
	if sig == "" {
		return nil, signatureProblem("Stripe-Signature header is missing")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxWebhookBody {
		return nil, httpkit.NewProblem(http.StatusRequestEntityTooLarge, "payload-too-large", "Webhook payload too large", "")
	}
	return stripeWebhookRequest{payload: body, signature: sig}, nil
}

func signatureProblem(detail string) *httpkit.Problem {
	p := httpkit.NewProblem(http.StatusBadRequest, "invalid-signature", "Stripe signature is not valid", detail)
	p.Errors = []httpkit.FieldError{{Field: "Stripe-Signature", Message: detail}}
	return p
}

func problemOf(err error) *httpkit.Problem {
	var fe service.FieldError
	switch {
	case errors.As(err, &fe):
		return httpkit.Invalid(httpkit.FieldError{Field: fe.Field, Message: fe.Message})
	case errors.Is(err, service.ErrBadSignature):
		return signatureProblem(err.Error())
	case errors.Is(err, service.ErrNotFound):
		return httpkit.NewProblem(http.StatusNotFound, "not-found", "No payments for this booking", err.Error())
	case errors.Is(err, service.ErrPlanConflict):
		return httpkit.Conflict("payment-plan-conflict", "Booking already has a different payment plan", err.Error())
	case errors.Is(err, service.ErrStripe):
		return httpkit.NewProblem(http.StatusBadGateway, "payment-provider-unavailable", "Payment provider unavailable", err.Error())
	}
	return nil
}
