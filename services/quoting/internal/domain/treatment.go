// Package domain holds quoting's rules: how a treatment, a dose and the
// patient's extras become an itemized quote with consumption tax, what the
// clinic takes as the deposit, how the patient's currency is shown, who is a
// candidate, and how a quote lives (issued, accepted, expired, superseded,
// withdrawn). No I/O here.
package domain

import (
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Treatment is quoting's read model of a catalog treatment (with what it
// needs of its clinic), fed by catalog.v1 TreatmentChanged events.
type Treatment struct {
	ID             string
	Name           string
	Names          map[string]string
	Conditions     []string
	ClinicID       string
	ClinicName     string
	PlanNumber     string
	RiskClass      string
	PlanStatus     string
	PlanValidFrom  time.Time
	PlanValidUntil time.Time
	Trial          bool
	CellType       string
	CellSource     string
	Autologous     bool
	Routes         []string
	Sessions       int
	CultureDaysMin int
	CultureDaysMax int
	Visits         int
	Consultation   money.Money
	Harvest        money.Money
	QualityTesting money.Money
	// AdministrationPerSession is charged Sessions times.
	AdministrationPerSession money.Money
	Doses                    []Dose
	Eligibility              Rules
	DepositPolicy            DepositPolicy
	CancellationPolicy       CancellationPolicy
	Extras                   []Extra
	Revision                 int64
}

// Dose is one offered dose and the price of culturing it.
type Dose struct {
	Cells   int64       `json:"cells"`
	Culture money.Money `json:"culture"`
}

// Extra is an optional service the clinic sells, priced per unit.
type Extra struct {
	Code    string      `json:"code"`
	Price   money.Money `json:"price"`
	Unit    string      `json:"unit"`
	Taxable bool        `json:"taxable"`
}

// Bookable reports whether the plan allows offering the therapy on day (a
// Japanese calendar date): active, within validity, not class I, not a trial.
func (t Treatment) Bookable(day time.Time) bool {
	return !t.Trial && t.RiskClass != "I" && t.PlanStatus == "active" &&
		!day.Before(t.PlanValidFrom) && !day.After(t.PlanValidUntil)
}

// HasCultureStage reports whether cells are cultured for this patient.
func (t Treatment) HasCultureStage() bool { return t.CultureDaysMax > 0 }

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

// Extra returns the clinic's price for an extra.
func (t Treatment) Extra(code string) (Extra, bool) {
	for _, e := range t.Extras {
		if e.Code == code {
			return e, true
		}
	}
	return Extra{}, false
}

// IsFor reports whether the treatment treats condition.
func (t Treatment) IsFor(condition string) bool {
	for _, c := range t.Conditions {
		if c == condition {
			return true
		}
	}
	return false
}
