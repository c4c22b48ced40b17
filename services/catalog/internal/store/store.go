// Package store keeps the catalog in Postgres. It owns all catalog SQL.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/pgdb"
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

// Filter narrows a listing; empty fields match everything.
type Filter struct {
	Condition string
	City      string
}

const listingSelect = `
SELECT t.id, t.clinic_id, t.plan_number, t.name, t.condition, t.description, t.cell_source, t.autologous,
       t.routes, t.sessions, t.culture_days_min, t.culture_days_max, t.consultation_jpy, t.harvest_jpy,
       t.quality_testing_jpy, t.administration_per_session_jpy, t.revision,
       COALESCE((SELECT array_agg(d.cells ORDER BY d.cells) FROM dose_options d WHERE d.treatment_id = t.id), '{}'),
       COALESCE((SELECT array_agg(d.culture_jpy ORDER BY d.cells) FROM dose_options d WHERE d.treatment_id = t.id), '{}'),
       c.id, c.name, c.name_ja, c.city, c.mhlw_registration, c.languages,
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
	err := row.Scan(&t.ID, &t.ClinicID, &t.PlanNumber, &t.Name, &t.Condition, &t.Description, &t.CellSource, &t.Autologous,
		&t.Routes, &t.Sessions, &t.CultureDaysMin, &t.CultureDaysMax, &consult, &harvest,
		&qc, &admin, &t.Revision, &cells, &culture,
		&c.ID, &c.Name, &c.NameJA, &c.City, &c.MHLWRegistration, &c.Languages,
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
	return l, nil
}

// Listings returns treatments matching f, ordered by id.
func (s *Store) Listings(ctx context.Context, f Filter) ([]domain.Listing, error) {
	var where []string
	var args []any
	if f.Condition != "" {
		args = append(args, f.Condition)
		where = append(where, fmt.Sprintf("t.condition = $%d", len(args)))
	}
	if f.City != "" {
		args = append(args, f.City)
		where = append(where, fmt.Sprintf("c.city = $%d", len(args)))
	}
	q := listingSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.pool.Query(ctx, q+" ORDER BY t.id", args...)
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

func hashOf(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SaveClinic inserts or updates c. When its content changed, the revision
// of its treatments grows so their snapshots are published again.
func (s *Store) SaveClinic(ctx context.Context, tx pgx.Tx, c domain.Clinic) error {
	tag, err := tx.Exec(ctx, `
		INSERT INTO clinics (id, name, name_ja, city, mhlw_registration, languages, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, name_ja = EXCLUDED.name_ja, city = EXCLUDED.city,
			mhlw_registration = EXCLUDED.mhlw_registration, languages = EXCLUDED.languages,
			content_hash = EXCLUDED.content_hash, updated_at = now()
		WHERE clinics.content_hash <> EXCLUDED.content_hash`,
		c.ID, c.Name, c.NameJA, c.City, c.MHLWRegistration, c.Languages, hashOf(c))
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE treatments SET revision = revision + 1, updated_at = now() WHERE clinic_id = $1`, c.ID)
	return err
}

// SavePlan inserts or updates p, re-announcing its treatments on change.
func (s *Store) SavePlan(ctx context.Context, tx pgx.Tx, p domain.Plan) error {
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
		p.ValidFrom, p.ValidUntil, p.Status, hashOf(p))
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE treatments SET revision = revision + 1, updated_at = now() WHERE plan_number = $1`, p.Number)
	return err
}

// SaveTreatment inserts or updates t and its dose options; a change grows
// its revision.
func (s *Store) SaveTreatment(ctx context.Context, tx pgx.Tx, t domain.Treatment) error {
	t.Revision = 0 // not part of the content
	tag, err := tx.Exec(ctx, `
		INSERT INTO treatments (id, clinic_id, plan_number, name, condition, description, cell_source, autologous,
			routes, sessions, culture_days_min, culture_days_max, consultation_jpy, harvest_jpy,
			quality_testing_jpy, administration_per_session_jpy, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (id) DO UPDATE SET clinic_id = EXCLUDED.clinic_id, plan_number = EXCLUDED.plan_number,
			name = EXCLUDED.name, condition = EXCLUDED.condition, description = EXCLUDED.description,
			cell_source = EXCLUDED.cell_source, autologous = EXCLUDED.autologous, routes = EXCLUDED.routes,
			sessions = EXCLUDED.sessions, culture_days_min = EXCLUDED.culture_days_min,
			culture_days_max = EXCLUDED.culture_days_max, consultation_jpy = EXCLUDED.consultation_jpy,
			harvest_jpy = EXCLUDED.harvest_jpy, quality_testing_jpy = EXCLUDED.quality_testing_jpy,
			administration_per_session_jpy = EXCLUDED.administration_per_session_jpy,
			content_hash = EXCLUDED.content_hash, revision = treatments.revision + 1, updated_at = now()
		WHERE treatments.content_hash <> EXCLUDED.content_hash`,
		t.ID, t.ClinicID, t.PlanNumber, t.Name, t.Condition, t.Description, t.CellSource, t.Autologous,
		t.Routes, t.Sessions, t.CultureDaysMin, t.CultureDaysMax, t.Prices.Consultation.Amount, t.Prices.Harvest.Amount,
		t.Prices.QualityTesting.Amount, t.Prices.AdministrationPerSession.Amount, hashOf(t))
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dose_options WHERE treatment_id = $1`, t.ID); err != nil {
		return err
	}
	for _, d := range t.DoseOptions {
		if _, err := tx.Exec(ctx, `INSERT INTO dose_options (treatment_id, cells, culture_jpy) VALUES ($1, $2, $3)`,
			t.ID, d.Cells, d.Culture.Amount); err != nil {
			return err
		}
	}
	return nil
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
