package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/payment/internal/store"
)

// BenchmarkReconcile reconciles n balance transactions against the ledger:
// n bookings, each with a charge in the ledger and its balance transaction
// at Stripe, one in a hundred a yen off. Seeding bypasses the ledger's
// triggers (session_replication_role = replica, as a restore would); the
// measured work is the report's queries. Target: 1,000,000 under 60 s on 2
// cores, growing linearly.
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("balance_transactions=%d", n), func(b *testing.B) {
			s := startPayment(b)
			ctx := context.Background()
			from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			seed := []string{
				`SET session_replication_role = replica`,
				fmt.Sprintf(`INSERT INTO payment.payment_plans (booking_id, clinic_id, currency, deposit_due, balance_due, patient_name,
					patient_email, created_at)
					SELECT md5(i::text)::uuid, 'clinic-' || (i %% 20), 'JPY', 1900000, 1210000, 'P', 'p@example.com', $1
					FROM generate_series(1, %d) i`, n),
				fmt.Sprintf(`INSERT INTO payment.ledger_transactions (source, kind, booking_id, clinic_id, occurred_at)
					OVERRIDING SYSTEM VALUE
					SELECT 'ch_' || i, 'charge', md5(i::text)::uuid, 'clinic-' || (i %% 20), $1::timestamptz + (i || ' seconds')::interval
					FROM generate_series(1, %d) i`, n),
				`INSERT INTO payment.ledger_entries (transaction_id, line, account, amount, currency)
					SELECT t.id, 1, 'stripe:balance', 1900000, 'JPY' FROM payment.ledger_transactions t
					UNION ALL
					SELECT t.id, 2, 'booking:' || t.booking_id || ':deposit_received', -1900000, 'JPY' FROM payment.ledger_transactions t`,
				fmt.Sprintf(`INSERT INTO payment.stripe_balance_transactions (id, type, reporting_category, source, amount, fee, net, currency, created)
					SELECT 'txn_' || i, 'charge', 'charge', 'ch_' || i, CASE WHEN i %% 100 = 0 THEN 1899999 ELSE 1900000 END, 68400,
					       1900000 - 68400, 'JPY', $1::timestamptz + (i || ' seconds')::interval
					FROM generate_series(1, %d) i`, n),
				`SET session_replication_role = DEFAULT`,
				`ANALYZE payment.ledger_transactions, payment.ledger_entries, payment.stripe_balance_transactions, payment.payment_plans`,
			}
			for _, q := range seed {
				var args []any
				if strings.Contains(q, "$1") {
					args = append(args, from)
				}
				if _, err := s.db.Exec(ctx, q, args...); err != nil {
					b.Fatalf("seed: %v\n%s", err, q)
				}
			}
			pool, err := pgdb.Connect(ctx, s.dsn, "payment", noop.NewTracerProvider())
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			st := store.New()
			to := from.Add(time.Duration(n+1) * time.Second)
			b.ResetTimer()
			for range b.N {
				mm, err := st.Mismatches(ctx, pool, from, to)
				if err != nil {
					b.Fatal(err)
				}
				if len(mm) != n/100 {
					b.Fatalf("%d mismatches, want %d", len(mm), n/100)
				}
				bm, err := st.BookingsMoney(ctx, pool, from, to)
				if err != nil || len(bm) != n {
					b.Fatalf("%d bookings: %v", len(bm), err)
				}
				if _, err := st.DaysMoney(ctx, pool, from, to); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/balance_transaction")
		})
	}
}
