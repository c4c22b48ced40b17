package transport

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/service"
)

// LedgerEntryView is one ledger entry with its transaction: amounts are
// signed, debits positive and credits negative.
type LedgerEntryView struct {
	TransactionID int64             `json:"transaction_id"`
	Line          int16             `json:"line"`
	Source        string            `json:"source"`
	Kind          domain.LedgerKind `json:"kind"`
	BookingID     string            `json:"booking_id,omitempty"`
	ClinicID      string            `json:"clinic_id,omitempty"`
	OccurredAt    time.Time         `json:"occurred_at"`
	PostedAt      time.Time         `json:"posted_at"`
	Description   string            `json:"description,omitempty"`
	Account       string            `json:"account"`
	Amount        money.Money       `json:"amount"`
}

// AccountTotalView is an account's turnover over the query.
type AccountTotalView struct {
	Account string      `json:"account"`
	Debits  money.Money `json:"debits"`
	Credits money.Money `json:"credits"`
	Balance money.Money `json:"balance"`
}

type ledgerView struct {
	Items      []LedgerEntryView  `json:"items"`
	Totals     []AccountTotalView `json:"totals"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

var ledgerParams = []string{"account", "from", "to", "cursor", "limit"}

func decodeLedger(_ context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	var v validation.Validator
	for key := range q {
		v.Check(slices.Contains(ledgerParams, key), key, "is not a parameter of this endpoint ("+strings.Join(ledgerParams, ", ")+")")
	}
	req := service.LedgerQuery{Account: q.Get("account"), Cursor: q.Get("cursor")}
	instant := func(key string) *time.Time {
		s := q.Get(key)
		if s == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			if d, derr := time.Parse(time.DateOnly, s); derr == nil {
				t, err = d, nil // a date is its midnight UTC
			}
		}
		v.Check(err == nil, key, "must be an RFC 3339 time or a date (2026-11-26)")
		return &t
	}
	req.From, req.To = instant("from"), instant("to")
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= service.MaxLedgerPage, "limit", "must be 1 to "+strconv.Itoa(service.MaxLedgerPage))
		req.Limit = n
	}
	return req, v.Err()
}

func makeLedgerEndpoint(s *service.Payments) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		page, err := s.Ledger(ctx, request.(service.LedgerQuery))
		if err != nil {
			return nil, err
		}
		out := ledgerView{Items: make([]LedgerEntryView, 0, len(page.Lines)), Totals: make([]AccountTotalView, 0, len(page.Totals)),
			NextCursor: page.NextCursor}
		for _, l := range page.Lines {
			out.Items = append(out.Items, LedgerEntryView{TransactionID: l.TransactionID, Line: l.Line, Source: l.Source, Kind: l.Kind,
				BookingID: l.BookingID, ClinicID: l.ClinicID, OccurredAt: l.OccurredAt.UTC(), PostedAt: l.PostedAt.UTC(),
				Description: l.Description, Account: l.Account, Amount: l.Amount})
		}
		for _, a := range page.Totals {
			out.Totals = append(out.Totals, AccountTotalView(a))
		}
		return out, nil
	}
}
