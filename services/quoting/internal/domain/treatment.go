// Package domain holds quoting's rules: how a treatment and a dose become an
// itemized quote, what the deposit covers, how the patient's currency is
// shown, and how long a quote stays valid. No I/O here.
package domain

import (
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Treatment is quoting's read model of a catalog treatment, fed by
// catalog.v1 TreatmentChanged events.
type Treatment struct {
	ID             string
	Name           string
	Condition      string
	ClinicID       string
	ClinicName     string
	PlanNumber     string
	RiskClass      string
	PlanStatus     string
	PlanValidFrom  time.Time
	PlanValidUntil time.Time
	CellSource     string
	Autologous     bool
	Routes         []string
	Sessions       int
	CultureDaysMin int
	CultureDaysMax int
	Consultation   money.Money
	Harvest        money.Money
	QualityTesting money.Money
	// AdministrationPerSession is charged Sessions times.
	AdministrationPerSession money.Money
	Doses                    []Dose
	Revision                 int64
}

// Dose is one offered dose and the price of culturing it.
type Dose struct {
	Cells   int64       `json:"cells"`
	Culture money.Money `json:"culture"`
}

// Bookable reports whether the plan allows offering the therapy on day (a
// Japanese calendar date): active, within validity, and not class I.
func (t Treatment) Bookable(day time.Time) bool {
	return t.RiskClass != "I" && t.PlanStatus == "active" &&
		!day.Before(t.PlanValidFrom) && !day.After(t.PlanValidUntil)
}

// Dose returns the option for cells.
func (t Treatment) Dose(cells int64) (Dose, bool) {
	for _, d := range t.Doses {
		if d.Cells == cells {
			return d, true
		}
	}
	return Dose{}, false
}

// DoseCells lists the offered doses.
func (t Treatment) DoseCells() []int64 {
	out := make([]int64, len(t.Doses))
	for i, d := range t.Doses {
		out[i] = d.Cells
	}
	return out
}
