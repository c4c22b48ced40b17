// Package store keeps bookings and their transitions in Postgres.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/booking/internal/domain"
)

// Errors callers test for.
var (
	ErrNotFound          = errors.New("booking not found")
	ErrDuplicateKey      = errors.New("idempotency key already used")
	ErrQuoteAlreadyTaken = errors.New("quote already booked")
)

// Store reads and writes bookings.
type Store struct{}

// New returns a Store.
func New() *Store { return &Store{} }

const columns = `id, idempotency_key, quote_id, treatment_id, treatment_name, clinic_id, clinic_name, dose_cells, requires_harvest,
	patient_name, patient_email, patient_country, patient_language, status, total_jpy, deposit_jpy, balance_jpy,
	deposit_payment_id, balance_payment_id, balance_failure, harvested_at, cells_ready_at, administered_at,
	qc_cell_count, qc_viability_bp, qc_sterility_passed, qc_endotoxin_passed, trace, created_at, updated_at, patient_subject,
	cancellation_terms, cancellation, deposit_due_at, balance_action_due_at, last_reminder_at, culture_attempt, deposit_method`

func scan(row pgx.Row) (domain.Booking, error) {
	var b domain.Booking
	var total, deposit, balance int64
	var cells *int64
	var viability *int32
	var sterility, endotoxin *bool
	var trace []byte
	err := row.Scan(&b.ID, &b.IdempotencyKey, &b.QuoteID, &b.TreatmentID, &b.TreatmentName, &b.ClinicID, &b.ClinicName,
		&b.DoseCells, &b.RequiresHarvest, &b.Patient.Name, &b.Patient.Email, &b.Patient.Country, &b.Patient.Language, &b.Status,
		&total, &deposit, &balance, &b.DepositPaymentID, &b.BalancePaymentID, &b.BalanceFailure,
		&b.HarvestedAt, &b.CellsReadyAt, &b.AdministeredAt, &cells, &viability, &sterility, &endotoxin,
		&trace, &b.CreatedAt, &b.UpdatedAt, &b.PatientSubject, &b.Terms, &b.Cancellation, &b.DepositDueAt, &b.BalanceActionDueAt, &b.LastReminderAt, &b.CultureAttempt, &b.DepositMethod)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, ErrNotFound
	}
	if err != nil {
		return b, err
	}
	b.Total, b.Deposit, b.Balance = money.Yen(total), money.Yen(deposit), money.Yen(balance)
	if cells != nil {
		b.QC = &domain.QualityReport{CellCount: *cells, ViabilityBP: *viability, SterilityPassed: *sterility,
			EndotoxinPassed: *endotoxin, ReportedAt: *b.CellsReadyAt}
	}
	return b, json.Unmarshal(trace, &b.Trace)
}

// Get reads a booking; forUpdate locks it until the transaction ends.
func (s *Store) Get(ctx context.Context, db pgdb.Querier, id string, forUpdate bool) (domain.Booking, error) {
	sql := `SELECT ` + columns + ` FROM bookings WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	return scan(db.QueryRow(ctx, sql, id))
}

// ByIdempotencyKey finds the booking a patient's key created.
func (s *Store) ByIdempotencyKey(ctx context.Context, db pgdb.Querier, patientSubject, key string) (domain.Booking, error) {
	return scan(db.QueryRow(ctx, `SELECT `+columns+` FROM bookings WHERE patient_subject = $1 AND idempotency_key = $2`, patientSubject, key))
}

// Insert stores a new booking.
func (s *Store) Insert(ctx context.Context, db pgdb.Querier, b domain.Booking) error {
	trace, err := json.Marshal(b.Trace)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO bookings (id, idempotency_key, quote_id, treatment_id, treatment_name, clinic_id, clinic_name,
			dose_cells, requires_harvest, patient_name, patient_email, patient_country, patient_language, status, total_jpy,
			deposit_jpy, balance_jpy, trace, created_at, updated_at, patient_subject, cancellation_terms, deposit_due_at, deposit_method)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)`,
		b.ID, b.IdempotencyKey, b.QuoteID, b.TreatmentID, b.TreatmentName, b.ClinicID, b.ClinicName,
		b.DoseCells, b.RequiresHarvest, b.Patient.Name, b.Patient.Email, b.Patient.Country, b.Patient.Language, b.Status,
		b.Total.Amount, b.Deposit.Amount, b.Balance.Amount, trace, b.CreatedAt, b.UpdatedAt, b.PatientSubject, b.Terms, b.DepositDueAt, depositMethod(b))
	switch {
	// Quoting answers a repeated idempotency key with the booking id it first
	// recorded, so a concurrent request with the same key collides on the id
	// (checked first) before it reaches the key's own constraint.
	case pgdb.IsUniqueViolation(err, "bookings_pkey"), pgdb.IsUniqueViolation(err, "bookings_caller_idempotency_key"):
		return ErrDuplicateKey
	case pgdb.IsUniqueViolation(err, "bookings_quote_id_key"):
		return ErrQuoteAlreadyTaken
	case err != nil:
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO booking_transitions (booking_id, from_status, to_status, cause, at) VALUES ($1, '', $2, 'booked', $3)`,
		b.ID, b.Status, b.CreatedAt)
	return err
}

func depositMethod(b domain.Booking) string {
	if b.DepositMethod == "" {
		return "card"
	}
	return b.DepositMethod
}

// AwaitingDepositFor locks the bookings of treatments still awaiting their deposit.
func (s *Store) AwaitingDepositFor(ctx context.Context, db pgdb.Querier, treatmentIDs []string) ([]domain.Booking, error) {
	rows, err := db.Query(ctx, `SELECT `+columns+` FROM bookings WHERE status = 'awaiting_deposit' AND treatment_id = ANY($1)
		ORDER BY created_at FOR UPDATE`, treatmentIDs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Booking, error) { return scan(r) })
}

// DueForExpiry locks up to limit bookings whose deposit is overdue at now,
// skipping any another replica holds.
func (s *Store) DueForExpiry(ctx context.Context, db pgdb.Querier, now time.Time, limit int) ([]domain.Booking, error) {
	rows, err := db.Query(ctx, `SELECT `+columns+` FROM bookings WHERE status = 'awaiting_deposit' AND deposit_due_at <= $1
		ORDER BY deposit_due_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Booking, error) { return scan(r) })
}

// AwaitingPatient locks up to limit bookings whose balance waits for the
// patient and whose deadline passed at now or whose last reminder is older
// than remindAfter, skipping any another replica holds.
func (s *Store) AwaitingPatient(ctx context.Context, db pgdb.Querier, now, remindBefore time.Time, limit int) ([]domain.Booking, error) {
	rows, err := db.Query(ctx, `SELECT `+columns+` FROM bookings WHERE status = 'balance_action_required'
		AND (balance_action_due_at <= $1 OR last_reminder_at <= $2) ORDER BY balance_action_due_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
		now, remindBefore, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Booking, error) { return scan(r) })
}

// NextDepositDeadline is the earliest deadline of a booking awaiting its
// deposit; false when there is none.
func (s *Store) NextDepositDeadline(ctx context.Context, db pgdb.Querier) (time.Time, bool, error) {
	var at *time.Time
	err := db.QueryRow(ctx, `SELECT min(deposit_due_at) FROM bookings WHERE status = 'awaiting_deposit'`).Scan(&at)
	if err != nil || at == nil {
		return time.Time{}, false, err
	}
	return *at, true, nil
}

// Update writes the mutable state of b and records the transition, if any.
func (s *Store) Update(ctx context.Context, db pgdb.Querier, b domain.Booking, t *domain.Transition) error {
	var cells *int64
	var viability *int32
	var sterility, endotoxin *bool
	if b.QC != nil {
		cells, viability, sterility, endotoxin = &b.QC.CellCount, &b.QC.ViabilityBP, &b.QC.SterilityPassed, &b.QC.EndotoxinPassed
	}
	_, err := db.Exec(ctx, `
		UPDATE bookings SET status = $2, deposit_payment_id = $3, balance_payment_id = $4, balance_failure = $5,
			harvested_at = $6, cells_ready_at = $7, administered_at = $8, qc_cell_count = $9, qc_viability_bp = $10,
			qc_sterility_passed = $11, qc_endotoxin_passed = $12, updated_at = $13, cancellation = $14,
			balance_action_due_at = $15, last_reminder_at = $16, culture_attempt = $17
		WHERE id = $1`,
		b.ID, b.Status, b.DepositPaymentID, b.BalancePaymentID, b.BalanceFailure, b.HarvestedAt, b.CellsReadyAt,
		b.AdministeredAt, cells, viability, sterility, endotoxin, b.UpdatedAt, b.Cancellation, b.BalanceActionDueAt, b.LastReminderAt, max(b.CultureAttempt, 1))
	if err != nil || t == nil {
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO booking_transitions (booking_id, from_status, to_status, cause, at) VALUES ($1, $2, $3, $4, $5)`,
		b.ID, t.From, t.To, t.Cause, t.At)
	return err
}

// Transitions lists a booking's history, oldest first.
func (s *Store) Transitions(ctx context.Context, db pgdb.Querier, id string) ([]domain.Transition, error) {
	rows, err := db.Query(ctx, `SELECT from_status, to_status, cause, at FROM booking_transitions WHERE booking_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Transition, error) {
		var t domain.Transition
		err := r.Scan(&t.From, &t.To, &t.Cause, &t.At)
		return t, err
	})
}

// ClinicFilter selects a clinic's bookings.
type ClinicFilter struct {
	ClinicID string
	Status   domain.Status // empty: any
	// From and To bound the creation time, To excluded (zero: unbounded).
	From, To time.Time
	// AfterCreated and AfterID are the last booking of the previous page.
	AfterCreated time.Time
	AfterID      string
	Limit        int
}

// ByClinic lists a clinic's bookings, oldest first, a page at a time.
func (s *Store) ByClinic(ctx context.Context, db pgdb.Querier, f ClinicFilter) ([]domain.Booking, error) {
	to := f.To
	if to.IsZero() {
		to = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := db.Query(ctx, `SELECT `+columns+` FROM bookings
		WHERE clinic_id = $1 AND ($2 = '' OR status = $2) AND created_at >= $3 AND created_at < $4
			AND (created_at, id) > ($5, $6::uuid)
		ORDER BY created_at, id LIMIT $7`,
		f.ClinicID, f.Status, f.From, to, f.AfterCreated, orNil(f.AfterID), f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Booking, error) { return scan(r) })
}

// orNil is the smallest uuid when there is no cursor yet.
func orNil(id string) string {
	if id == "" {
		return "00000000-0000-0000-0000-000000000000"
	}
	return id
}
