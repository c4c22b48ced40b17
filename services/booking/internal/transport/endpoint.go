// Package transport exposes booking over HTTP with go-kit endpoints and
// subscribes it to payment events.
package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/booking/internal/domain"
	"github.com/saisei-health/platform/services/booking/internal/service"
	"github.com/saisei-health/platform/services/booking/internal/store"
)

// Endpoints are booking's operations.
type Endpoints struct {
	CreateBooking        endpoint.Endpoint
	GetBooking           endpoint.Endpoint
	RecordHarvest        endpoint.Endpoint
	RecordCellsReady     endpoint.Endpoint
	RecordAdministration endpoint.Endpoint
	Cancel               endpoint.Endpoint
	FindIneligible       endpoint.Endpoint
	PayBalance           endpoint.Endpoint
	Reculture            endpoint.Endpoint
	ClinicBookings       endpoint.Endpoint
	ClinicBooking        endpoint.Endpoint
}

// MakeEndpoints wires s into endpoints.
func MakeEndpoints(s service.Service) Endpoints {
	return Endpoints{
		CreateBooking:        makeCreateBookingEndpoint(s),
		GetBooking:           makeGetBookingEndpoint(s),
		RecordHarvest:        makeRecordHarvestEndpoint(s),
		RecordCellsReady:     makeRecordCellsReadyEndpoint(s),
		RecordAdministration: makeRecordAdministrationEndpoint(s),
		Cancel:               makeCancelEndpoint(s),
		FindIneligible:       makeIneligibleEndpoint(s),
		PayBalance:           makePayBalanceEndpoint(s),
		Reculture:            makeRecultureEndpoint(s),
		ClinicBookings:       makeClinicBookingsEndpoint(s),
		ClinicBooking:        makeClinicBookingEndpoint(s),
	}
}

type createBookingRequest struct {
	QuoteID string `json:"quote_id"`
	// DepositMethod is card (the default) or bank_transfer.
	DepositMethod  string `json:"deposit_method"`
	idempotencyKey string
}

// DepositView is what the patient's app needs to pay the deposit.
type DepositView struct {
	PaymentID       string      `json:"payment_id"`
	Amount          money.Money `json:"amount"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	// BankTransfer is where to transfer a bank-transfer deposit: bank,
	// branch, account, holder, reference and the amount remaining.
	BankTransfer json.RawMessage `json:"bank_transfer,omitempty"`
}

type createdBookingView struct {
	BookingView
	Deposit  DepositView `json:"deposit"`
	replayed bool
}

func (createdBookingView) StatusCode() int { return http.StatusCreated }

// Headers marks a replayed answer, as Stripe does.
func (r createdBookingView) Headers() http.Header {
	if r.replayed {
		return http.Header{"Idempotent-Replayed": []string{"true"}}
	}
	return nil
}

func makeCreateBookingEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(createBookingRequest)
		caller, _ := identity.FromContext(ctx)
		c, err := s.CreateBooking(ctx, service.CreateRequest{QuoteID: req.QuoteID, IdempotencyKey: req.idempotencyKey,
			PatientSubject: caller.Subject, DepositMethod: req.DepositMethod})
		if err != nil {
			return nil, err
		}
		return createdBookingView{
			BookingView: viewOf(c.Booking, nil),
			Deposit: DepositView{PaymentID: c.Deposit.PaymentID, Amount: c.Deposit.Amount,
				PaymentIntentID: c.Deposit.PaymentIntentID, ClientSecret: c.Deposit.ClientSecret, BankTransfer: c.Deposit.BankTransfer},
			replayed: c.Replayed,
		}, nil
	}
}

type bookingID struct{ id string }

func makeGetBookingEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		b, history, err := s.GetBooking(ctx, caller, request.(bookingID).id)
		if err != nil {
			return nil, err
		}
		return viewOf(b, history), nil
	}
}

// clinicListRequest is a clinic's page request.
type clinicListRequest struct{ filter store.ClinicFilter }

// BookingPageView is a page of a clinic's bookings.
type BookingPageView struct {
	Items      []BookingView `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// ClinicBookingView is a booking as its clinic sees it: with the patient's
// screening and eligibility.
type ClinicBookingView struct {
	BookingView
	Screening   json.RawMessage `json:"screening"`
	Eligibility json.RawMessage `json:"eligibility"`
}

func makeClinicBookingEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		authorization, _ := ctx.Value(kithttp.ContextKeyRequestAuthorization).(string)
		b, history, sc, err := s.ClinicBooking(ctx, caller, request.(bookingID).id, authorization)
		if err != nil {
			return nil, err
		}
		return ClinicBookingView{BookingView: viewOf(b, history), Screening: sc.Screening, Eligibility: sc.Eligibility}, nil
	}
}

func makeClinicBookingsEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(clinicListRequest)
		caller, _ := identity.FromContext(ctx)
		bs, err := s.ClinicBookings(ctx, caller, req.filter)
		if err != nil {
			return nil, err
		}
		page := BookingPageView{Items: []BookingView{}}
		for _, b := range bs {
			page.Items = append(page.Items, viewOf(b, nil))
		}
		if len(bs) == req.filter.Limit {
			last := bs[len(bs)-1]
			page.NextCursor = encodeCursor(last.CreatedAt, last.ID)
		}
		return page, nil
	}
}

type timedReport struct {
	id string
	at time.Time
}

func makeRecordHarvestEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(timedReport)
		caller, _ := identity.FromContext(ctx)
		b, err := s.RecordHarvest(ctx, caller, req.id, req.at)
		if err != nil {
			return nil, err
		}
		return viewOf(b, nil), nil
	}
}

func makeRecordAdministrationEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(timedReport)
		caller, _ := identity.FromContext(ctx)
		b, err := s.RecordAdministration(ctx, caller, req.id, req.at)
		if err != nil {
			return nil, err
		}
		return viewOf(b, nil), nil
	}
}

type cellsReadyRequest struct {
	id     string
	report domain.QualityReport
}

func makeRecordCellsReadyEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(cellsReadyRequest)
		caller, _ := identity.FromContext(ctx)
		b, err := s.RecordCellsReady(ctx, caller, req.id, req.report)
		if err != nil {
			return nil, err
		}
		return viewOf(b, nil), nil
	}
}

// BookingView is a booking as frontends and clinics see it.
type BookingView struct {
	ID              string        `json:"id"`
	Status          domain.Status `json:"status"`
	QuoteID         string        `json:"quote_id"`
	ClinicID        string        `json:"clinic_id"`
	ClinicName      string        `json:"clinic_name"`
	TreatmentID     string        `json:"treatment_id"`
	TreatmentName   string        `json:"treatment_name"`
	DoseCells       int64         `json:"dose_cells"`
	RequiresHarvest bool          `json:"requires_harvest"`
	Patient         PatientView   `json:"patient"`
	Total           money.Money   `json:"total"`
	DepositDue      money.Money   `json:"deposit_due"`
	// DepositDueAt is when the booking expires unless the deposit is paid.
	DepositDueAt   time.Time   `json:"deposit_due_at"`
	BalanceDue     money.Money `json:"balance_due"`
	BalanceFailure string      `json:"balance_failure,omitempty"`
	// BalancePayBy is when a balance that needs the patient must be paid.
	BalancePayBy   *time.Time   `json:"balance_pay_by,omitempty"`
	HarvestedAt    *time.Time   `json:"harvested_at,omitempty"`
	QualityReport  *QualityView `json:"quality_report,omitempty"`
	AdministeredAt *time.Time   `json:"administered_at,omitempty"`
	// CancellationTerms are what a cancellation would keep; Cancellation
	// how the booking ended, once cancelled.
	CancellationTerms TermsView         `json:"cancellation_terms"`
	Cancellation      *CancellationView `json:"cancellation,omitempty"`
	History           []TransitionView  `json:"history,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

type PatientView struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

type QualityView struct {
	CellCount    int64     `json:"cell_count"`
	ViabilityPct string    `json:"viability_pct"`
	Sterility    string    `json:"sterility"`
	Endotoxin    string    `json:"endotoxin"`
	Passed       bool      `json:"passed"`
	ReportedAt   time.Time `json:"reported_at"`
}

type TransitionView struct {
	From  domain.Status `json:"from"`
	To    domain.Status `json:"to"`
	Cause string        `json:"cause"`
	At    time.Time     `json:"at"`
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

func viewOf(b domain.Booking, history []domain.Transition) BookingView {
	v := BookingView{
		ID: b.ID, Status: b.Status, QuoteID: b.QuoteID, ClinicID: b.ClinicID, ClinicName: b.ClinicName,
		TreatmentID: b.TreatmentID, TreatmentName: b.TreatmentName, DoseCells: b.DoseCells, RequiresHarvest: b.RequiresHarvest,
		Patient: PatientView{Name: b.Patient.Name, Email: b.Patient.Email, Country: b.Patient.Country, Language: b.Patient.Language},
		Total:   b.Total, DepositDue: b.Deposit, DepositDueAt: b.DepositDueAt.UTC(), BalanceDue: b.Balance, BalanceFailure: b.BalanceFailure,
		BalancePayBy: b.BalanceActionDueAt,
		HarvestedAt:  b.HarvestedAt, AdministeredAt: b.AdministeredAt, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt,
		CancellationTerms: TermsView(b.Terms), Cancellation: cancellationView(b.Cancellation),
	}
	if b.QC != nil {
		v.QualityReport = &QualityView{CellCount: b.QC.CellCount, ViabilityPct: domain.FormatPercent(b.QC.ViabilityBP),
			Sterility: passFail(b.QC.SterilityPassed), Endotoxin: passFail(b.QC.EndotoxinPassed),
			Passed: len(b.QC.Failures(b.DoseCells)) == 0, ReportedAt: b.QC.ReportedAt}
	}
	for _, t := range history {
		v.History = append(v.History, TransitionView{From: t.From, To: t.To, Cause: t.Cause, At: t.At})
	}
	return v
}
