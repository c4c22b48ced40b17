// Package service holds the catalog's use cases: search for the frontends,
// one treatment for booking's live bookability check, the import of the
// seed, and the administration of clinics, plans and treatments. Every
// write commits with the events announcing it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/outbox"
	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/services/catalog/internal/contract"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/search"
	"github.com/saisei-health/platform/services/catalog/internal/store"
)

// Errors the transport maps to HTTP answers.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Catalog is a whole catalog to import: the seed, or an operator's upload.
type Catalog struct {
	Clinics    []domain.Clinic
	Plans      []domain.Plan
	Treatments []domain.Treatment
}

// Filter is a search as the frontends state it, prices in any currency.
type Filter struct {
	search.Query
	MinPrice, MaxPrice *money.Money
}

// Catalogs implements the catalog's use cases.
type Catalogs struct {
	store *store.Store
	rates fx.Table
	now   func() time.Time
	log   *slog.Logger
	index atomic.Pointer[search.Index]
	fp    atomic.Value // fingerprint the index was built from
	// rebuilds makes index rebuilds single-flight (see Refresh).
	rebuilds struct {
		sync.Mutex
		running bool
		asked   uint64        // Refresh calls so far
		covered uint64        // the last call a finished rebuild began after
		done    chan struct{} // closed when the running rebuild ends
	}
}

// New returns the catalog service; call Refresh before serving searches.
func New(s *store.Store, rates fx.Table, now func() time.Time, log *slog.Logger) *Catalogs {
	c := &Catalogs{store: s, rates: rates, now: now, log: log}
	c.index.Store(search.Build(nil, now()))
	return c
}

// Today is the Japanese date bookability is judged on.
func (s *Catalogs) Today() time.Time { return tokyo.Date(s.now()) }

// Rates are the exchange rates prices are shown in.
func (s *Catalogs) Rates() fx.Table { return s.rates }

// IndexVersion names what a search answers from: the catalog's content
// (the fingerprint the index was built from) and the Tokyo day
// bookability is judged on. Refresh stores a new index before its
// fingerprint, so an answer is never kept under a version newer than the
// index it came from.
func (s *Catalogs) IndexVersion() string {
	fp, _ := s.fp.Load().(string)
	return fp + "|" + s.Today().Format(time.DateOnly)
}

// Search runs a search on the in-memory index.
func (s *Catalogs) Search(ctx context.Context, f Filter) (search.Page, error) {
	q := f.Query
	var err error
	if q.MinJPY, q.MaxJPY, err = s.rates.YenRange(f.MinPrice, f.MaxPrice); err != nil {
		return search.Page{}, err
	}
	q.Day = s.Today()
	return s.index.Load().Search(q)
}

// GetTreatment reads one treatment from Postgres, not the index: booking
// asks whether it is bookable right now, and a plan suspended a moment ago
// must already count.
func (s *Catalogs) GetTreatment(ctx context.Context, id string) (domain.Listing, error) {
	l, err := s.store.Listing(ctx, s.store.Pool(), id)
	if errors.Is(err, store.ErrNotFound) {
		return l, fmt.Errorf("%w: no treatment with id %q", ErrNotFound, id)
	}
	return l, err
}

// Refresh returns once the search index reflects everything committed
// before the call. Rebuilds are single-flight: one runs at a time, and the
// calls that arrive meanwhile share the next one, which begins after all of
// them. (Each admin write used to rebuild the whole index itself: adding
// 10,000 treatments one by one cost 10,000 full rebuilds, up to sixteen at
// once, and an older one could land after a newer.)
func (s *Catalogs) Refresh(ctx context.Context) error {
	rb := &s.rebuilds
	rb.Lock()
	rb.asked++
	ticket := rb.asked
	for rb.covered < ticket {
		if rb.running {
			done := rb.done
			rb.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
			rb.Lock()
			continue
		}
		rb.running, rb.done = true, make(chan struct{})
		covers := rb.asked
		rb.Unlock()
		err := s.rebuild(ctx)
		rb.Lock()
		rb.running = false
		close(rb.done)
		if err != nil {
			rb.Unlock()
			return err
		}
		rb.covered = max(rb.covered, covers)
	}
	rb.Unlock()
	return nil
}

// rebuild builds the index afresh when the catalog changed since the last
// build.
func (s *Catalogs) rebuild(ctx context.Context) error {
	fp, err := s.store.Fingerprint(ctx)
	if err != nil {
		return err
	}
	if last, _ := s.fp.Load().(string); last == fp {
		return nil
	}
	// Only the treatments changed since the index was built (their
	// revision grows with any change to them, their plan or clinic) are
	// read and indexed again; the rest are kept. A full rebuild read and
	// folded every treatment's text: a second at 5,000 treatments.
	revs, err := s.store.Revisions(ctx)
	if err != nil {
		return err
	}
	current := s.index.Load()
	var fresh []domain.Listing
	if stale := current.Stale(revs); len(stale) > 0 {
		if fresh, err = s.store.ListingsOf(ctx, stale); err != nil {
			return err
		}
	}
	s.index.Store(current.Update(revs, fresh, s.now()))
	s.fp.Store(fp)
	return nil
}

// KeepFresh rebuilds the index whenever Postgres announces a change (from
// any replica), polling as a fallback, until ctx is done.
func (s *Catalogs) KeepFresh(ctx context.Context) {
	wake := pgdb.NewWakeup(s.store.Pool(), "catalog_changed", 30*time.Second, s.log)
	go wake.Run(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake.C():
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "search index refresh failed", "err", err)
			}
		}
	}
}

// Import validates and saves a catalog and announces every treatment whose
// content changed, all in one transaction: the catalog and its events never
// disagree. Importing the same catalog again changes and announces nothing.
func (s *Catalogs) Import(ctx context.Context, c Catalog) error {
	if err := c.validate(); err != nil {
		return err
	}
	err := pgdb.InTx(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		for _, cl := range c.Clinics {
			if _, err := s.store.SaveClinic(ctx, tx, cl); err != nil {
				return fmt.Errorf("clinic %s: %w", cl.ID, err)
			}
		}
		for _, p := range c.Plans {
			if err := s.savePlan(ctx, tx, p); err != nil {
				return fmt.Errorf("plan %s: %w", p.Number, err)
			}
		}
		for _, t := range c.Treatments {
			if _, err := s.store.SaveTreatment(ctx, tx, t); err != nil {
				return fmt.Errorf("treatment %s: %w", t.ID, err)
			}
		}
		return s.announce(ctx, tx)
	})
	if err != nil {
		return err
	}
	return s.Refresh(ctx)
}

// savePlan saves p and, when it changed, announces it.
func (s *Catalogs) savePlan(ctx context.Context, tx pgx.Tx, p domain.Plan) error {
	changed, err := s.store.SavePlan(ctx, tx, p)
	if err != nil || !changed {
		return err
	}
	treatments, err := s.store.TreatmentsOfPlan(ctx, tx, p.Number)
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx, contract.PlanChanged(p, treatments, outbox.NewID()))
}

// announce writes a TreatmentChanged for every treatment whose revision has
// not been announced, in the caller's transaction.
func (s *Catalogs) announce(ctx context.Context, tx pgx.Tx) error {
	pending, err := s.store.Unannounced(ctx, tx)
	if err != nil {
		return err
	}
	day := s.Today()
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
	plans := map[string]domain.Plan{}
	for _, p := range c.Plans {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("plan %s: %w", p.Number, err))
		}
		if !clinics[p.ClinicID] {
			errs = append(errs, fmt.Errorf("plan %s: unknown clinic %q", p.Number, p.ClinicID))
		}
		plans[p.Number] = p
	}
	for _, t := range c.Treatments {
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("treatment %s: %w", t.ID, err))
		}
		if p, ok := plans[t.PlanNumber]; !ok || p.ClinicID != t.ClinicID {
			errs = append(errs, fmt.Errorf("treatment %s: plan %q is not a plan of clinic %q", t.ID, t.PlanNumber, t.ClinicID))
		}
	}
	return errors.Join(errs...)
}
