// Package store keeps quotes and the catalog read model in Postgres.
package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
)

// ErrNotFound is returned for an unknown id.
var ErrNotFound = errors.New("not found")

// Store reads and writes quoting's tables.
type Store struct{}

// New returns a Store.
func New() *Store { return &Store{} }

// SaveTreatment upserts a catalog snapshot unless an equal or newer revision
// is already held: snapshots may arrive twice or out of order.
func (s *Store) SaveTreatment(ctx context.Context, db pgdb.Querier, t domain.Treatment) error {
	doses, err := json.Marshal(t.Doses)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO treatments (id, name, condition, clinic_id, clinic_name, plan_number, risk_class, plan_status,
			plan_valid_from, plan_valid_until, cell_source, autologous, routes, sessions, culture_days_min,
			culture_days_max, consultation_jpy, harvest_jpy, quality_testing_jpy, administration_per_session_jpy,
			doses, revision)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, condition = EXCLUDED.condition,
			clinic_id = EXCLUDED.clinic_id, clinic_name = EXCLUDED.clinic_name, plan_number = EXCLUDED.plan_number,
			risk_class = EXCLUDED.risk_class, plan_status = EXCLUDED.plan_status,
			plan_valid_from = EXCLUDED.plan_valid_from, plan_valid_until = EXCLUDED.plan_valid_until,
			cell_source = EXCLUDED.cell_source, autologous = EXCLUDED.autologous, routes = EXCLUDED.routes,
			sessions = EXCLUDED.sessions, culture_days_min = EXCLUDED.culture_days_min,
			culture_days_max = EXCLUDED.culture_days_max, consultation_jpy = EXCLUDED.consultation_jpy,
			harvest_jpy = EXCLUDED.harvest_jpy, quality_testing_jpy = EXCLUDED.quality_testing_jpy,
			administration_per_session_jpy = EXCLUDED.administration_per_session_jpy,
			doses = EXCLUDED.doses, revision = EXCLUDED.revision
		WHERE treatments.revision < EXCLUDED.revision`,
		t.ID, t.Name, t.Condition, t.ClinicID, t.ClinicName, t.PlanNumber, t.RiskClass, t.PlanStatus,
		t.PlanValidFrom, t.PlanValidUntil, t.CellSource, t.Autologous, t.Routes, t.Sessions, t.CultureDaysMin,
		t.CultureDaysMax, t.Consultation.Amount, t.Harvest.Amount, t.QualityTesting.Amount,
		t.AdministrationPerSession.Amount, doses, t.Revision)
	return err
}

// Treatment reads the read model.
func (s *Store) Treatment(ctx context.Context, db pgdb.Querier, id string) (domain.Treatment, error) {
	var t domain.Treatment
	var consult, harvest, qc, admin int64
	var doses []byte
	err := db.QueryRow(ctx, `
		SELECT id, name, condition, clinic_id, clinic_name, plan_number, risk_class, plan_status, plan_valid_from,
			plan_valid_until, cell_source, autologous, routes, sessions, culture_days_min, culture_days_max,
			consultation_jpy, harvest_jpy, quality_testing_jpy, administration_per_session_jpy, doses, revision
		FROM treatments WHERE id = $1`, id).Scan(
		&t.ID, &t.Name, &t.Condition, &t.ClinicID, &t.ClinicName, &t.PlanNumber, &t.RiskClass, &t.PlanStatus,
		&t.PlanValidFrom, &t.PlanValidUntil, &t.CellSource, &t.Autologous, &t.Routes, &t.Sessions,
		&t.CultureDaysMin, &t.CultureDaysMax, &consult, &harvest, &qc, &admin, &doses, &t.Revision)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, err
	}
	t.Consultation, t.Harvest, t.QualityTesting, t.AdministrationPerSession = money.Yen(consult), money.Yen(harvest), money.Yen(qc), money.Yen(admin)
	return t, json.Unmarshal(doses, &t.Doses)
}

// InsertQuote stores a new quote.
func (s *Store) InsertQuote(ctx context.Context, db pgdb.Querier, q domain.Quote) error {
	lines, err := json.Marshal(q.Lines)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO quotes (id, version, status, treatment_id, treatment_name, treatment_revision, clinic_id,
			clinic_name, dose_cells, patient_name, patient_email, patient_country, patient_language, lines,
			total_jpy, deposit_jpy, balance_jpy, fx_currency, fx_base, fx_quote, fx_price, fx_as_of,
			display_total, issued_at, valid_until)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25)`,
		q.ID, q.Version, q.Status, q.TreatmentID, q.TreatmentName, q.TreatmentRevision, q.ClinicID,
		q.ClinicName, q.DoseCells, q.Patient.Name, q.Patient.Email, q.Patient.Country, q.Patient.Language, lines,
		q.Total.Amount, q.Deposit.Amount, q.Balance.Amount, q.FX.Currency, q.FX.Base, q.FX.Quote, q.FX.Price, q.FX.AsOf,
		q.DisplayTotal.Amount, q.IssuedAt, q.ValidUntil)
	return err
}

// Quote reads a quote; forUpdate locks it for the rest of the transaction.
func (s *Store) Quote(ctx context.Context, db pgdb.Querier, id string, forUpdate bool) (domain.Quote, error) {
	sql := `
		SELECT id, version, status, treatment_id, treatment_name, treatment_revision, clinic_id, clinic_name,
			dose_cells, patient_name, patient_email, patient_country, patient_language, lines, total_jpy,
			deposit_jpy, balance_jpy, fx_currency, fx_base, fx_quote, fx_price, fx_as_of, display_total,
			issued_at, valid_until, COALESCE(booking_id::text, '')
		FROM quotes WHERE id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var q domain.Quote
	var lines []byte
	var total, deposit, balance, display int64
	err := db.QueryRow(ctx, sql, id).Scan(&q.ID, &q.Version, &q.Status, &q.TreatmentID, &q.TreatmentName,
		&q.TreatmentRevision, &q.ClinicID, &q.ClinicName, &q.DoseCells, &q.Patient.Name, &q.Patient.Email,
		&q.Patient.Country, &q.Patient.Language, &lines, &total, &deposit, &balance, &q.FX.Currency, &q.FX.Base,
		&q.FX.Quote, &q.FX.Price, &q.FX.AsOf, &display, &q.IssuedAt, &q.ValidUntil, &q.BookingID)
	if errors.Is(err, pgx.ErrNoRows) {
		return q, ErrNotFound
	}
	if err != nil {
		return q, err
	}
	q.Total, q.Deposit, q.Balance = money.Yen(total), money.Yen(deposit), money.Yen(balance)
	q.DisplayTotal = money.New(display, q.FX.Currency)
	return q, json.Unmarshal(lines, &q.Lines)
}

// SaveAcceptance records that a booking took the quote.
func (s *Store) SaveAcceptance(ctx context.Context, db pgdb.Querier, q domain.Quote) error {
	_, err := db.Exec(ctx, `UPDATE quotes SET status = $2, booking_id = $3 WHERE id = $1`, q.ID, q.Status, q.BookingID)
	return err
}
