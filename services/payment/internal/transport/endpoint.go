// Package transport exposes payment over HTTP with go-kit endpoints (the
// deposit for booking, the Stripe webhook, the finance view) and subscribes
// it to the booking events that trigger the balance charge.
package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// Endpoints are payment's operations.
type Endpoints struct {
	CreateDeposit  endpoint.Endpoint
	ListPayments   endpoint.Endpoint
	Finance        endpoint.Endpoint
	StripeWebhook  endpoint.Endpoint
	Ledger         endpoint.Endpoint
	BalanceSession endpoint.Endpoint
	Disputes       endpoint.Endpoint
	Reconcile      endpoint.Endpoint
	ImportBalance  endpoint.Endpoint
	Statement      endpoint.Endpoint
	CloseStatement endpoint.Endpoint
	Commission     endpoint.Endpoint
}

// MakeEndpoints wires s into endpoints.
func MakeEndpoints(s *service.Payments) Endpoints {
	return Endpoints{
		CreateDeposit:  makeCreateDepositEndpoint(s),
		ListPayments:   makeListPaymentsEndpoint(s),
		Finance:        makeFinanceEndpoint(s),
		StripeWebhook:  makeStripeWebhookEndpoint(s),
		Ledger:         makeLedgerEndpoint(s),
		Disputes:       makeDisputesEndpoint(s),
		Reconcile:      makeReconcileEndpoint(s),
		ImportBalance:  makeImportEndpoint(s),
		Statement:      makeStatementEndpoint(s),
		CloseStatement: makeCloseStatementEndpoint(s),
		Commission:     makeCommissionEndpoint(s),
		BalanceSession: func(ctx context.Context, r any) (any, error) {
			bs, err := s.BalanceSession(ctx, r.(listPaymentsRequest).bookingID)
			if err != nil {
				return nil, err
			}
			return BalanceSessionView{PaymentID: bs.PaymentID, PaymentIntentID: bs.PaymentIntentID, ClientSecret: bs.ClientSecret,
				Amount: bs.Amount, Status: bs.Status, BankTransfer: bs.Transfer}, nil
		},
	}
}

// BalanceSessionView is what the patient's app pays the balance with.
type BalanceSessionView struct {
	PaymentID       string              `json:"payment_id"`
	PaymentIntentID string              `json:"payment_intent_id"`
	ClientSecret    string              `json:"client_secret"`
	Amount          money.Money         `json:"amount"`
	Status          domain.IntentStatus `json:"status"`
	// BankTransfer is where to transfer a balance asked for by bank transfer.
	BankTransfer *domain.TransferInstructions `json:"bank_transfer,omitempty"`
}

type patientRequest struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

type createDepositRequest struct {
	BookingID string         `json:"booking_id"`
	ClinicID  string         `json:"clinic_id"`
	Deposit   money.Money    `json:"deposit"`
	Balance   money.Money    `json:"balance"`
	Patient   patientRequest `json:"patient"`
	// DepositMethod is card (the default) or bank_transfer.
	DepositMethod domain.DepositMethod `json:"deposit_method"`
}

// DepositView answers booking with what the patient's app needs.
type DepositView struct {
	PaymentID       string        `json:"payment_id"`
	BookingID       string        `json:"booking_id"`
	Amount          money.Money   `json:"amount"`
	PaymentIntentID string        `json:"payment_intent_id"`
	ClientSecret    string        `json:"client_secret"`
	Status          domain.Status `json:"status"`
	// BankTransfer is where the patient transfers a bank-transfer deposit.
	BankTransfer *domain.TransferInstructions `json:"bank_transfer,omitempty"`
}

func (DepositView) StatusCode() int { return http.StatusCreated }

func makeCreateDepositEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(createDepositRequest)
		p, err := s.CreateDeposit(ctx, service.DepositRequest{BookingID: req.BookingID, ClinicID: req.ClinicID,
			Deposit: req.Deposit, Balance: req.Balance, PatientName: req.Patient.Name, PatientEmail: req.Patient.Email,
			Method: req.DepositMethod})
		if err != nil {
			return nil, err
		}
		return DepositView{PaymentID: p.ID, BookingID: p.BookingID, Amount: p.Amount, PaymentIntentID: p.PaymentIntentID,
			ClientSecret: p.ClientSecret, Status: p.Status, BankTransfer: p.Transfer}, nil
	}
}

// PaymentView is one payment of a booking.
type PaymentView struct {
	PaymentID       string        `json:"payment_id"`
	Stage           domain.Stage  `json:"stage"`
	PaymentIntentID string        `json:"payment_intent_id"`
	Amount          money.Money   `json:"amount"`
	AmountReceived  money.Money   `json:"amount_received"`
	Status          domain.Status `json:"status"`
	OffSession      bool          `json:"off_session"`
	PaymentMethodID string        `json:"payment_method_id,omitempty"`
	FailureCode     string        `json:"failure_code,omitempty"`
	FailureMessage  string        `json:"failure_message,omitempty"`
	SucceededAt     *time.Time    `json:"succeeded_at,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	// Method is card or bank_transfer; BankTransfer says where to transfer
	// and what is still owed.
	Method       domain.DepositMethod         `json:"method"`
	BankTransfer *domain.TransferInstructions `json:"bank_transfer,omitempty"`
	// Dispute flags a payment the patient's bank disputes (chargeback).
	Dispute *PaymentDisputeView `json:"dispute,omitempty"`
}

// PaymentDisputeView flags a disputed payment.
type PaymentDisputeView struct {
	ID     string               `json:"id"`
	Status domain.DisputeStatus `json:"status"`
	Amount money.Money          `json:"amount"`
}

func methodOf(p domain.Payment) domain.DepositMethod {
	if p.Method == "" {
		return domain.ByCard
	}
	return p.Method
}

func paymentView(p domain.Payment) PaymentView {
	return PaymentView{PaymentID: p.ID, Stage: p.Stage, PaymentIntentID: p.PaymentIntentID, Amount: p.Amount,
		AmountReceived: p.AmountReceived, Status: p.Status, OffSession: p.Stage == domain.Balance,
		PaymentMethodID: p.PaymentMethodID, FailureCode: p.FailureCode, FailureMessage: p.FailureMessage,
		Method: methodOf(p), BankTransfer: p.Transfer,
		SucceededAt: p.SucceededAt, CreatedAt: p.CreatedAt}
}

type listPaymentsRequest struct{ bookingID string }

type paymentListView struct {
	Items []PaymentView `json:"items"`
}

func makeListPaymentsEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		ps, disputes, err := s.PaymentsOf(ctx, request.(listPaymentsRequest).bookingID)
		if err != nil {
			return nil, err
		}
		resp := paymentListView{Items: []PaymentView{}}
		for _, p := range ps {
			v := paymentView(p)
			for _, d := range disputes {
				if d.PaymentID == p.ID {
					v.Dispute = &PaymentDisputeView{ID: d.ID, Status: d.Status, Amount: d.Amount}
				}
			}
			resp.Items = append(resp.Items, v)
		}
		return resp, nil
	}
}

// StageFinanceView compares what a stage should bring in with what Stripe
// reported received.
type StageFinanceView struct {
	Expected        money.Money   `json:"expected"`
	Received        money.Money   `json:"received"`
	Outstanding     money.Money   `json:"outstanding"`
	Status          domain.Status `json:"status"`
	PaymentIntentID string        `json:"payment_intent_id,omitempty"`
	SucceededAt     *time.Time    `json:"succeeded_at,omitempty"`
}

// FinanceView is one booking's money, for reconciliation.
type FinanceView struct {
	BookingID   string           `json:"booking_id"`
	ClinicID    string           `json:"clinic_id"`
	Currency    money.Currency   `json:"currency"`
	Expected    money.Money      `json:"expected"`
	Received    money.Money      `json:"received"`
	Outstanding money.Money      `json:"outstanding"`
	Settled     bool             `json:"settled"`
	Deposit     StageFinanceView `json:"deposit"`
	Balance     StageFinanceView `json:"balance"`
	// Disputes are the booking's chargebacks; SettlementHeld says whether
	// one holds the clinic's settlement of the booking (open or lost).
	Disputes       []DisputeView `json:"disputes"`
	SettlementHeld bool          `json:"settlement_held"`
}

func makeFinanceEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		f, err := s.FinanceOf(ctx, request.(listPaymentsRequest).bookingID)
		if err != nil {
			return nil, err
		}
		return financeView(f)
	}
}

func financeView(f service.Finance) (FinanceView, error) {
	c := f.Plan.Deposit.Currency
	v := FinanceView{BookingID: f.Plan.BookingID, ClinicID: f.Plan.ClinicID, Currency: c}
	stage := func(st domain.Stage) (StageFinanceView, error) {
		sf := StageFinanceView{Expected: f.Plan.Due(st), Received: money.Zero(c), Status: "not_started"}
		switch {
		case st == domain.Balance && f.Plan.BalanceCancelledAt != nil:
			sf.Status = "cancelled"
		case st == domain.Balance && f.Plan.Balance.IsZero():
			sf.Status = "not_required" // paid in full with the deposit
		}
		for _, p := range f.Payments {
			if p.Stage == st {
				sf.Received, sf.Status, sf.PaymentIntentID, sf.SucceededAt = p.AmountReceived, p.Status, p.PaymentIntentID, p.SucceededAt
			}
		}
		var err error
		sf.Outstanding, err = sf.Expected.Sub(sf.Received)
		return sf, err
	}
	var err error
	if v.Deposit, err = stage(domain.Deposit); err != nil {
		return v, err
	}
	if v.Balance, err = stage(domain.Balance); err != nil {
		return v, err
	}
	if v.Expected, err = v.Deposit.Expected.Add(v.Balance.Expected); err != nil {
		return v, err
	}
	if v.Received, err = v.Deposit.Received.Add(v.Balance.Received); err != nil {
		return v, err
	}
	if v.Outstanding, err = v.Expected.Sub(v.Received); err != nil {
		return v, err
	}
	v.Settled = v.Outstanding.IsZero()
	v.Disputes = make([]DisputeView, 0, len(f.Disputes))
	for _, d := range f.Disputes {
		v.Disputes = append(v.Disputes, disputeView(d))
		v.SettlementHeld = v.SettlementHeld || d.Status.Holds()
	}
	return v, nil
}

// DisputeView is a chargeback as finance sees it.
type DisputeView struct {
	ID        string               `json:"id"`
	BookingID string               `json:"booking_id"`
	ClinicID  string               `json:"clinic_id"`
	PaymentID string               `json:"payment_id"`
	ChargeID  string               `json:"charge_id,omitempty"`
	Amount    money.Money          `json:"amount"`
	Fee       money.Money          `json:"fee"`
	Status    domain.DisputeStatus `json:"status"`
	Reason    string               `json:"reason,omitempty"`
	OpenedAt  time.Time            `json:"opened_at"`
	ClosedAt  *time.Time           `json:"closed_at,omitempty"`
	// Holds says whether it holds the clinic's settlement of the booking.
	Holds bool `json:"holds_settlement"`
}

func disputeView(d domain.Dispute) DisputeView {
	return DisputeView{ID: d.ID, BookingID: d.BookingID, ClinicID: d.ClinicID, PaymentID: d.PaymentID, ChargeID: d.ChargeID,
		Amount: d.Amount, Fee: d.Fee, Status: d.Status, Reason: d.Reason, OpenedAt: d.OpenedAt.UTC(), ClosedAt: d.ClosedAt,
		Holds: d.Status.Holds()}
}

func makeDisputesEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		list, err := s.Disputes(ctx, request.(domain.DisputeStatus))
		if err != nil {
			return nil, err
		}
		out := struct {
			Items []DisputeView `json:"items"`
		}{Items: make([]DisputeView, 0, len(list))}
		for _, d := range list {
			out.Items = append(out.Items, disputeView(d))
		}
		return out, nil
	}
}

type stripeWebhookRequest struct {
	payload   []byte
	signature string
}

type webhookReceiptView struct {
	Received bool   `json:"received"`
	Outcome  string `json:"outcome"`
}

func makeStripeWebhookEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(stripeWebhookRequest)
		outcome, err := s.HandleWebhook(ctx, req.payload, req.signature)
		if err != nil {
			return nil, err
		}
		return webhookReceiptView{Received: true, Outcome: outcome}, nil
	}
}
