package service

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/payment/internal/domain"
	"github.com/saisei-health/platform/services/payment/internal/store"
)

// Errors of settlements.
var (
	ErrPeriodNotOver  = errors.New("the period is not over yet")
	ErrAlreadySettled = errors.New("the statement is already closed")
)

// Statement is a clinic's settlement statement for a month (Tokyo): for
// each booking with money not yet released, what was received, refunded
// and lost to disputes, what this statement releases, the commission and
// what the clinic is owed. A booking whose dispute is open or lost is held:
// it releases nothing until the dispute is won.
type Statement struct {
	ClinicID string
	Period   string
	From, To time.Time
	RateBP   int
	Closed   *store.Settlement
	Lines    []domain.SettlementLine
	Release  money.Money
	Owed     money.Money
	Fees     money.Money // the commission
	Held     money.Money // what held bookings would release were their disputes won
}

func (s *Payments) statementInput(clinicID, period string) (domain.Period, error) {
	var v validation.Validator
	v.Check(clinicID != "", "clinic", "is required")
	v.Text("clinic", clinicID, 100, false)
	p, err := domain.ParsePeriod(period, tokyo.Location)
	v.Check(err == nil, "period", "must be a month, YYYY-MM (Japan time)")
	return p, v.Err()
}

// Statement reads a clinic's statement: as it stands for an open period,
// as it was released for a closed one.
func (s *Payments) Statement(ctx context.Context, clinicID, period string) (Statement, error) {
	p, err := s.statementInput(clinicID, period)
	if err != nil {
		return Statement{}, err
	}
	return s.statement(ctx, s.pool, clinicID, period, p)
}

func (s *Payments) statement(ctx context.Context, db pgdb.Querier, clinicID, period string, p domain.Period) (Statement, error) {
	st := Statement{ClinicID: clinicID, Period: period, From: p.Start, To: p.End}
	closed, err := s.store.ClosedSettlement(ctx, db, clinicID, period)
	switch {
	case err == nil:
		st.Closed, st.RateBP = &closed, closed.RateBP
	case errors.Is(err, store.ErrNotFound):
		if st.RateBP, err = s.rate(ctx, db, clinicID); err != nil {
			return st, err
		}
	default:
		return st, err
	}
	funds, err := s.store.ClinicFunds(ctx, db, clinicID, p.End)
	if err != nil {
		return st, err
	}
	var released map[string][3]int64
	if st.Closed != nil {
		if released, err = s.store.SettlementLines(ctx, db, clinicID, period); err != nil {
			return st, err
		}
	}
	for _, f := range funds {
		var l domain.SettlementLine
		if r, ok := released[f.BookingID]; ok || st.Closed != nil {
			// Closed: show the booking as it stood before this release.
			f.Settled = money.New(f.Settled.Amount-r[0], f.Settled.Currency)
			l = domain.SettlementLine{BookingFunds: f, Release: money.New(r[0], f.Received.Currency),
				Commission: money.New(r[1], f.Received.Currency), Owed: money.New(r[2], f.Received.Currency)}
		} else {
			l = domain.Settle(f, st.RateBP)
		}
		if l.Unsettled().IsZero() && l.Release.IsZero() && !l.Held {
			continue
		}
		st.Lines = append(st.Lines, l)
	}
	st.sum()
	return st, nil
}

func (st *Statement) sum() {
	var release, owed, fees, held int64
	c := money.JPY
	for _, l := range st.Lines {
		c = l.Received.Currency
		release, owed, fees = release+l.Release.Amount, owed+l.Owed.Amount, fees+l.Commission.Amount
		if l.Held {
			// What a won dispute would release: the disputed money too.
			held += l.Unsettled().Amount + l.Disputed.Amount
		}
	}
	st.Release, st.Owed, st.Fees, st.Held = money.New(release, c), money.New(owed, c), money.New(fees, c), money.New(held, c)
}

func (s *Payments) rate(ctx context.Context, db pgdb.Querier, clinicID string) (int, error) {
	rate, ok, err := s.store.CommissionRate(ctx, db, clinicID)
	if err != nil || ok {
		return rate, err
	}
	return domain.DefaultCommissionBP, nil
}

// CloseSettlement closes a clinic's statement for a month that is over:
// one settlement ledger transaction per booking releases its money to the
// clinic, less the commission, dated at the period's end; held bookings
// release nothing and appear again next month. Closing twice is refused.
func (s *Payments) CloseSettlement(ctx context.Context, clinicID, period string) (Statement, error) {
	p, err := s.statementInput(clinicID, period)
	if err != nil {
		return Statement{}, err
	}
	if s.now().Before(p.End) {
		return Statement{}, fmt.Errorf("%w: %s ends %s", ErrPeriodNotOver, period, p.End.Format(time.RFC3339))
	}
	caller, _ := identity.FromContext(ctx)
	var st Statement
	err = pgdb.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		h := fnv.New64a()
		_, _ = h.Write([]byte("settlement:" + clinicID))
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
			return err
		}
		if _, err := s.store.ClosedSettlement(ctx, tx, clinicID, period); err == nil {
			return fmt.Errorf("%w: %s %s", ErrAlreadySettled, clinicID, period)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		open, err := s.statement(ctx, tx, clinicID, period, p)
		if err != nil {
			return err
		}
		at := p.End.Add(-time.Microsecond)
		for _, l := range open.Lines {
			if l.Release.IsZero() {
				continue
			}
			if _, err := s.store.PostLedger(ctx, tx, domain.Settled(clinicID, period, l, at)); err != nil {
				return err
			}
		}
		if _, err := s.store.InsertSettlement(ctx, tx, store.Settlement{ClinicID: clinicID, Period: period, RateBP: open.RateBP,
			ClosedAt: s.now().UTC(), ClosedBy: caller.Subject}); err != nil {
			return err
		}
		st, err = s.statement(ctx, tx, clinicID, period, p)
		return err
	})
	return st, err
}

// Commission is a clinic's commission rate.
func (s *Payments) Commission(ctx context.Context, clinicID string) (int, error) {
	if clinicID == "" || len(clinicID) > 100 {
		return 0, validation.FieldError{Field: "clinic_id", Message: "is not a clinic id"}
	}
	return s.rate(ctx, s.pool, clinicID)
}

// SetCommission sets a clinic's commission, 0 to 5000 basis points; it
// applies to statements closed from now on.
func (s *Payments) SetCommission(ctx context.Context, clinicID string, rateBP int) error {
	if clinicID == "" || len(clinicID) > 100 {
		return validation.FieldError{Field: "clinic_id", Message: "is not a clinic id"}
	}
	if rateBP < 0 || rateBP > 5000 {
		return validation.FieldError{Field: "rate_bp", Message: "must be 0 to 5000 basis points (0 % to 50 %)"}
	}
	caller, _ := identity.FromContext(ctx)
	return s.store.SetCommissionRate(ctx, s.pool, clinicID, rateBP, s.now().UTC(), caller.Subject)
}
