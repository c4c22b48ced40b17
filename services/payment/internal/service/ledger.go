package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/store"
)

// MaxLedgerPage bounds one page of the ledger.
const MaxLedgerPage = 500

// LedgerQuery is what finance asks of the ledger: one account (or every
// account under a prefix ending in ':', e.g. booking:<id>:), entries that
// occurred in [From, To), a page after Cursor.
type LedgerQuery struct {
	Account  string
	From, To *time.Time
	Cursor   string
	Limit    int
}

// LedgerPage is one page of entries, with the totals of every entry the
// query selects (all pages), per account and currency.
type LedgerPage struct {
	Lines      []store.LedgerLine
	Totals     []store.AccountTotal
	NextCursor string
}

// Ledger reads the ledger for finance.
func (s *Payments) Ledger(ctx context.Context, q LedgerQuery) (LedgerPage, error) {
	f := store.LedgerFilter{Account: q.Account, From: q.From, To: q.To, Limit: q.Limit}
	if f.Limit == 0 {
		f.Limit = 100
	}
	var v validation.Validator
	v.Check(f.Limit >= 1 && f.Limit <= MaxLedgerPage, "limit", fmt.Sprintf("must be 1 to %d", MaxLedgerPage))
	v.Check(len(q.Account) <= 200, "account", "must be at most 200 characters")
	v.Check(q.From == nil || q.To == nil || q.From.Before(*q.To), "to", "must be after from")
	if q.Cursor != "" {
		tx, line, ok := parseLedgerCursor(q.Cursor)
		v.Check(ok, "cursor", "is not a cursor from a previous page")
		f.AfterTx, f.AfterLn = tx, line
	}
	if err := v.Err(); err != nil {
		return LedgerPage{}, err
	}
	lines, err := s.store.Ledger(ctx, s.pool, f)
	if err != nil {
		return LedgerPage{}, err
	}
	totals, err := s.store.LedgerTotals(ctx, s.pool, f)
	if err != nil {
		return LedgerPage{}, err
	}
	page := LedgerPage{Lines: lines, Totals: totals}
	if len(lines) == f.Limit {
		last := lines[len(lines)-1]
		page.NextCursor = fmt.Sprintf("%d.%d", last.TransactionID, last.Line)
	}
	return page, nil
}

func parseLedgerCursor(c string) (int64, int16, bool) {
	a, b, ok := strings.Cut(c, ".")
	tx, err1 := strconv.ParseInt(a, 10, 64)
	line, err2 := strconv.ParseInt(b, 10, 16)
	return tx, int16(line), ok && err1 == nil && err2 == nil && tx >= 0 && line >= 0
}
