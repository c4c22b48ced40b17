package pgdb_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/pgdb"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

func TestServicesAreConfinedToTheirOwnSchema(t *testing.T) {
	ctx := context.Background()
	admin := devtest.NewDatabase(t)
	bookingDSN := devtest.ServiceDSN(t, admin, "booking")
	paymentDSN := devtest.ServiceDSN(t, admin, "payment")

	booking, err := pgdb.Connect(ctx, bookingDSN, "booking", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer booking.Close()
	migrations := fstest.MapFS{
		"001_bookings.sql": {Data: []byte("CREATE TABLE bookings (id text PRIMARY KEY);")},
		"002_more.sql":     {Data: []byte("ALTER TABLE bookings ADD COLUMN status text NOT NULL DEFAULT 'new';")},
	}
	for range 2 { // a second start finds everything applied
		if err := pgdb.Migrate(ctx, booking, "booking", pgdb.Migrations{Name: "booking", FS: migrations}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := booking.Exec(ctx, `INSERT INTO bookings (id) VALUES ('b1')`); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := booking.QueryRow(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'bookings'`).Scan(&schema); err != nil || schema != "booking" {
		t.Fatalf("bookings table in schema %q (%v), want booking", schema, err)
	}

	payment, err := pgdb.Connect(ctx, paymentDSN, "payment", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer payment.Close()
	_, err = payment.Exec(ctx, `SELECT * FROM booking.bookings`)
	if err == nil {
		t.Fatal("the payment role read the booking schema; want permission denied")
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	dsn := devtest.ServiceDSN(t, devtest.NewDatabase(t), "catalog")
	pool, err := pgdb.Connect(ctx, dsn, "catalog", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n)
	if n != 0 {
		t.Fatalf("rows = %d after rollback", n)
	}
	_, err = pool.Exec(ctx, `INSERT INTO t VALUES (1), (1)`)
	if !pgdb.IsUniqueViolation(err, "t_pkey") || pgdb.IsUniqueViolation(err, "other") {
		t.Fatalf("IsUniqueViolation misjudged %v", err)
	}
}
