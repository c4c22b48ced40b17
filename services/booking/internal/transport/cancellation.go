package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/booking/internal/domain"
	"github.com/saisei-health/platform/services/booking/internal/service"
)

// CancellationView says how a booking ended: what is refunded to the
// patient's card, what is kept and why.
type CancellationView struct {
	Reason      domain.CancellationReason `json:"reason"`
	Refund      money.Money               `json:"refund"`
	Retained    money.Money               `json:"retained"`
	Explanation string                    `json:"explanation"`
	ClinicNote  string                    `json:"clinic_note,omitempty"`
	At          time.Time                 `json:"at"`
}

// TermsView is what a cancellation would keep, as the quote fixed it.
type TermsView struct {
	PolicyVersion   int         `json:"policy_version"`
	CancellationFee money.Money `json:"cancellation_fee"`
	ConsultationFee money.Money `json:"consultation_fee"`
	CultureCost     money.Money `json:"culture_cost"`
}

func cancellationView(c *domain.Cancellation) *CancellationView {
	if c == nil {
		return nil
	}
	return &CancellationView{Reason: c.Reason, Refund: c.Refund, Retained: c.Retained, Explanation: c.Explanation,
		ClinicNote: c.ClinicNote, At: c.At}
}

// maxIneligibleReason bounds the clinic's reason, shown to the patient.
const maxIneligibleReason = 1000

type ineligibleRequest struct {
	id     string
	Reason string `json:"reason"`
}

func decodeIneligible(_ context.Context, r *http.Request) (any, error) {
	req := ineligibleRequest{id: r.PathValue("id")}
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	var v validation.Validator
	v.Check(req.Reason != "", "reason", "is required: the patient is told why")
	v.Text("reason", req.Reason, maxIneligibleReason, true)
	return req, v.Err()
}

func makeCancelEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		b, err := s.CancelBooking(ctx, caller, request.(bookingID).id)
		if err != nil {
			return nil, err
		}
		return viewOf(b, nil), nil
	}
}

func makeIneligibleEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(ineligibleRequest)
		caller, _ := identity.FromContext(ctx)
		b, err := s.FindIneligible(ctx, caller, req.id, req.Reason)
		if err != nil {
			return nil, err
		}
		return viewOf(b, nil), nil
	}
}

// BalancePaymentView is what the patient's app pays the balance with:
// confirm the intent with Stripe.js (client_secret) by pay_by.
type BalancePaymentView struct {
	BookingID       string      `json:"booking_id"`
	PaymentID       string      `json:"payment_id"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	Amount          money.Money `json:"amount"`
	Status          string      `json:"status"`
	PayBy           *time.Time  `json:"pay_by"`
	// BankTransfer is where to transfer a balance asked for by bank transfer.
	BankTransfer json.RawMessage `json:"bank_transfer,omitempty"`
}

func makePayBalanceEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		b, bs, err := s.PayBalance(ctx, caller, request.(bookingID).id)
		if err != nil {
			return nil, err
		}
		return BalancePaymentView{BookingID: b.ID, PaymentID: bs.PaymentID, PaymentIntentID: bs.PaymentIntentID,
			ClientSecret: bs.ClientSecret, Amount: bs.Amount, Status: bs.Status, PayBy: b.BalanceActionDueAt,
			BankTransfer: bs.BankTransfer}, nil
	}
}

func makeRecultureEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		b, err := s.Reculture(ctx, caller, request.(bookingID).id)
		if err != nil {
			return nil, err
		}
		return viewOf(b, nil), nil
	}
}
