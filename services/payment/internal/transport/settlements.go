package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// StatementView is a clinic's settlement statement.
type StatementView struct {
	ClinicID   string               `json:"clinic_id"`
	Period     string               `json:"period"`
	From       time.Time            `json:"from"`
	To         time.Time            `json:"to"`
	Status     string               `json:"status"` // open or closed
	ClosedAt   *time.Time           `json:"closed_at,omitempty"`
	ClosedBy   string               `json:"closed_by,omitempty"`
	RateBP     int                  `json:"commission_rate_bp"`
	Lines      []SettlementLineView `json:"lines"`
	Release    money.Money          `json:"released"`
	Commission money.Money          `json:"commission"`
	Owed       money.Money          `json:"owed"`
	Held       money.Money          `json:"held"`
}

// SettlementLineView is one booking on a statement.
type SettlementLineView struct {
	BookingID  string      `json:"booking_id"`
	Received   money.Money `json:"received"`
	Refunded   money.Money `json:"refunded"`
	Disputed   money.Money `json:"disputed"`
	Settled    money.Money `json:"previously_settled"`
	Held       bool        `json:"held"`
	Release    money.Money `json:"released"`
	Commission money.Money `json:"commission"`
	Owed       money.Money `json:"owed"`
}

func statementView(st service.Statement) StatementView {
	v := StatementView{ClinicID: st.ClinicID, Period: st.Period, From: st.From.UTC(), To: st.To.UTC(), Status: "open", RateBP: st.RateBP,
		Lines: make([]SettlementLineView, 0, len(st.Lines)), Release: st.Release, Commission: st.Fees, Owed: st.Owed, Held: st.Held}
	if st.Closed != nil {
		at := st.Closed.ClosedAt.UTC()
		v.Status, v.ClosedAt, v.ClosedBy = "closed", &at, st.Closed.ClosedBy
	}
	for _, l := range st.Lines {
		v.Lines = append(v.Lines, SettlementLineView{BookingID: l.BookingID, Received: l.Received, Refunded: l.Refunded,
			Disputed: l.Disputed, Settled: l.Settled, Held: l.Held, Release: l.Release, Commission: l.Commission, Owed: l.Owed})
	}
	return v
}

type statementRequest struct {
	ClinicID string `json:"clinic_id"`
	Period   string `json:"period"`
}

func decodeStatement(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	for key := range q {
		if key != "clinic" && key != "period" {
			return nil, validation.FieldError{Field: key, Message: "is not a parameter of this endpoint (clinic, period)"}
		}
	}
	return statementRequest{ClinicID: q.Get("clinic"), Period: q.Get("period")}, nil
}

func decodeCloseStatement(_ context.Context, r *http.Request) (any, error) {
	var req statementRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	return req, nil
}

func makeStatementEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(statementRequest)
		st, err := s.Statement(ctx, req.ClinicID, req.Period)
		if err != nil {
			return nil, err
		}
		return statementView(st), nil
	}
}

func makeCloseStatementEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(statementRequest)
		st, err := s.CloseSettlement(ctx, req.ClinicID, req.Period)
		if err != nil {
			return nil, err
		}
		return statementView(st), nil
	}
}

type commissionView struct {
	ClinicID string `json:"clinic_id"`
	RateBP   int    `json:"rate_bp"`
}

type commissionRequest struct {
	clinicID string
	RateBP   *int `json:"rate_bp"`
}

func decodeCommission(_ context.Context, r *http.Request) (any, error) {
	req := commissionRequest{clinicID: r.PathValue("clinic_id")}
	if r.Method == http.MethodPut {
		if err := httpkit.DecodeJSON(r, &req); err != nil {
			return nil, err
		}
		if req.RateBP == nil {
			return nil, validation.FieldError{Field: "rate_bp", Message: "is required"}
		}
	}
	return req, nil
}

func makeCommissionEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(commissionRequest)
		if req.RateBP != nil {
			if err := s.SetCommission(ctx, req.clinicID, *req.RateBP); err != nil {
				return nil, err
			}
		}
		rate, err := s.Commission(ctx, req.clinicID)
		if err != nil {
			return nil, err
		}
		return commissionView{ClinicID: req.clinicID, RateBP: rate}, nil
	}
}
