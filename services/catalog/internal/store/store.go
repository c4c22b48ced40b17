// Package store keeps the catalog in Postgres. It owns all catalog SQL.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/services/catalog/internal/document"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

// ErrNotFound is returned for an unknown id.
var ErrNotFound = errors.New("not found")

// Store reads and writes the catalog.
type Store struct{ pool *pgxpool.Pool }

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the pool for transactions spanning the store and the outbox.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

const listingSelect = `
SELECT t.id, t.clinic_id, t.plan_number, t.names, t.descriptions, t.conditions, t.cell_type, t.cell_source,
       t.autologous, t.routes, t.sessions, t.culture_days_min, t.culture_days_max, t.visits, t.typical_stay_days,
       t.follow_up_months, t.included, t.consultation_jpy, t.harvest_jpy, t.quality_testing_jpy,
       t.administration_per_session_jpy, t.eligibility, t.trial, t.revision,
       COALESCE((SELECT array_agg(d.cells ORDER BY d.cells) FROM dose_options d WHERE d.treatment_id = t.id), '{}'),
       COALESCE((SELECT array_agg(d.culture_jpy ORDER BY d.cells) FROM dose_options d WHERE d.treatment_id = t.id), '{}'),
       c.id, c.names, c.kind, c.city, c.mhlw_registration, c.languages, c.deposit_policy, c.extras, c.cancellation_policy,
       p.number, p.clinic_id, p.risk_class, p.therapy, p.committee, p.cpc_name, p.cpc_in_house,
       p.valid_from, p.valid_until, p.status
FROM treatments t
JOIN clinics c ON c.id = t.clinic_id
JOIN plans p ON p.number = t.plan_number`

func scanListing(row pgx.Row) (domain.Listing, error) {
	var l domain.Listing
	t, c, p := &l.Treatment, &l.Clinic, &l.Plan
	var consult, harvest, qc, admin int64
	var cells, culture []int64
	var elig document.Eligibility
	var trial *document.Trial
	var policy document.DepositPolicy
	var cancellation document.CancellationPolicy
	var extras []document.Extra
	err := row.Scan(&t.ID, &t.ClinicID, &t.PlanNumber, &t.Names, &t.Descriptions, &t.Conditions, &t.CellType, &t.CellSource,
		&t.Autologous, &t.Routes, &t.Sessions, &t.CultureDaysMin, &t.CultureDaysMax, &t.Visits, &t.TypicalStayDays,
		&t.FollowUpMonths, &t.Included, &consult, &harvest, &qc, &admin, &elig, &trial, &t.Revision, &cells, &culture,
		&c.ID, &c.Names, &c.Kind, &c.City, &c.MHLWRegistration, &c.Languages, &policy, &extras, &cancellation,
		&p.Number, &p.ClinicID, &p.RiskClass, &p.Therapy, &p.Committee, &p.CPCName, &p.CPCInHouse,
		&p.ValidFrom, &p.ValidUntil, &p.Status)
	if err != nil {
		return l, err
	}
	t.Prices = domain.PriceList{Consultation: money.Yen(consult), Harvest: money.Yen(harvest),
		QualityTesting: money.Yen(qc), AdministrationPerSession: money.Yen(admin)}
	for i := range cells {
		t.DoseOptions = append(t.DoseOptions, domain.DoseOption{Cells: cells[i], Culture: money.Yen(culture[i])})
	}
	// The JSON columns hold document shapes; reuse their conversions.
	rules := document.Treatment{Eligibility: elig, Trial: trial}.ToDomain()
	t.Eligibility, t.Trial = rules.Eligibility, rules.Trial
	clinic := document.Clinic{DepositPolicy: policy, Extras: extras, CancellationPolicy: &cancellation}.ToDomain()
	c.DepositPolicy, c.Extras, c.CancellationPolicy = clinic.DepositPolicy, clinic.Extras, clinic.CancellationPolicy
	return l, nil
}

// Revisions returns every treatment's revision, by id: what the search
// index compares with what it holds.
func (s *Store) Revisions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, revision FROM treatments`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	revs := map[string]int64{}
	var id string
	var rev int64
	_, err = pgx.ForEachRow(rows, []any{&id, &rev}, func() error {
		revs[id] = rev
		return nil
	})
	return revs, err
}

// ListingsOf returns the treatments ids names with their clinics and plans,
// ordered by id.
func (s *Store) ListingsOf(ctx context.Context, ids []string) ([]domain.Listing, error) {
	rows, err := s.pool.Query(ctx, listingSelect+" WHERE t.id = ANY($1) ORDER BY t.id", ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Listing, error) { return scanListing(r) })
}

// Listing returns one treatment with its clinic and plan.
func (s *Store) Listing(ctx context.Context, db pgdb.Querier, id string) (domain.Listing, error) {
	l, err := scanListing(db.QueryRow(ctx, listingSelect+" WHERE t.id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return l, ErrNotFound
	}
	return l, err
}

// Clinic reads one clinic.
func (s *Store) Clinic(ctx context.Context, db pgdb.Querier, id string) (domain.Clinic, error) {
	var c domain.Clinic
	var policy document.DepositPolicy
	var cancellation document.CancellationPolicy
	var extras []document.Extra
	err := db.QueryRow(ctx, `SELECT id, names, kind, city, mhlw_registration, languages, deposit_policy, extras, cancellation_policy
		FROM clinics WHERE id = $1`, id).
		Scan(&c.ID, &c.Names, &c.Kind, &c.City, &c.MHLWRegistration, &c.Languages, &policy, &extras, &cancellation)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	d := document.Clinic{DepositPolicy: policy, Extras: extras, CancellationPolicy: &cancellation}.ToDomain()
	c.DepositPolicy, c.Extras, c.CancellationPolicy = d.DepositPolicy, d.Extras, d.CancellationPolicy
	return c, err
}

// Plan reads one plan.
func (s *Store) Plan(ctx context.Context, db pgdb.Querier, number string) (domain.Plan, error) {
	var p domain.Plan
	err := db.QueryRow(ctx, `SELECT number, clinic_id, risk_class, therapy, committee, cpc_name, cpc_in_house, valid_from, valid_until, status
		FROM plans WHERE number = $1`, number).
		Scan(&p.Number, &p.ClinicID, &p.RiskClass, &p.Therapy, &p.Committee, &p.CPCName, &p.CPCInHouse, &p.ValidFrom, &p.ValidUntil, &p.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}

// TreatmentsOfPlan lists the ids of the treatments offered under a plan.
func (s *Store) TreatmentsOfPlan(ctx context.Context, db pgdb.Querier, number string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT id FROM treatments WHERE plan_number = $1 ORDER BY id`, number)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Fingerprint changes whenever anything in the catalog changes; replicas
// compare it to decide whether to rebuild their index.
func (s *Store) Fingerprint(ctx context.Context) (string, error) {
	var fp string
	err := s.pool.QueryRow(ctx, `SELECT concat_ws('/',
		(SELECT count(*) || ':' || COALESCE(max(updated_at)::text, '') FROM clinics),
		(SELECT count(*) || ':' || COALESCE(max(updated_at)::text, '') FROM plans),
		(SELECT count(*) || ':' || COALESCE(sum(revision), 0)::text FROM treatments))`).Scan(&fp)
	return fp, err
}

func hashOf(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SaveClinic inserts or updates c. When its content changed, the revision
// of its treatments grows so their snapshots are published again.
func (s *Store) SaveClinic(ctx context.Context, tx pgx.Tx, c domain.Clinic) (changed bool, err error) {
	// The cancellation policy's version is the catalog's: the stored one
	// when the fee is unchanged, the next one when it changed, 1 for a new
	// clinic. Whatever version a document claims is ignored.
	c.CancellationPolicy.Version = 1
	var current document.CancellationPolicy
	err = tx.QueryRow(ctx, `SELECT cancellation_policy FROM clinics WHERE id = $1 FOR UPDATE`, c.ID).Scan(&current)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return false, err
	case current.CancellationFee == c.CancellationPolicy.CancellationFee:
		c.CancellationPolicy.Version = current.Version
	default:
		c.CancellationPolicy.Version = current.Version + 1
	}
	d := document.FromClinic(c)
	tag, err := tx.Exec(ctx, `
		INSERT INTO clinics (id, names, kind, city, mhlw_registration, languages, deposit_policy, extras, cancellation_policy, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET names = EXCLUDED.names, kind = EXCLUDED.kind, city = EXCLUDED.city,
			mhlw_registration = EXCLUDED.mhlw_registration, languages = EXCLUDED.languages,
			deposit_policy = EXCLUDED.deposit_policy, extras = EXCLUDED.extras,
			cancellation_policy = EXCLUDED.cancellation_policy,
			content_hash = EXCLUDED.content_hash, updated_at = now()
		WHERE clinics.content_hash <> EXCLUDED.content_hash`,
		d.ID, d.Names, d.Kind, d.City, d.MHLWRegistration, d.Languages, d.DepositPolicy, d.Extras, d.CancellationPolicy, hashOf(d))
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE treatments SET revision = revision + 1, updated_at = now() WHERE clinic_id = $1`, c.ID)
	return true, err
}

// SavePlan inserts or updates p, re-announcing its treatments on change.
func (s *Store) SavePlan(ctx context.Context, tx pgx.Tx, p domain.Plan) (changed bool, err error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO plans (number, clinic_id, risk_class, therapy, committee, cpc_name, cpc_in_house,
			valid_from, valid_until, status, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (number) DO UPDATE SET clinic_id = EXCLUDED.clinic_id, risk_class = EXCLUDED.risk_class,
			therapy = EXCLUDED.therapy, committee = EXCLUDED.committee, cpc_name = EXCLUDED.cpc_name,
			cpc_in_house = EXCLUDED.cpc_in_house, valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until,
			status = EXCLUDED.status, content_hash = EXCLUDED.content_hash, updated_at = now()
		WHERE plans.content_hash <> EXCLUDED.content_hash`,
		p.Number, p.ClinicID, p.RiskClass, p.Therapy, p.Committee, p.CPCName, p.CPCInHouse,
		p.ValidFrom, p.ValidUntil, p.Status, hashOf(document.FromPlan(p)))
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE treatments SET revision = revision + 1, updated_at = now() WHERE plan_number = $1`, p.Number)
	return true, err
}

// SaveTreatment inserts or updates t and its dose options; a change grows
// its revision.
func (s *Store) SaveTreatment(ctx context.Context, tx pgx.Tx, t domain.Treatment) (changed bool, err error) {
	d := document.FromTreatment(t)
	tag, err := tx.Exec(ctx, `
		INSERT INTO treatments (id, clinic_id, plan_number, names, descriptions, conditions, cell_type, cell_source,
			autologous, routes, sessions, culture_days_min, culture_days_max, visits, typical_stay_days,
			follow_up_months, included, consultation_jpy, harvest_jpy, quality_testing_jpy,
			administration_per_session_jpy, eligibility, trial, content_hash)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)
		ON CONFLICT (id) DO UPDATE SET clinic_id = EXCLUDED.clinic_id, plan_number = EXCLUDED.plan_number,
			names = EXCLUDED.names, descriptions = EXCLUDED.descriptions, conditions = EXCLUDED.conditions,
			cell_type = EXCLUDED.cell_type, cell_source = EXCLUDED.cell_source, autologous = EXCLUDED.autologous,
			routes = EXCLUDED.routes, sessions = EXCLUDED.sessions, culture_days_min = EXCLUDED.culture_days_min,
			culture_days_max = EXCLUDED.culture_days_max, visits = EXCLUDED.visits,
			typical_stay_days = EXCLUDED.typical_stay_days, follow_up_months = EXCLUDED.follow_up_months,
			included = EXCLUDED.included, consultation_jpy = EXCLUDED.consultation_jpy,
			harvest_jpy = EXCLUDED.harvest_jpy, quality_testing_jpy = EXCLUDED.quality_testing_jpy,
			administration_per_session_jpy = EXCLUDED.administration_per_session_jpy,
			eligibility = EXCLUDED.eligibility, trial = EXCLUDED.trial,
			content_hash = EXCLUDED.content_hash, revision = treatments.revision + 1, updated_at = now()
		WHERE treatments.content_hash <> EXCLUDED.content_hash`,
		d.ID, d.ClinicID, d.PlanNumber, d.Names, d.Descriptions, d.Conditions, d.CellType, d.CellSource,
		d.Autologous, d.Routes, d.Sessions, d.CultureDays.Min, d.CultureDays.Max, d.Visits, d.TypicalStayDays,
		d.FollowUpMonths, d.Included, d.Prices.Consultation, d.Prices.Harvest, d.Prices.QualityTesting,
		d.Prices.AdministrationPerSession, d.Eligibility, d.Trial, hashOf(d))
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dose_options WHERE treatment_id = $1`, t.ID); err != nil {
		return false, err
	}
	for _, dose := range t.DoseOptions {
		if _, err := tx.Exec(ctx, `INSERT INTO dose_options (treatment_id, cells, culture_jpy) VALUES ($1, $2, $3)`,
			t.ID, dose.Cells, dose.Culture.Amount); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Unannounced returns treatments whose current revision has not been
// written to the outbox yet, locking them so concurrent publishers skip them.
func (s *Store) Unannounced(ctx context.Context, tx pgx.Tx) ([]domain.Listing, error) {
	rows, err := tx.Query(ctx, listingSelect+` WHERE t.published_revision < t.revision ORDER BY t.id FOR UPDATE OF t SKIP LOCKED`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Listing, error) { return scanListing(r) })
}

// MarkAnnounced records that revision of treatment id is in the outbox.
func (s *Store) MarkAnnounced(ctx context.Context, tx pgx.Tx, id string, revision int64) error {
	_, err := tx.Exec(ctx, `UPDATE treatments SET published_revision = $2 WHERE id = $1 AND published_revision < $2`, id, revision)
	return err
}
