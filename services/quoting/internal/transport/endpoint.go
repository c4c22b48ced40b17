// Package transport exposes quoting over HTTP with go-kit endpoints and
// subscribes it to the events it follows.
package transport

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
	"github.com/saisei-health/platform/services/quoting/internal/service"
	"github.com/saisei-health/platform/services/quoting/internal/store"
)

// Endpoints are quoting's operations.
type Endpoints struct {
	IssueQuote  endpoint.Endpoint
	GetQuote    endpoint.Endpoint
	ReviseQuote endpoint.Endpoint
	AcceptQuote endpoint.Endpoint
	AuditLog    endpoint.Endpoint
}

// MakeEndpoints wires s into endpoints.
func MakeEndpoints(s service.Service) Endpoints {
	return Endpoints{IssueQuote: makeIssueQuoteEndpoint(s), GetQuote: makeGetQuoteEndpoint(s),
		ReviseQuote: makeReviseQuoteEndpoint(s), AcceptQuote: makeAcceptQuoteEndpoint(s), AuditLog: makeAuditLogEndpoint(s)}
}

// AuditEntryView is one read of a patient's health information.
type AuditEntryView struct {
	At       time.Time `json:"at"`
	Subject  string    `json:"subject"`
	Role     string    `json:"role"`
	ClinicID string    `json:"clinic_id,omitempty"`
	Action   string    `json:"action"`
	Record   string    `json:"record"`
}

type auditPageView struct {
	Items      []AuditEntryView `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

func makeAuditLogEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		f := request.(store.AuditFilter)
		entries, err := s.AuditLog(ctx, f)
		if err != nil {
			return nil, err
		}
		page := auditPageView{Items: []AuditEntryView{}}
		for _, e := range entries {
			page.Items = append(page.Items, AuditEntryView{At: e.At, Subject: e.Subject, Role: e.Role, ClinicID: e.ClinicID, Action: e.Action, Record: e.Record})
		}
		if len(entries) == f.Limit {
			page.NextCursor = strconv.FormatInt(entries[len(entries)-1].Seq, 10)
		}
		return page, nil
	}
}

// acceptQuoteRequest is booking's call: which booking takes the quote, and
// the Idempotency-Key of the patient's booking request.
type acceptQuoteRequest struct {
	id             string
	BookingID      string `json:"booking_id"`
	IdempotencyKey string `json:"idempotency_key"`
	// PatientSubject is the patient booking (booking's caller).
	PatientSubject string `json:"patient_subject"`
}

func makeAcceptQuoteEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(acceptQuoteRequest)
		q, err := s.AcceptQuote(ctx, service.Acceptance{QuoteID: req.id, BookingID: req.BookingID, IdempotencyKey: req.IdempotencyKey,
			PatientSubject: req.PatientSubject})
		if err != nil {
			return nil, err
		}
		return viewOf(q), nil
	}
}

// PatientView is the patient block of a quote request and response.
type PatientView struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

// ExtraRequest is an extra as requested: the quantity is named by its unit.
type ExtraRequest struct {
	Code   string `json:"code"`
	Nights *int   `json:"nights,omitempty"`
	Days   *int   `json:"days,omitempty"`
	Trips  *int   `json:"trips,omitempty"`
	Years  *int   `json:"years,omitempty"`
}

// toRequests reads extras, insisting that multi-unit extras say how many
// and that no extra carries another's unit.
func toRequests(extras []ExtraRequest) ([]domain.ExtraRequest, []validation.FieldError) {
	var out []domain.ExtraRequest
	var errs []validation.FieldError
	if len(extras) > len(domain.ExtraUnits) {
		// Each extra is listed once at most; a longer list is refused whole
		// rather than answered with an error per item.
		return nil, []validation.FieldError{{Field: "extras", Message: fmt.Sprintf("must list at most %d extras", len(domain.ExtraUnits))}}
	}
	for i, x := range extras {
		units := []struct {
			unit string
			n    *int
		}{{"night", x.Nights}, {"day", x.Days}, {"trip", x.Trips}, {"year", x.Years}}
		spec, known := domain.ExtraUnits[x.Code]
		qty, given := 1, false
		for _, u := range units {
			unit, n := u.unit, u.n
			if n != nil && unit == spec.Unit {
				given = true
			}
			field := fmt.Sprintf("extras[%d].%ss", i, unit)
			switch {
			case n == nil:
			case !known || spec.Unit != unit:
				errs = append(errs, validation.FieldError{Field: field, Message: "does not apply to " + x.Code})
			default:
				qty = *n
			}
		}
		if known && spec.Max > 1 && !given {
			errs = append(errs, validation.FieldError{Field: fmt.Sprintf("extras[%d].%ss", i, spec.Unit), Message: "is required"})
		}
		out = append(out, domain.ExtraRequest{Code: x.Code, Quantity: qty})
	}
	return out, errs
}

type issueQuoteRequest struct {
	TreatmentID string               `json:"treatment_id"`
	DoseCells   int64                `json:"dose_cells"`
	Currency    string               `json:"currency"`
	Patient     PatientView          `json:"patient"`
	Extras      []ExtraRequest       `json:"extras"`
	Screening   *store.ScreeningJSON `json:"screening"`
}

func makeIssueQuoteEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(issueQuoteRequest)
		extras, errs := toRequests(req.Extras)
		screening, err := req.Screening.ToScreening()
		errs = append(errs, validation.Fields(err)...)
		caller, _ := identity.FromContext(ctx)
		q, err := s.IssueQuote(ctx, service.IssueRequest{
			PatientSubject: caller.Subject,
			Unreadable:     errs,
			TreatmentID:    req.TreatmentID, DoseCells: req.DoseCells, Currency: req.Currency, Extras: extras, Screening: screening,
			Patient: domain.Patient{Name: req.Patient.Name, Email: req.Patient.Email, Country: req.Patient.Country, Language: req.Patient.Language},
		})
		if err != nil {
			return nil, err
		}
		return createdQuote{viewOf(q)}, nil
	}
}

type getQuoteRequest struct{ id string }

func makeGetQuoteEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		caller, _ := identity.FromContext(ctx)
		q, err := s.GetQuote(ctx, caller, request.(getQuoteRequest).id)
		if err != nil {
			return nil, err
		}
		return viewOf(q), nil
	}
}

type eligibilityRequest struct {
	Status  string          `json:"status"`
	Reasons []domain.Reason `json:"reasons"`
}

type reviseQuoteRequest struct {
	id          string
	DoseCells   *int64              `json:"dose_cells"`
	Extras      *[]ExtraRequest     `json:"extras"`
	Eligibility *eligibilityRequest `json:"eligibility"`
	Note        string              `json:"note"`
}

func makeReviseQuoteEndpoint(s service.Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(reviseQuoteRequest)
		r := domain.Revision{DoseCells: req.DoseCells, Note: req.Note}
		var errs []validation.FieldError
		if req.Extras != nil {
			extras, xerrs := toRequests(*req.Extras)
			errs = append(errs, xerrs...)
			r.Extras = &extras
		}
		if e := req.Eligibility; e != nil {
			if e.Status != domain.Eligible && e.Status != domain.NeedsReview && e.Status != domain.Ineligible {
				errs = append(errs, validation.FieldError{Field: "eligibility.status", Message: "must be eligible, needs_review or ineligible"})
			}
			reasons := e.Reasons
			if reasons == nil {
				reasons = []domain.Reason{}
			}
			var v validation.Validator
			v.Check(len(reasons) <= domain.MaxReasons, "eligibility.reasons", fmt.Sprintf("must be at most %d reasons", domain.MaxReasons))
			for i, reason := range reasons {
				field := fmt.Sprintf("eligibility.reasons[%d]", i)
				v.Text(field+".code", reason.Code, domain.MaxReasonCode, false)
				v.Text(field+".message", reason.Message, domain.MaxReasonText, true)
			}
			errs = append(errs, validation.Fields(v.Err())...)
			r.Eligibility = &domain.Eligibility{Status: e.Status, Reasons: reasons}
		}
		var v validation.Validator
		v.Text("note", req.Note, domain.MaxNoteLength, true)
		errs = append(errs, validation.Fields(v.Err())...)
		if len(errs) > 0 {
			return nil, validation.Errors(errs)
		}
		caller, _ := identity.FromContext(ctx)
		q, err := s.ReviseQuote(ctx, caller, req.id, r)
		if err != nil {
			return nil, err
		}
		return createdQuote{viewOf(q)}, nil
	}
}

// QuoteView is a quote as frontends (and the booking service) see it.
type QuoteView struct {
	ID              string               `json:"id"`
	Version         int                  `json:"version"`
	Status          domain.Status        `json:"status"`
	Supersedes      string               `json:"supersedes,omitempty"`
	SupersededBy    string               `json:"superseded_by,omitempty"`
	TreatmentID     string               `json:"treatment_id"`
	TreatmentName   string               `json:"treatment_name"`
	ClinicID        string               `json:"clinic_id"`
	ClinicName      string               `json:"clinic_name"`
	DoseCells       int64                `json:"dose_cells"`
	Visits          int                  `json:"visits"`
	RequiresHarvest bool                 `json:"requires_harvest"`
	Patient         PatientView          `json:"patient"`
	Screening       *store.ScreeningJSON `json:"screening"`
	Eligibility     domain.Eligibility   `json:"eligibility"`
	Lines           []domain.Line        `json:"lines"`
	Subtotal        money.Money          `json:"subtotal"`
	Tax             money.Money          `json:"tax"`
	TaxRatePercent  int                  `json:"tax_rate_percent"`
	Total           money.Money          `json:"total"`
	// Deposit and Balance are null when the quote cannot be booked.
	Deposit *money.Money `json:"deposit"`
	Balance *money.Money `json:"balance"`
	// CancellationTerms are what a cancellation keeps (null when the quote
	// cannot be booked, or was issued before terms existed).
	CancellationTerms *domain.CancellationTerms `json:"cancellation_terms"`
	DisplayTotal      money.Money               `json:"display_total"`
	FX                FXView                    `json:"fx"`
	IssuedAt          time.Time                 `json:"issued_at"`
	ValidUntil        time.Time                 `json:"valid_until"`
	BookingID         string                    `json:"booking_id,omitempty"`
	Note              string                    `json:"note,omitempty"`
}

// FXView states the locked rate: 1 Base = Rate Quote.
type FXView struct {
	Currency money.Currency `json:"currency"`
	Rate     string         `json:"rate"`
	Base     money.Currency `json:"base"`
	Quote    money.Currency `json:"quote"`
	AsOf     time.Time      `json:"as_of"`
}

type createdQuote struct{ QuoteView }

func (createdQuote) StatusCode() int { return http.StatusCreated }

func viewOf(q domain.Quote) QuoteView {
	v := QuoteView{
		ID: q.ID, Version: q.Version, Status: q.Status, Supersedes: q.Supersedes, SupersededBy: q.SupersededBy,
		TreatmentID: q.TreatmentID, TreatmentName: q.TreatmentName, ClinicID: q.ClinicID, ClinicName: q.ClinicName,
		DoseCells: q.DoseCells, Visits: q.Visits, RequiresHarvest: q.RequiresHarvest,
		Patient:   PatientView{Name: q.Patient.Name, Email: q.Patient.Email, Country: q.Patient.Country, Language: q.Patient.Language},
		Screening: store.FromScreening(q.Screening), Eligibility: q.Eligibility,
		Lines: q.Lines, Subtotal: q.Subtotal, Tax: q.Tax, TaxRatePercent: domain.ConsumptionTaxPercent, Total: q.Total,
		DisplayTotal: q.DisplayTotal,
		FX:           FXView{Currency: q.FX.Currency, Rate: q.FX.Price, Base: q.FX.Base, Quote: q.FX.Quote, AsOf: q.FX.AsOf},
		IssuedAt:     q.IssuedAt, ValidUntil: q.ValidUntil, BookingID: q.BookingID, Note: q.Note,
	}
	// An ineligible patient is never asked to pay, whatever the quote's
	// status has become since (expired, withdrawn).
	if q.Eligibility.Status != domain.Ineligible {
		d, b := q.Deposit, q.Balance
		v.Deposit, v.Balance = &d, &b
		if q.Cancellation.CultureCost.Currency != "" {
			terms := q.Cancellation
			v.CancellationTerms = &terms
		}
	}
	return v
}
