// Package store keeps quotes and the catalog read model in Postgres.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/sealed"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
)

// ErrNotFound is returned for an unknown id.
var ErrNotFound = errors.New("not found")

// Store reads and writes quoting's tables.
type Store struct {
	// box seals the screening and eligibility of every quote.
	box *sealed.Box
}

// New returns a Store sealing health information with box.
func New(box *sealed.Box) *Store { return &Store{box: box} }

// sealJSON marshals v and seals it for the quote's field.
func (s *Store) sealJSON(v any, quoteID, field string) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.box.Seal(plain, "quote:"+quoteID+":"+field)
}

// openJSON opens a sealed field into v.
func (s *Store) openJSON(sealedValue []byte, quoteID, field string, v any) error {
	plain, err := s.box.Open(sealedValue, "quote:"+quoteID+":"+field)
	if err != nil {
		return fmt.Errorf("quote %s %s: %w", quoteID, field, err)
	}
	return json.Unmarshal(plain, v)
}

type rulesJSON struct {
	RequiresConfirmedDiagnosis bool                 `json:"requires_confirmed_diagnosis"`
	MinCancerFreeYears         int                  `json:"min_cancer_free_years"`
	OrganDisease               string               `json:"organ_disease"`
	ExcludesSeveredCord        bool                 `json:"excludes_severed_cord"`
	InjuryWindow               *domain.InjuryWindow `json:"injury_window"`
}

// SaveTreatment upserts a catalog snapshot unless an equal or newer revision
// is already held: snapshots may arrive twice or out of order. It reports
// whether the row changed.
func (s *Store) SaveTreatment(ctx context.Context, db pgdb.Querier, t domain.Treatment) (bool, error) {
	rules := rulesJSON(t.Eligibility)
	// Trials have no doses and university hospitals no extras: store empty
	// lists, not JSON null.
	if t.Doses == nil {
		t.Doses = []domain.Dose{}
	}
	if t.Extras == nil {
		t.Extras = []domain.Extra{}
	}
	if t.Names == nil {
		t.Names = map[string]string{}
	}
	if t.DepositPolicy.Covers == nil {
		t.DepositPolicy.Covers = []string{}
	}
	tag, err := db.Exec(ctx, `
		INSERT INTO treatments (id, name, names, conditions, clinic_id, clinic_name, plan_number, risk_class, plan_status,
			plan_valid_from, plan_valid_until, trial, cell_type, cell_source, autologous, routes, sessions,
			culture_days_min, culture_days_max, visits, consultation_jpy, harvest_jpy, quality_testing_jpy,
			administration_per_session_jpy, doses, eligibility, deposit_policy, extras, revision, cancellation_policy)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, names = EXCLUDED.names, conditions = EXCLUDED.conditions,
			clinic_id = EXCLUDED.clinic_id, clinic_name = EXCLUDED.clinic_name, plan_number = EXCLUDED.plan_number,
			risk_class = EXCLUDED.risk_class, plan_status = EXCLUDED.plan_status,
			plan_valid_from = EXCLUDED.plan_valid_from, plan_valid_until = EXCLUDED.plan_valid_until,
			trial = EXCLUDED.trial, cell_type = EXCLUDED.cell_type, cell_source = EXCLUDED.cell_source,
			autologous = EXCLUDED.autologous, routes = EXCLUDED.routes, sessions = EXCLUDED.sessions,
			culture_days_min = EXCLUDED.culture_days_min, culture_days_max = EXCLUDED.culture_days_max,
			visits = EXCLUDED.visits, consultation_jpy = EXCLUDED.consultation_jpy, harvest_jpy = EXCLUDED.harvest_jpy,
			quality_testing_jpy = EXCLUDED.quality_testing_jpy,
			administration_per_session_jpy = EXCLUDED.administration_per_session_jpy, doses = EXCLUDED.doses,
			eligibility = EXCLUDED.eligibility, deposit_policy = EXCLUDED.deposit_policy, extras = EXCLUDED.extras,
			revision = EXCLUDED.revision, cancellation_policy = EXCLUDED.cancellation_policy
		WHERE treatments.revision < EXCLUDED.revision`,
		t.ID, t.Name, t.Names, t.Conditions, t.ClinicID, t.ClinicName, t.PlanNumber, t.RiskClass, t.PlanStatus,
		t.PlanValidFrom, t.PlanValidUntil, t.Trial, t.CellType, t.CellSource, t.Autologous, t.Routes, t.Sessions,
		t.CultureDaysMin, t.CultureDaysMax, t.Visits, t.Consultation.Amount, t.Harvest.Amount, t.QualityTesting.Amount,
		t.AdministrationPerSession.Amount, t.Doses, rules, t.DepositPolicy, t.Extras, t.Revision, t.CancellationPolicy)
	return tag.RowsAffected() == 1, err
}

// Treatment reads the read model.
func (s *Store) Treatment(ctx context.Context, db pgdb.Querier, id string) (domain.Treatment, error) {
	var t domain.Treatment
	var consult, harvest, qc, admin int64
	var rules rulesJSON
	err := db.QueryRow(ctx, `
		SELECT id, name, names, conditions, clinic_id, clinic_name, plan_number, risk_class, plan_status, plan_valid_from,
			plan_valid_until, trial, cell_type, cell_source, autologous, routes, sessions, culture_days_min,
			culture_days_max, visits, consultation_jpy, harvest_jpy, quality_testing_jpy, administration_per_session_jpy,
			doses, eligibility, deposit_policy, extras, revision, cancellation_policy
		FROM treatments WHERE id = $1`, id).Scan(
		&t.ID, &t.Name, &t.Names, &t.Conditions, &t.ClinicID, &t.ClinicName, &t.PlanNumber, &t.RiskClass, &t.PlanStatus,
		&t.PlanValidFrom, &t.PlanValidUntil, &t.Trial, &t.CellType, &t.CellSource, &t.Autologous, &t.Routes, &t.Sessions,
		&t.CultureDaysMin, &t.CultureDaysMax, &t.Visits, &consult, &harvest, &qc, &admin,
		&t.Doses, &rules, &t.DepositPolicy, &t.Extras, &t.Revision, &t.CancellationPolicy)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	t.Consultation, t.Harvest, t.QualityTesting, t.AdministrationPerSession = money.Yen(consult), money.Yen(harvest), money.Yen(qc), money.Yen(admin)
	t.Eligibility = domain.Rules(rules)
	return t, err
}

// ScreeningJSON is the stored (and wire) form of a questionnaire.
type ScreeningJSON struct {
	DiagnosisConfirmed *bool   `json:"diagnosis_confirmed"`
	CancerFreeYears    *int    `json:"cancer_free_years"`
	SevereOrganDisease *bool   `json:"severe_organ_disease"`
	InjuryDate         *string `json:"injury_date"`
	CordSevered        *bool   `json:"cord_severed"`
	CanTravel          *bool   `json:"can_travel"`
}

// FromScreening converts a questionnaire to its JSON form.
func FromScreening(s *domain.Screening) *ScreeningJSON {
	if s == nil {
		return nil
	}
	out := &ScreeningJSON{DiagnosisConfirmed: s.DiagnosisConfirmed, CancerFreeYears: s.CancerFreeYears,
		SevereOrganDisease: s.SevereOrganDisease, CordSevered: s.CordSevered, CanTravel: s.CanTravel}
	if s.InjuryDate != nil {
		d := s.InjuryDate.Format(time.DateOnly)
		out.InjuryDate = &d
	}
	return out
}

// ToScreening converts the JSON form; a malformed date is a field error.
func (j *ScreeningJSON) ToScreening() (*domain.Screening, error) {
	if j == nil {
		return nil, nil
	}
	s := &domain.Screening{DiagnosisConfirmed: j.DiagnosisConfirmed, CancerFreeYears: j.CancerFreeYears,
		SevereOrganDisease: j.SevereOrganDisease, CordSevered: j.CordSevered, CanTravel: j.CanTravel}
	if j.InjuryDate != nil {
		d, err := time.Parse(time.DateOnly, *j.InjuryDate)
		if err != nil {
			return nil, validation.FieldError{Field: "screening.injury_date", Message: "must be a date YYYY-MM-DD"}
		}
		s.InjuryDate = &d
	}
	return s, nil
}

type extraJSON struct {
	Code     string `json:"code"`
	Quantity int    `json:"quantity"`
}

// InsertQuote stores a new quote.
func (s *Store) InsertQuote(ctx context.Context, db pgdb.Querier, q domain.Quote) error {
	extras := make([]extraJSON, 0, len(q.Extras))
	for _, x := range q.Extras {
		extras = append(extras, extraJSON{x.Code, x.Quantity})
	}
	var supersedes *string
	if q.Supersedes != "" {
		supersedes = &q.Supersedes
	}
	screening, err := s.sealJSON(FromScreening(q.Screening), q.ID, "screening")
	if err != nil {
		return err
	}
	eligibility, err := s.sealJSON(q.Eligibility, q.ID, "eligibility")
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `
		INSERT INTO quotes (id, version, status, supersedes, treatment_id, treatment_name, treatment_revision, clinic_id,
			clinic_name, dose_cells, visits, requires_harvest, patient_name, patient_email, patient_country,
			patient_language, extras, screening_sealed, eligibility_sealed, lines, subtotal_jpy, tax_jpy, total_jpy, deposit_jpy,
			balance_jpy, fx_currency, fx_base, fx_quote, fx_price, fx_as_of, display_total, issued_at, valid_until, note, patient_subject,
			cancellation_terms)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$31,$32,$33,$34,$35,$36)`,
		q.ID, q.Version, q.Status, supersedes, q.TreatmentID, q.TreatmentName, q.TreatmentRevision, q.ClinicID,
		q.ClinicName, q.DoseCells, q.Visits, q.RequiresHarvest, q.Patient.Name, q.Patient.Email, q.Patient.Country,
		q.Patient.Language, extras, screening, eligibility, q.Lines, q.Subtotal.Amount, q.Tax.Amount,
		q.Total.Amount, q.Deposit.Amount, q.Balance.Amount, q.FX.Currency, q.FX.Base, q.FX.Quote, q.FX.Price, q.FX.AsOf,
		q.DisplayTotal.Amount, q.IssuedAt, q.ValidUntil, q.Note, q.PatientSubject, q.Cancellation)
	return err
}

const quoteColumns = `id, version, status, COALESCE(supersedes::text, ''), COALESCE(superseded_by::text, ''), treatment_id,
	treatment_name, treatment_revision, clinic_id, clinic_name, dose_cells, visits, requires_harvest, patient_name,
	patient_email, patient_country, patient_language, extras, screening_sealed, eligibility_sealed, lines, subtotal_jpy, tax_jpy,
	total_jpy, deposit_jpy, balance_jpy, fx_currency, fx_base, fx_quote, fx_price, fx_as_of, display_total, issued_at,
	valid_until, COALESCE(booking_id::text, ''), acceptance_key, note, patient_subject, cancellation_terms`

func (s *Store) scanQuote(row pgx.Row) (domain.Quote, error) {
	var q domain.Quote
	var extras []extraJSON
	var screening *ScreeningJSON
	var sealedScreening, sealedEligibility []byte
	var subtotal, tax, total, deposit, balance, display int64
	err := row.Scan(&q.ID, &q.Version, &q.Status, &q.Supersedes, &q.SupersededBy, &q.TreatmentID, &q.TreatmentName,
		&q.TreatmentRevision, &q.ClinicID, &q.ClinicName, &q.DoseCells, &q.Visits, &q.RequiresHarvest, &q.Patient.Name,
		&q.Patient.Email, &q.Patient.Country, &q.Patient.Language, &extras, &sealedScreening, &sealedEligibility, &q.Lines,
		&subtotal, &tax, &total, &deposit, &balance, &q.FX.Currency, &q.FX.Base, &q.FX.Quote, &q.FX.Price, &q.FX.AsOf,
		&display, &q.IssuedAt, &q.ValidUntil, &q.BookingID, &q.AcceptanceKey, &q.Note, &q.PatientSubject, &q.Cancellation)
	if errors.Is(err, pgx.ErrNoRows) {
		return q, ErrNotFound
	}
	if err != nil {
		return q, err
	}
	for _, x := range extras {
		q.Extras = append(q.Extras, domain.ExtraRequest{Code: x.Code, Quantity: x.Quantity})
	}
	if err := s.openJSON(sealedScreening, q.ID, "screening", &screening); err != nil {
		return q, err
	}
	if err := s.openJSON(sealedEligibility, q.ID, "eligibility", &q.Eligibility); err != nil {
		return q, err
	}
	if q.Screening, err = screening.ToScreening(); err != nil {
		return q, err
	}
	q.Subtotal, q.Tax, q.Total, q.Deposit, q.Balance = money.Yen(subtotal), money.Yen(tax), money.Yen(total), money.Yen(deposit), money.Yen(balance)
	q.DisplayTotal = money.New(display, q.FX.Currency)
	return q, nil
}

// Quote reads a quote; forUpdate locks it for the rest of the transaction.
func (s *Store) Quote(ctx context.Context, db pgdb.Querier, id string, forUpdate bool) (domain.Quote, error) {
	sql := `SELECT ` + quoteColumns + ` FROM quotes WHERE id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	return s.scanQuote(db.QueryRow(ctx, sql, id))
}

// OpenQuotesOf locks the quotes of a treatment that could still be booked.
func (s *Store) OpenQuotesOf(ctx context.Context, db pgdb.Querier, treatmentID string) ([]domain.Quote, error) {
	rows, err := db.Query(ctx, `SELECT `+quoteColumns+` FROM quotes WHERE treatment_id = $1 AND status IN ('issued', 'ineligible') FOR UPDATE`, treatmentID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Quote, error) { return s.scanQuote(r) })
}

// SaveStatus records a quote's lifecycle change.
func (s *Store) SaveStatus(ctx context.Context, db pgdb.Querier, q domain.Quote) error {
	var booking, superseded *string
	if q.BookingID != "" {
		booking = &q.BookingID
	}
	if q.SupersededBy != "" {
		superseded = &q.SupersededBy
	}
	_, err := db.Exec(ctx, `UPDATE quotes SET status = $2, booking_id = $3, superseded_by = $4, acceptance_key = $5 WHERE id = $1`,
		q.ID, q.Status, booking, superseded, q.AcceptanceKey)
	return err
}

// SealClearText seals the screening and eligibility of quotes stored before
// they were sealed, and empties their clear-text columns. Quoting runs it at
// start; a row is sealed once, whichever replica gets to it.
func (s *Store) SealClearText(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	sealedRows := 0
	for {
		n := 0
		err := pgdb.InTx(ctx, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id, screening, COALESCE(eligibility, '{}') FROM quotes
				WHERE screening_sealed IS NULL LIMIT 100 FOR UPDATE SKIP LOCKED`)
			if err != nil {
				return err
			}
			type clear struct {
				id          string
				screening   *ScreeningJSON
				eligibility domain.Eligibility
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (clear, error) {
				var c clear
				return c, r.Scan(&c.id, &c.screening, &c.eligibility)
			})
			if err != nil {
				return err
			}
			for _, c := range batch {
				screening, err := s.sealJSON(c.screening, c.id, "screening")
				if err != nil {
					return err
				}
				eligibility, err := s.sealJSON(c.eligibility, c.id, "eligibility")
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE quotes SET screening_sealed = $2, eligibility_sealed = $3,
					screening = NULL, eligibility = NULL WHERE id = $1`, c.id, screening, eligibility); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil || n == 0 {
			return sealedRows, err
		}
		sealedRows += n
	}
}

// AuditEntry is one read of health information.
type AuditEntry struct {
	Seq      int64
	At       time.Time
	Subject  string
	Role     string
	ClinicID string
	Action   string
	Record   string
}

// Audit records a read in db: written in the request that reads, so a read
// whose record cannot be written does not happen.
func (s *Store) Audit(ctx context.Context, db pgdb.Querier, e AuditEntry) error {
	_, err := db.Exec(ctx, `INSERT INTO audit_log (subject, role, clinic_id, action, record) VALUES ($1, $2, $3, $4, $5)`,
		e.Subject, e.Role, e.ClinicID, e.Action, e.Record)
	return err
}

// AuditFilter narrows the audit log; empty fields match everything.
type AuditFilter struct {
	Record  string
	Subject string
	Since   time.Time
	// After is the last seq of the previous page.
	After int64
	Limit int
}

// AuditLog reads the audit log, oldest first.
func (s *Store) AuditLog(ctx context.Context, db pgdb.Querier, f AuditFilter) ([]AuditEntry, error) {
	rows, err := db.Query(ctx, `
		SELECT seq, at, subject, role, clinic_id, action, record FROM audit_log
		WHERE ($1 = '' OR record = $1) AND ($2 = '' OR subject = $2) AND at >= $3 AND seq > $4
		ORDER BY seq LIMIT $5`, f.Record, f.Subject, f.Since, f.After, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		return e, r.Scan(&e.Seq, &e.At, &e.Subject, &e.Role, &e.ClinicID, &e.Action, &e.Record)
	})
}
