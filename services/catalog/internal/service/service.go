// Package service holds the catalog's use cases behind the Service interface.
package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/services/catalog/internal/contract"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/store"
)

// Errors the transport maps to HTTP answers.
var (
	ErrNotFound = errors.New("treatment not found")
)

// InvalidFilter names a query parameter with a value the catalog does not know.
type InvalidFilter struct{ Field, Message string }

func (e InvalidFilter) Error() string { return e.Field + ": " + e.Message }

// Filter selects treatments.
type Filter struct {
	Condition string
	City      string
}

// Catalog is a whole catalog to import: the seed, or an operator's upload.
type Catalog struct {
	Clinics    []domain.Clinic
	Plans      []domain.Plan
	Treatments []domain.Treatment
}

// Service is what the catalog offers.
type Service interface {
	ListTreatments(ctx context.Context, f Filter) ([]domain.Listing, time.Time, error)
	GetTreatment(ctx context.Context, id string) (domain.Listing, time.Time, error)
	Import(ctx context.Context, c Catalog) error
}

type service struct {
	store *store.Store
	now   func() time.Time
}

// New returns the catalog service.
func New(s *store.Store, now func() time.Time) Service { return &service{store: s, now: now} }

// ListTreatments returns matching treatments and the Japanese date their
// bookability was judged on.
func (s *service) ListTreatments(ctx context.Context, f Filter) ([]domain.Listing, time.Time, error) {
	if f.Condition != "" && !slices.Contains(domain.Conditions, f.Condition) {
		return nil, time.Time{}, InvalidFilter{"condition", fmt.Sprintf("must be one of %v", domain.Conditions)}
	}
	if f.City != "" && !slices.Contains(domain.Cities, f.City) {
		return nil, time.Time{}, InvalidFilter{"city", fmt.Sprintf("must be one of %v", domain.Cities)}
	}
	ls, err := s.store.Listings(ctx, store.Filter{Condition: f.Condition, City: f.City})
	return ls, tokyo.Date(s.now()), err
}

func (s *service) GetTreatment(ctx context.Context, id string) (domain.Listing, time.Time, error) {
	l, err := s.store.Listing(ctx, s.store.Pool(), id)
	if errors.Is(err, store.ErrNotFound) {
		return l, time.Time{}, fmt.Errorf("%w: no treatment with id %q", ErrNotFound, id)
	}
	return l, tokyo.Date(s.now()), err
}

// Import validates and saves a catalog and announces every treatment whose
// content changed, all in one transaction: the catalog and its events never
// disagree. Importing the same catalog again changes and announces nothing.
func (s *service) Import(ctx context.Context, c Catalog) error {
	if err := c.validate(); err != nil {
		return err
	}
	return pgdb.InTx(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		for _, cl := range c.Clinics {
			if err := s.store.SaveClinic(ctx, tx, cl); err != nil {
				return fmt.Errorf("clinic %s: %w", cl.ID, err)
			}
		}
		for _, p := range c.Plans {
			if err := s.store.SavePlan(ctx, tx, p); err != nil {
				return fmt.Errorf("plan %s: %w", p.Number, err)
			}
		}
		for _, t := range c.Treatments {
			if err := s.store.SaveTreatment(ctx, tx, t); err != nil {
				return fmt.Errorf("treatment %s: %w", t.ID, err)
			}
		}
		return s.announce(ctx, tx)
	})
}

func (s *service) announce(ctx context.Context, tx pgx.Tx) error {
	pending, err := s.store.Unannounced(ctx, tx)
	if err != nil {
		return err
	}
	day := tokyo.Date(s.now())
	for _, l := range pending {
		if err := outbox.Enqueue(ctx, tx, contract.TreatmentChanged(l, day)); err != nil {
			return err
		}
		if err := s.store.MarkAnnounced(ctx, tx, l.Treatment.ID, l.Treatment.Revision); err != nil {
			return err
		}
	}
	return nil
}

func (c Catalog) validate() error {
	var errs []error
	clinics := map[string]bool{}
	for _, cl := range c.Clinics {
		if err := cl.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("clinic %s: %w", cl.ID, err))
		}
		clinics[cl.ID] = true
	}
	plans := map[string]string{}
	for _, p := range c.Plans {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("plan %s: %w", p.Number, err))
		}
		if !clinics[p.ClinicID] {
			errs = append(errs, fmt.Errorf("plan %s: unknown clinic %q", p.Number, p.ClinicID))
		}
		plans[p.Number] = p.ClinicID
	}
	for _, t := range c.Treatments {
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("treatment %s: %w", t.ID, err))
		}
		if owner, ok := plans[t.PlanNumber]; !ok || owner != t.ClinicID {
			errs = append(errs, fmt.Errorf("treatment %s: plan %q is not a plan of clinic %q", t.ID, t.PlanNumber, t.ClinicID))
		}
	}
	return errors.Join(errs...)
}
