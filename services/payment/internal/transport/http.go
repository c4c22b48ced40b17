package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// maxWebhookBody bounds a Stripe event; real ones are a few kilobytes.
const maxWebhookBody = 256 << 10

// MakeHandler serves payment's HTTP API.
// Booking (and the gateway) call the internal routes as services; finance
// reads the finance view; Stripe's webhook carries a signature instead of a
// token.
func MakeHandler(e Endpoints, log *slog.Logger, guard *identity.Guard) http.Handler {
	opts := httpkit.ServerOptions(log, problems)
	r := httpkit.NewRouter()
	services, finance, admin := guard.Require(identity.Service), guard.Require(identity.Finance), guard.Require(identity.Admin)
	r.Handle("POST /internal/v1/deposits", services(kithttp.NewServer(e.CreateDeposit, decodeCreateDeposit, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /internal/v1/payments", services(kithttp.NewServer(e.ListPayments, decodeBookingQuery, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /internal/v1/balance-sessions", services(kithttp.NewServer(e.BalanceSession, decodeBalanceSession, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/finance/bookings/{id}", finance(kithttp.NewServer(e.Finance, decodeBookingPath, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/finance/ledger", finance(kithttp.NewServer(e.Ledger, decodeLedger, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/finance/reconciliation", finance(kithttp.NewServer(e.Reconcile, decodeReconcile, encodeReconcile, opts...)))
	r.Handle("POST /v1/finance/reconciliation/import", finance(kithttp.NewServer(e.ImportBalance,
		func(context.Context, *http.Request) (any, error) { return nil, nil }, httpkit.EncodeResponse, opts...)))
	r.Handle("GET /v1/finance/settlements", finance(kithttp.NewServer(e.Statement, decodeStatement, httpkit.EncodeResponse, opts...)))
	r.Handle("POST /v1/finance/settlements/close", finance(kithttp.NewServer(e.CloseStatement, decodeCloseStatement, httpkit.EncodeResponse, opts...)))
	for _, pattern := range []string{"GET /v1/admin/commissions/{clinic_id}", "PUT /v1/admin/commissions/{clinic_id}"} {
		r.Handle(pattern, admin(kithttp.NewServer(e.Commission, decodeCommission, httpkit.EncodeResponse, opts...)))
	}
	r.Handle("GET /v1/finance/disputes", finance(kithttp.NewServer(e.Disputes, decodeDisputes, httpkit.EncodeResponse, opts...)))
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

func decodeDisputes(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	for key := range q {
		if key != "status" {
			return nil, validation.FieldError{Field: key, Message: "is not a parameter of this endpoint (status)"}
		}
	}
	st := domain.DisputeStatus(q.Get("status"))
	switch st {
	case "", domain.DisputeOpen, domain.DisputeWon, domain.DisputeLost, domain.DisputeWarningClosed:
		return st, nil
	}
	return nil, validation.FieldError{Field: "status", Message: "must be open, won, lost or warning_closed"}
}

func decodeBalanceSession(_ context.Context, r *http.Request) (any, error) {
	var req struct {
		BookingID string `json:"booking_id"`
	}
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	return listPaymentsRequest{bookingID: req.BookingID}, nil
}

func decodeBookingQuery(_ context.Context, r *http.Request) (any, error) {
	id := r.URL.Query().Get("booking_id")
	if id == "" {
		return nil, validation.FieldError{Field: "booking_id", Message: "query parameter is required"}
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
		return nil, httpkit.ProblemPayloadTooLarge.New("a Stripe event is at most 256 KiB")
	}
	return stripeWebhookRequest{payload: body, signature: sig}, nil
}

// Payment's problem types, beyond httpkit's own.
var (
	problemSignature      = httpkit.DefineProblem(http.StatusBadRequest, "invalid-signature", "Stripe signature is not valid")
	problemNotFound       = httpkit.DefineProblem(http.StatusNotFound, "not-found", "No payments for this booking")
	problemPlanConflict   = httpkit.DefineProblem(http.StatusConflict, "payment-plan-conflict", "Booking already has a different payment plan")
	problemStripe         = httpkit.DefineProblem(http.StatusBadGateway, "payment-provider-unavailable", "Payment provider unavailable")
	problemNothingToPay   = httpkit.DefineProblem(http.StatusConflict, "nothing-to-pay", "The balance has nothing to pay on-session")
	problemPeriodNotOver  = httpkit.DefineProblem(http.StatusConflict, "period-not-over", "The settlement period is not over")
	problemAlreadySettled = httpkit.DefineProblem(http.StatusConflict, "settlement-closed", "The settlement statement is already closed")
)

func signatureProblem(detail string) *httpkit.Problem {
	p := problemSignature.New(detail)
	p.Errors = []validation.FieldError{{Field: "Stripe-Signature", Message: detail}}
	return p
}

// problems maps payment's errors; field errors need no rule.
var problems = httpkit.ProblemTable{
	{Convert: func(err error) *httpkit.Problem {
		if errors.Is(err, service.ErrBadSignature) {
			return signatureProblem(err.Error())
		}
		return nil
	}},
	{Err: service.ErrMalformedEvent, Type: httpkit.ProblemMalformed},
	{Err: service.ErrNotFound, Type: problemNotFound},
	{Err: service.ErrPlanConflict, Type: problemPlanConflict},
	{Err: service.ErrStripe, Type: problemStripe},
	{Err: service.ErrNothingToPay, Type: problemNothingToPay},
	{Err: service.ErrPeriodNotOver, Type: problemPeriodNotOver},
	{Err: service.ErrAlreadySettled, Type: problemAlreadySettled},
}
