package transport

import (
	"context"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

type reconcileRequest struct {
	from, to time.Time
	csv      bool
}

// decodeReconcile reads from and to: dates on the Japanese calendar (from
// its midnight, to included) or RFC 3339 times (to excluded).
func decodeReconcile(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	var v validation.Validator
	for key := range q {
		v.Check(slices.Contains([]string{"from", "to"}, key), key, "is not a parameter of this endpoint (from, to)")
	}
	parse := func(key string, endOfDay bool) time.Time {
		s := q.Get(key)
		if s == "" {
			return time.Time{}
		}
		if d, err := time.ParseInLocation(time.DateOnly, s, tokyo.Location); err == nil {
			if endOfDay {
				d = d.AddDate(0, 0, 1)
			}
			return d
		}
		t, err := time.Parse(time.RFC3339, s)
		v.Check(err == nil, key, "must be a date (2026-11-26, Japan time) or an RFC 3339 time")
		return t
	}
	req := reconcileRequest{from: parse("from", false), to: parse("to", true),
		csv: strings.Contains(r.Header.Get("Accept"), "text/csv")}
	return req, v.Err()
}

// ReconciliationView is the report as JSON.
type ReconciliationView struct {
	From       time.Time       `json:"from"`
	To         time.Time       `json:"to"`
	Days       []DayView       `json:"days"`
	Bookings   []BookingView   `json:"bookings"`
	Categories []CategoryView  `json:"categories"`
	Mismatches []MismatchView  `json:"mismatches"`
	Totals     ReconcileTotals `json:"totals"`
}

// DayView is one Tokyo day's movements on Stripe's balance.
type DayView struct {
	Day      string      `json:"day"`
	Received money.Money `json:"received"`
	Refunded money.Money `json:"refunded"`
	Disputed money.Money `json:"disputed"`
	Fees     money.Money `json:"fees"`
	PaidOut  money.Money `json:"paid_out"`
	Net      money.Money `json:"net"`
}

// BookingView is one booking's money: net = received − refunded − disputed.
type BookingView struct {
	BookingID string      `json:"booking_id"`
	ClinicID  string      `json:"clinic_id"`
	Expected  money.Money `json:"expected"`
	Received  money.Money `json:"received"`
	Refunded  money.Money `json:"refunded"`
	Disputed  money.Money `json:"disputed"`
	Fees      money.Money `json:"fees"`
	Net       money.Money `json:"net"`
}

// CategoryView is Stripe's balance transactions of one reporting category.
type CategoryView struct {
	Category string `json:"reporting_category"`
	Currency string `json:"currency"`
	Count    int64  `json:"count"`
	Amount   int64  `json:"amount"`
	Fee      int64  `json:"fee"`
	Net      int64  `json:"net"`
}

// MismatchView is one disagreement between the ledger and Stripe.
type MismatchView struct {
	Kind         string `json:"kind"`
	Source       string `json:"source"`
	BookingID    string `json:"booking_id,omitempty"`
	Category     string `json:"category"`
	LedgerAmount int64  `json:"ledger_amount"`
	StripeAmount int64  `json:"stripe_amount"`
	Currency     string `json:"currency"`
}

// ReconcileTotals counts what the report found.
type ReconcileTotals struct {
	Bookings   int  `json:"bookings"`
	Mismatches int  `json:"mismatches"`
	Reconciled bool `json:"reconciled"`
}

func makeReconcileEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(reconcileRequest)
		r, err := s.Reconcile(ctx, req.from, req.to)
		if err != nil {
			return nil, err
		}
		v := ReconciliationView{From: r.From.UTC(), To: r.To.UTC(), Days: []DayView{}, Bookings: []BookingView{},
			Categories: []CategoryView{}, Mismatches: []MismatchView{}}
		for _, d := range r.Days {
			m := func(n int64) money.Money { return money.New(n, d.Currency) }
			v.Days = append(v.Days, DayView{Day: d.Day.Format(time.DateOnly), Received: m(d.Received), Refunded: m(d.Refunded),
				Disputed: m(d.Disputed), Fees: m(d.Fees), PaidOut: m(d.PaidOut), Net: m(d.Net)})
		}
		for _, b := range r.Bookings {
			v.Bookings = append(v.Bookings, BookingView(b))
		}
		for _, c := range r.Categories {
			v.Categories = append(v.Categories, CategoryView(c))
		}
		for _, m := range r.Mismatches {
			v.Mismatches = append(v.Mismatches, MismatchView(m))
		}
		v.Totals = ReconcileTotals{Bookings: len(v.Bookings), Mismatches: len(v.Mismatches), Reconciled: len(v.Mismatches) == 0}
		if req.csv {
			return csvReport(v), nil
		}
		return v, nil
	}
}

// csvReport is the report as one CSV table: a record column says whether a
// row is a day, a booking or a mismatch.
type csvReport ReconciliationView

// encodeReconcile writes CSV when it was asked for, JSON otherwise.
func encodeReconcile(ctx context.Context, w http.ResponseWriter, response any) error {
	r, ok := response.(csvReport)
	if !ok {
		return httpkit.EncodeResponse(ctx, w, response)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="reconciliation.csv"`)
	cw := csv.NewWriter(w)
	n := func(m money.Money) string { return strconv.FormatInt(m.Amount, 10) }
	i := strconv.FormatInt
	_ = cw.Write([]string{"record", "day", "booking_id", "clinic_id", "currency", "expected", "received", "refunded", "disputed",
		"fees", "paid_out", "net", "kind", "source", "ledger_amount", "stripe_amount"})
	for _, d := range r.Days {
		_ = cw.Write([]string{"day", d.Day, "", "", string(d.Net.Currency), "", n(d.Received), n(d.Refunded), n(d.Disputed),
			n(d.Fees), n(d.PaidOut), n(d.Net), "", "", "", ""})
	}
	for _, b := range r.Bookings {
		_ = cw.Write([]string{"booking", "", b.BookingID, b.ClinicID, string(b.Net.Currency), n(b.Expected), n(b.Received),
			n(b.Refunded), n(b.Disputed), n(b.Fees), "", n(b.Net), "", "", "", ""})
	}
	for _, m := range r.Mismatches {
		_ = cw.Write([]string{"mismatch", "", m.BookingID, "", m.Currency, "", "", "", "", "", "", "", m.Kind, m.Source,
			i(m.LedgerAmount, 10), i(m.StripeAmount, 10)})
	}
	cw.Flush()
	return cw.Error()
}

func makeImportEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, _ any) (any, error) {
		n, err := s.ImportBalance(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]int{"imported": n}, nil
	}
}
