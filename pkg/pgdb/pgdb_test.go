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

// What already happened outside the database is recorded through a lost
// connection: the write is retried in a fresh transaction while the
// database is unreachable, and given up at once when it answers no.
func TestInTxUntilCommittedRetriesThroughALostConnectionOnly(t *testing.T) {
	ctx := context.Background()
	admin := devtest.NewDatabase(t)
	pool, err := pgdb.Connect(ctx, devtest.ServiceDSN(t, admin, "catalog"), "catalog", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	superuser, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer superuser.Close(ctx)
	if _, err := pool.Exec(ctx, `CREATE TABLE sent (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	err = pgdb.InTxUntilCommitted(ctx, pool, func(tx pgx.Tx) error {
		attempts++
		if _, err := tx.Exec(ctx, `INSERT INTO sent VALUES ('email-1')`); err != nil {
			return err
		}
		if attempts == 1 { // the connection dies before the commit
			var pid int
			_ = tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
			if _, err := superuser.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM sent`).Scan(&n)
	if err != nil || attempts != 2 || n != 1 {
		t.Fatalf("err %v after %d attempts, %d rows", err, attempts, n)
	}

	attempts = 0
	err = pgdb.InTxUntilCommitted(ctx, pool, func(tx pgx.Tx) error {
		attempts++
		_, err := tx.Exec(ctx, `INSERT INTO sent VALUES ('email-1')`) // the database says no
		return err
	})
	if !pgdb.IsUniqueViolation(err, "") || attempts != 1 {
		t.Fatalf("a refusal was retried: %v after %d attempts", err, attempts)
	}
}
