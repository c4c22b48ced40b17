package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/domain"
)

// PostLedger writes a ledger transaction unless one with its source was
// written before; false means it was. The database checks the balance when
// the surrounding transaction commits.
func (s *Store) PostLedger(ctx context.Context, tx pgx.Tx, t domain.LedgerTransaction) (bool, error) {
	if err := t.Validate(); err != nil {
		return false, err
	}
	var booking *string
	if t.BookingID != "" {
		booking = &t.BookingID
	}
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO ledger_transactions (source, kind, booking_id, clinic_id, occurred_at, description)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source) DO NOTHING RETURNING id`,
		t.Source, t.Kind, booking, t.ClinicID, t.OccurredAt, t.Description).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	lines, accounts, amounts, currencies := make([]int16, len(t.Entries)), make([]string, len(t.Entries)),
		make([]int64, len(t.Entries)), make([]string, len(t.Entries))
	for i, e := range t.Entries {
		lines[i], accounts[i], amounts[i], currencies[i] = int16(i+1), e.Account, e.Amount.Amount, string(e.Amount.Currency)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO ledger_entries (transaction_id, line, account, amount, currency)
		SELECT $1, l, a, m, c FROM unnest($2::smallint[], $3::text[], $4::bigint[], $5::text[]) AS e(l, a, m, c)`,
		id, lines, accounts, amounts, currencies)
	return true, err
}

// LedgerFilter selects entries: of one account, or of every account under a
// prefix ending in ':'; occurred in [From, To); after a cursor.
type LedgerFilter struct {
	Account  string
	From, To *time.Time
	AfterTx  int64
	AfterLn  int16
	Limit    int
}

// LedgerLine is one entry with its transaction.
type LedgerLine struct {
	TransactionID int64
	Line          int16
	Source        string
	Kind          domain.LedgerKind
	BookingID     string
	ClinicID      string
	OccurredAt    time.Time
	PostedAt      time.Time
	Description   string
	Account       string
	Amount        money.Money
}

func (f LedgerFilter) where(args *[]any) string {
	var conds []string
	add := func(cond string, v any) {
		*args = append(*args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(*args))))
	}
	if strings.HasSuffix(f.Account, ":") {
		add("e.account LIKE ?", escapeLike(f.Account)+"%")
	} else if f.Account != "" {
		add("e.account = ?", f.Account)
	}
	if f.From != nil {
		add("t.occurred_at >= ?", *f.From)
	}
	if f.To != nil {
		add("t.occurred_at < ?", *f.To)
	}
	if len(conds) == 0 {
		return "TRUE"
	}
	return strings.Join(conds, " AND ")
}

// Ledger lists entries in posting order.
func (s *Store) Ledger(ctx context.Context, db pgdb.Querier, f LedgerFilter) ([]LedgerLine, error) {
	args := []any{}
	where := f.where(&args)
	args = append(args, f.AfterTx, f.AfterLn, f.Limit)
	n := len(args)
	rows, err := db.Query(ctx, `
		SELECT t.id, e.line, t.source, t.kind, COALESCE(t.booking_id::text, ''), t.clinic_id, t.occurred_at, t.posted_at,
		       t.description, e.account, e.amount, e.currency
		FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
		WHERE `+where+` AND (e.transaction_id, e.line) > ($`+strconv.Itoa(n-2)+`, $`+strconv.Itoa(n-1)+`)
		ORDER BY e.transaction_id, e.line LIMIT $`+strconv.Itoa(n), args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LedgerLine, error) {
		var l LedgerLine
		var amount int64
		var currency money.Currency
		err := r.Scan(&l.TransactionID, &l.Line, &l.Source, &l.Kind, &l.BookingID, &l.ClinicID, &l.OccurredAt, &l.PostedAt,
			&l.Description, &l.Account, &amount, &currency)
		l.Amount = money.New(amount, currency)
		return l, err
	})
}

// AccountTotal is an account's debits, credits and balance over a filter.
type AccountTotal struct {
	Account string
	Debits  money.Money
	Credits money.Money // positive
	Balance money.Money // debits − credits
}

// LedgerTotals sums the filtered entries per account and currency.
func (s *Store) LedgerTotals(ctx context.Context, db pgdb.Querier, f LedgerFilter) ([]AccountTotal, error) {
	args := []any{}
	where := f.where(&args)
	rows, err := db.Query(ctx, `
		SELECT e.account, e.currency, COALESCE(sum(e.amount) FILTER (WHERE e.amount > 0), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE e.amount < 0), 0)
		FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
		WHERE `+where+` GROUP BY e.account, e.currency ORDER BY e.account, e.currency`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccountTotal, error) {
		var a AccountTotal
		var currency money.Currency
		var debits, credits int64
		err := r.Scan(&a.Account, &currency, &debits, &credits)
		a.Debits, a.Credits, a.Balance = money.New(debits, currency), money.New(credits, currency), money.New(debits-credits, currency)
		return a, err
	})
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
