package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
)

// Mismatch is one source on which the ledger and Stripe disagree.
type Mismatch struct {
	Kind         string // missing_at_stripe, missing_in_ledger, amount_differs
	Source       string
	BookingID    string
	Category     string
	LedgerAmount int64 // what the ledger says moved on Stripe's balance
	StripeAmount int64 // what Stripe says (net of its fee for disputes)
	Currency     string
}

// Mismatches compares, for what moved in [from, to), every charge, refund
// and dispute movement the ledger holds with Stripe's balance transactions:
// charges and refunds by their ch_/re_ source (gross amount), dispute
// movements by their txn_ id (net). It is one pass of two indexed
// aggregations joined on the source.
func (s *Store) Mismatches(ctx context.Context, db pgdb.Querier, from, to time.Time) ([]Mismatch, error) {
	rows, err := db.Query(ctx, `
		WITH ledger AS (
			SELECT t.source, COALESCE(t.booking_id::text, '') AS booking_id, t.kind, sum(e.amount) AS amount, min(e.currency) AS currency
			FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id AND e.account = 'stripe:balance'
			WHERE t.kind IN ('charge', 'refund', 'dispute', 'dispute_reversal') AND t.occurred_at >= $1 AND t.occurred_at < $2
			GROUP BY t.source, t.booking_id, t.kind),
		stripe AS (
			SELECT CASE WHEN reporting_category IN ('dispute', 'dispute_reversal') OR type = 'adjustment' THEN id ELSE source END AS source,
			       min(reporting_category) AS category,
			       sum(CASE WHEN reporting_category IN ('dispute', 'dispute_reversal') OR type = 'adjustment' THEN net ELSE amount END) AS amount,
			       upper(min(currency)) AS currency
			FROM stripe_balance_transactions
			WHERE reporting_category IN ('charge', 'refund', 'dispute', 'dispute_reversal', 'refund_failure')
			  AND created >= $1 AND created < $2
			GROUP BY 1)
		SELECT CASE WHEN s.source IS NULL THEN 'missing_at_stripe' WHEN l.source IS NULL THEN 'missing_in_ledger'
		            ELSE 'amount_differs' END,
		       COALESCE(l.source, s.source), COALESCE(l.booking_id, ''), COALESCE(s.category, l.kind),
		       COALESCE(l.amount, 0), COALESCE(s.amount, 0), COALESCE(l.currency, s.currency)
		FROM ledger l FULL OUTER JOIN stripe s ON s.source = l.source
		WHERE s.source IS NULL OR l.source IS NULL OR s.amount <> l.amount
		ORDER BY 2`, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mismatch, error) {
		var m Mismatch
		err := r.Scan(&m.Kind, &m.Source, &m.BookingID, &m.Category, &m.LedgerAmount, &m.StripeAmount, &m.Currency)
		return m, err
	})
}

// BookingMoney is what one booking's money did over a period, from the
// ledger (and Stripe's fees on its charges).
type BookingMoney struct {
	BookingID string
	ClinicID  string
	Expected  money.Money
	Received  money.Money
	Refunded  money.Money
	Disputed  money.Money // net of reinstatements
	Fees      money.Money
	Net       money.Money // received − refunded − disputed
}

// BookingsMoney sums the booking accounts per booking for what moved in
// [from, to), with each booking's expected total and the fees Stripe took
// on its charges.
func (s *Store) BookingsMoney(ctx context.Context, db pgdb.Querier, from, to time.Time) ([]BookingMoney, error) {
	rows, err := db.Query(ctx, `
		WITH moved AS (
			SELECT t.booking_id, e.currency,
			       -sum(e.amount) FILTER (WHERE e.account LIKE 'booking:%:deposit_received' OR e.account LIKE 'booking:%:balance_received') AS received,
			       sum(e.amount) FILTER (WHERE e.account LIKE 'booking:%:refunded') AS refunded,
			       sum(e.amount) FILTER (WHERE e.account LIKE 'booking:%:disputed') AS disputed
			FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
			WHERE t.booking_id IS NOT NULL AND e.account LIKE 'booking:%' AND t.occurred_at >= $1 AND t.occurred_at < $2
			GROUP BY t.booking_id, e.currency),
		fees AS (
			SELECT t.booking_id, sum(b.fee) AS fee
			FROM ledger_transactions t JOIN stripe_balance_transactions b ON b.source = t.source
			WHERE t.kind = 'charge' AND t.occurred_at >= $1 AND t.occurred_at < $2
			GROUP BY t.booking_id)
		SELECT m.booking_id::text, p.clinic_id, m.currency,
		       p.deposit_due + CASE WHEN p.balance_cancelled_at IS NULL THEN p.balance_due ELSE 0 END,
		       COALESCE(m.received, 0), COALESCE(m.refunded, 0), COALESCE(m.disputed, 0), COALESCE(f.fee, 0)
		FROM moved m JOIN payment_plans p ON p.booking_id = m.booking_id LEFT JOIN fees f ON f.booking_id = m.booking_id
		ORDER BY m.booking_id`, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BookingMoney, error) {
		var b BookingMoney
		var currency money.Currency
		var expected, received, refunded, disputed, fees int64
		err := r.Scan(&b.BookingID, &b.ClinicID, &currency, &expected, &received, &refunded, &disputed, &fees)
		b.Expected, b.Received, b.Refunded = money.New(expected, currency), money.New(received, currency), money.New(refunded, currency)
		b.Disputed, b.Fees = money.New(disputed, currency), money.New(fees, currency)
		b.Net = money.New(received-refunded-disputed, currency)
		return b, err
	})
}

// DayMoney is what moved on Stripe's balance on one day (Tokyo), by kind.
type DayMoney struct {
	Day      time.Time
	Currency money.Currency
	Received int64
	Refunded int64
	Disputed int64
	Fees     int64
	PaidOut  int64
	Net      int64 // the change of Stripe's balance
}

// DaysMoney sums the ledger's movements on Stripe's balance per Tokyo day.
func (s *Store) DaysMoney(ctx context.Context, db pgdb.Querier, from, to time.Time) ([]DayMoney, error) {
	rows, err := db.Query(ctx, `
		SELECT (t.occurred_at AT TIME ZONE 'Asia/Tokyo')::date, e.currency,
		       COALESCE(sum(e.amount) FILTER (WHERE t.kind = 'charge'), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE t.kind = 'refund'), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE t.kind IN ('dispute', 'dispute_reversal')), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE t.kind = 'fee'), 0),
		       COALESCE(-sum(e.amount) FILTER (WHERE t.kind = 'payout'), 0),
		       sum(e.amount)
		FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id AND e.account = 'stripe:balance'
		WHERE t.occurred_at >= $1 AND t.occurred_at < $2
		GROUP BY 1, 2 ORDER BY 1, 2`, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayMoney, error) {
		var d DayMoney
		err := r.Scan(&d.Day, &d.Currency, &d.Received, &d.Refunded, &d.Disputed, &d.Fees, &d.PaidOut, &d.Net)
		return d, err
	})
}

// CategoryMoney is Stripe's balance transactions of one reporting category.
type CategoryMoney struct {
	Category string
	Currency string
	Count    int64
	Amount   int64
	Fee      int64
	Net      int64
}

// Categories groups Stripe's balance transactions in [from, to) by reporting category.
func (s *Store) Categories(ctx context.Context, db pgdb.Querier, from, to time.Time) ([]CategoryMoney, error) {
	rows, err := db.Query(ctx, `SELECT reporting_category, upper(currency), count(*), sum(amount), sum(fee), sum(net)
		FROM stripe_balance_transactions WHERE created >= $1 AND created < $2 GROUP BY 1, 2 ORDER BY 1, 2`, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CategoryMoney, error) {
		var c CategoryMoney
		err := r.Scan(&c.Category, &c.Currency, &c.Count, &c.Amount, &c.Fee, &c.Net)
		return c, err
	})
}
