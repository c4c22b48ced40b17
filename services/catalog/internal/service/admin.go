package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saisei-health/platform/pkg/pgdb"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/catalog/internal/document"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/store"
)

// The administration API: operators create and edit clinics, plans and
// treatments. Each change is validated, saved and announced in one
// transaction; suspending or withdrawing a plan makes its treatments
// unbookable at once (booking asks the catalog directly) and its snapshots
// tell quoting within a second. Create takes a whole document; Patch takes
// the fields to change, applied onto the current document and validated as
// a whole.

// CreateClinic adds a clinic.
func (s *Catalogs) CreateClinic(ctx context.Context, body []byte) (domain.Clinic, error) {
	var d document.Clinic
	if err := document.Decode(body, &d); err != nil {
		return domain.Clinic{}, err
	}
	c := d.ToDomain()
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := s.store.Clinic(ctx, tx, c.ID); err == nil {
			return fmt.Errorf("%w: clinic %q", ErrExists, c.ID)
		}
		if err := c.Validate(); err != nil {
			return err
		}
		_, err := s.store.SaveClinic(ctx, tx, c)
		return err
	})
	return c, err
}

// PatchClinic changes some fields of a clinic.
func (s *Catalogs) PatchClinic(ctx context.Context, id string, patch []byte) (domain.Clinic, error) {
	var c domain.Clinic
	err := s.write(ctx, func(tx pgx.Tx) error {
		current, err := s.store.Clinic(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no clinic %q", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		d := document.FromClinic(current)
		if err := document.Decode(patch, &d); err != nil {
			return err
		}
		if d.ID != id {
			return validation.FieldError{Field: "id", Message: "cannot be changed"}
		}
		c = d.ToDomain()
		if err := c.Validate(); err != nil {
			return err
		}
		_, err = s.store.SaveClinic(ctx, tx, c)
		return err
	})
	return c, err
}

// CreatePlan adds a plan to a clinic.
func (s *Catalogs) CreatePlan(ctx context.Context, body []byte) (domain.Plan, error) {
	var d document.Plan
	if err := document.Decode(body, &d); err != nil {
		return domain.Plan{}, err
	}
	p, err := d.ToDomain()
	if err != nil {
		return p, err
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		if _, err := s.store.Plan(ctx, tx, p.Number); err == nil {
			return fmt.Errorf("%w: plan %q", ErrExists, p.Number)
		}
		if _, err := s.store.Clinic(ctx, tx, p.ClinicID); err != nil {
			return validation.FieldError{Field: "clinic_id", Message: fmt.Sprintf("no clinic %q", p.ClinicID)}
		}
		if err := p.Validate(); err != nil {
			return err
		}
		return s.savePlan(ctx, tx, p)
	})
	return p, err
}

// PatchPlan changes some fields of a plan, e.g. {"status": "suspended"}.
func (s *Catalogs) PatchPlan(ctx context.Context, number string, patch []byte) (domain.Plan, error) {
	var p domain.Plan
	err := s.write(ctx, func(tx pgx.Tx) error {
		current, err := s.store.Plan(ctx, tx, number)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no plan %q", ErrNotFound, number)
		} else if err != nil {
			return err
		}
		d := document.FromPlan(current)
		if err := document.Decode(patch, &d); err != nil {
			return err
		}
		if d.Number != number || d.ClinicID != current.ClinicID {
			return validation.FieldError{Field: "number", Message: "a plan's number and clinic cannot be changed"}
		}
		if p, err = d.ToDomain(); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return err
		}
		return s.savePlan(ctx, tx, p)
	})
	return p, err
}

// CreateTreatment adds a treatment under an existing plan of its clinic.
func (s *Catalogs) CreateTreatment(ctx context.Context, body []byte) (domain.Listing, error) {
	var d document.Treatment
	if err := document.Decode(body, &d); err != nil {
		return domain.Listing{}, err
	}
	t := d.ToDomain()
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := s.store.Listing(ctx, tx, t.ID); err == nil {
			return fmt.Errorf("%w: treatment %q", ErrExists, t.ID)
		}
		return s.saveTreatment(ctx, tx, t)
	})
	if err != nil {
		return domain.Listing{}, err
	}
	return s.GetTreatment(ctx, t.ID)
}

// PatchTreatment changes some fields of a treatment.
func (s *Catalogs) PatchTreatment(ctx context.Context, id string, patch []byte) (domain.Listing, error) {
	err := s.write(ctx, func(tx pgx.Tx) error {
		current, err := s.store.Listing(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no treatment %q", ErrNotFound, id)
		} else if err != nil {
			return err
		}
		d := document.FromTreatment(current.Treatment)
		// Fields present in the patch replace; names and descriptions merge
		// language by language; lists are replaced whole.
		if err := document.Decode(patch, &d); err != nil {
			return err
		}
		if d.ID != id {
			return validation.FieldError{Field: "id", Message: "cannot be changed"}
		}
		return s.saveTreatment(ctx, tx, d.ToDomain())
	})
	if err != nil {
		return domain.Listing{}, err
	}
	return s.GetTreatment(ctx, id)
}

func (s *Catalogs) saveTreatment(ctx context.Context, tx pgx.Tx, t domain.Treatment) error {
	if err := t.Validate(); err != nil {
		return err
	}
	p, err := s.store.Plan(ctx, tx, t.PlanNumber)
	if err != nil || p.ClinicID != t.ClinicID {
		return validation.FieldError{Field: "plan_number", Message: fmt.Sprintf("plan %q is not a plan of clinic %q", t.PlanNumber, t.ClinicID)}
	}
	_, err = s.store.SaveTreatment(ctx, tx, t)
	return err
}

// write runs an administrative change with its announcements and refreshes
// this replica's index at once (others follow on the NOTIFY).
func (s *Catalogs) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := pgdb.InTx(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.announce(ctx, tx)
	}); err != nil {
		return err
	}
	return s.Refresh(ctx)
}
