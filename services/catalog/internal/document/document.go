// Package document is the catalog's JSON form for writing: the seed file
// and the administration API take the same documents. It converts them to
// the domain and back (for PATCH: current document, patched, validated).
package document

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

// Clinic is a clinic document.
type Clinic struct {
	ID               string            `json:"id"`
	Names            map[string]string `json:"names"`
	Kind             string            `json:"kind"`
	City             string            `json:"city"`
	MHLWRegistration string            `json:"mhlw_registration"`
	Languages        []string          `json:"languages"`
	DepositPolicy    DepositPolicy     `json:"deposit_policy"`
	Extras           []Extra           `json:"extras"`
	// CancellationPolicy is optional (the platform's default); its version
	// is the catalog's to set.
	CancellationPolicy *CancellationPolicy `json:"cancellation_policy,omitempty"`
}

// CancellationPolicy is a clinic's cancellation policy.
type CancellationPolicy struct {
	Version         int         `json:"version"`
	CancellationFee money.Money `json:"cancellation_fee"`
}

// DepositPolicy is a clinic's deposit policy.
type DepositPolicy struct {
	Covers             []string `json:"covers"`
	FullWithoutCulture bool     `json:"full_without_culture"`
}

// Extra is one line of a clinic's extras price list (JPY, before tax).
type Extra struct {
	Code    string `json:"code"`
	Price   int64  `json:"price"`
	Unit    string `json:"unit"`
	Taxable bool   `json:"taxable"`
}

// Plan is a provision plan document.
type Plan struct {
	Number    string `json:"number"`
	ClinicID  string `json:"clinic_id"`
	RiskClass string `json:"risk_class"`
	Therapy   string `json:"therapy"`
	Committee string `json:"committee"`
	CPC       struct {
		Name    string `json:"name"`
		InHouse bool   `json:"in_house"`
	} `json:"cpc"`
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	Status     string `json:"status"`
}

// Treatment is a treatment document.
type Treatment struct {
	ID              string            `json:"id"`
	ClinicID        string            `json:"clinic_id"`
	PlanNumber      string            `json:"plan_number"`
	Names           map[string]string `json:"names"`
	Descriptions    map[string]string `json:"descriptions"`
	Conditions      []string          `json:"conditions"`
	CellType        string            `json:"cell_type"`
	CellSource      string            `json:"cell_source"`
	Autologous      bool              `json:"autologous"`
	Routes          []string          `json:"routes"`
	Sessions        int               `json:"sessions"`
	CultureDays     Range             `json:"culture_days"`
	Visits          int               `json:"visits"`
	TypicalStayDays int               `json:"typical_stay_days"`
	FollowUpMonths  []int             `json:"follow_up_months"`
	Included        []string          `json:"included"`
	Prices          Prices            `json:"prices"`
	DoseOptions     []Dose            `json:"dose_options"`
	Eligibility     Eligibility       `json:"eligibility"`
	Trial           *Trial            `json:"trial"`
}

// Range is a min–max pair.
type Range struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Prices are a treatment's fees in JPY, before tax.
type Prices struct {
	Consultation             int64 `json:"consultation"`
	Harvest                  int64 `json:"harvest"`
	QualityTesting           int64 `json:"quality_testing"`
	AdministrationPerSession int64 `json:"administration_per_session"`
}

// Dose is one dose option.
type Dose struct {
	Cells   int64 `json:"cells"`
	Culture int64 `json:"culture"`
}

// Eligibility are screening rules.
type Eligibility struct {
	RequiresConfirmedDiagnosis bool          `json:"requires_confirmed_diagnosis"`
	MinCancerFreeYears         int           `json:"min_cancer_free_years"`
	OrganDisease               string        `json:"organ_disease"`
	ExcludesSeveredCord        bool          `json:"excludes_severed_cord"`
	InjuryWindow               *InjuryWindow `json:"injury_window"`
}

// InjuryWindow bounds the time since a spinal cord injury.
type InjuryWindow struct {
	MinDays   int `json:"min_days"`
	MaxMonths int `json:"max_months"`
}

// Trial marks a clinical trial.
type Trial struct {
	Institution  string `json:"institution"`
	Status       string `json:"status"`
	Phase        string `json:"phase"`
	RegistryID   string `json:"registry_id"`
	Participants int    `json:"participants"`
}

// Catalog is a whole catalog document (the seed file).
type Catalog struct {
	Clinics    []Clinic    `json:"clinics"`
	Plans      []Plan      `json:"plans"`
	Treatments []Treatment `json:"treatments"`
}

// Decode reads JSON strictly (unknown fields are errors) into dst, which
// may already hold a document: present fields replace, maps merge — the
// semantics of a PATCH.
func Decode(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// ToDomain converts a clinic document.
func (c Clinic) ToDomain() domain.Clinic {
	out := domain.Clinic{ID: c.ID, Names: domain.Text(c.Names), Kind: c.Kind, City: c.City, MHLWRegistration: c.MHLWRegistration,
		Languages: c.Languages, DepositPolicy: domain.DepositPolicy{Covers: c.DepositPolicy.Covers, FullWithoutCulture: c.DepositPolicy.FullWithoutCulture},
		CancellationPolicy: domain.DefaultCancellationPolicy}
	if c.CancellationPolicy != nil {
		out.CancellationPolicy = domain.CancellationPolicy{Version: c.CancellationPolicy.Version, CancellationFee: c.CancellationPolicy.CancellationFee}
	}
	for _, e := range c.Extras {
		out.Extras = append(out.Extras, domain.Extra{Code: e.Code, Price: money.Yen(e.Price), Unit: e.Unit, Taxable: e.Taxable})
	}
	return out
}

// FromClinic converts a clinic to its document.
func FromClinic(c domain.Clinic) Clinic {
	out := Clinic{ID: c.ID, Names: c.Names, Kind: c.Kind, City: c.City, MHLWRegistration: c.MHLWRegistration, Languages: c.Languages,
		DepositPolicy: DepositPolicy{Covers: c.DepositPolicy.Covers, FullWithoutCulture: c.DepositPolicy.FullWithoutCulture}, Extras: []Extra{},
		CancellationPolicy: &CancellationPolicy{Version: c.CancellationPolicy.Version, CancellationFee: c.CancellationPolicy.CancellationFee}}
	for _, e := range c.Extras {
		out.Extras = append(out.Extras, Extra{Code: e.Code, Price: e.Price.Amount, Unit: e.Unit, Taxable: e.Taxable})
	}
	return out
}

// ToDomain converts a plan document; dates must be YYYY-MM-DD.
func (p Plan) ToDomain() (domain.Plan, error) {
	from, err := time.Parse(time.DateOnly, p.ValidFrom)
	if err != nil {
		return domain.Plan{}, validation.FieldError{Field: "valid_from", Message: "must be a date YYYY-MM-DD"}
	}
	until, err := time.Parse(time.DateOnly, p.ValidUntil)
	if err != nil {
		return domain.Plan{}, validation.FieldError{Field: "valid_until", Message: "must be a date YYYY-MM-DD"}
	}
	return domain.Plan{Number: p.Number, ClinicID: p.ClinicID, RiskClass: p.RiskClass, Therapy: p.Therapy, Committee: p.Committee,
		CPCName: p.CPC.Name, CPCInHouse: p.CPC.InHouse, ValidFrom: from, ValidUntil: until, Status: p.Status}, nil
}

// FromPlan converts a plan to its document.
func FromPlan(p domain.Plan) Plan {
	out := Plan{Number: p.Number, ClinicID: p.ClinicID, RiskClass: p.RiskClass, Therapy: p.Therapy, Committee: p.Committee,
		ValidFrom: p.ValidFrom.Format(time.DateOnly), ValidUntil: p.ValidUntil.Format(time.DateOnly), Status: p.Status}
	out.CPC.Name, out.CPC.InHouse = p.CPCName, p.CPCInHouse
	return out
}

// ToDomain converts a treatment document.
func (t Treatment) ToDomain() domain.Treatment {
	out := domain.Treatment{ID: t.ID, ClinicID: t.ClinicID, PlanNumber: t.PlanNumber,
		Names: domain.Text(t.Names), Descriptions: domain.Text(t.Descriptions), Conditions: t.Conditions,
		CellType: t.CellType, CellSource: t.CellSource, Autologous: t.Autologous, Routes: t.Routes, Sessions: t.Sessions,
		CultureDaysMin: t.CultureDays.Min, CultureDaysMax: t.CultureDays.Max, Visits: t.Visits, TypicalStayDays: t.TypicalStayDays,
		FollowUpMonths: t.FollowUpMonths, Included: t.Included,
		Prices: domain.PriceList{Consultation: money.Yen(t.Prices.Consultation), Harvest: money.Yen(t.Prices.Harvest),
			QualityTesting: money.Yen(t.Prices.QualityTesting), AdministrationPerSession: money.Yen(t.Prices.AdministrationPerSession)},
		Eligibility: domain.EligibilityRules{RequiresConfirmedDiagnosis: t.Eligibility.RequiresConfirmedDiagnosis,
			MinCancerFreeYears: t.Eligibility.MinCancerFreeYears, OrganDisease: t.Eligibility.OrganDisease,
			ExcludesSeveredCord: t.Eligibility.ExcludesSeveredCord},
	}
	if w := t.Eligibility.InjuryWindow; w != nil {
		out.Eligibility.InjuryWindow = &domain.InjuryWindow{MinDays: w.MinDays, MaxMonths: w.MaxMonths}
	}
	if tr := t.Trial; tr != nil {
		out.Trial = &domain.Trial{Institution: tr.Institution, Status: tr.Status, Phase: tr.Phase, RegistryID: tr.RegistryID, Participants: tr.Participants}
	}
	for _, d := range t.DoseOptions {
		out.DoseOptions = append(out.DoseOptions, domain.DoseOption{Cells: d.Cells, Culture: money.Yen(d.Culture)})
	}
	return out
}

// FromTreatment converts a treatment to its document.
func FromTreatment(t domain.Treatment) Treatment {
	out := Treatment{ID: t.ID, ClinicID: t.ClinicID, PlanNumber: t.PlanNumber, Names: t.Names, Descriptions: t.Descriptions,
		Conditions: t.Conditions, CellType: t.CellType, CellSource: t.CellSource, Autologous: t.Autologous, Routes: t.Routes,
		Sessions: t.Sessions, CultureDays: Range{t.CultureDaysMin, t.CultureDaysMax}, Visits: t.Visits,
		TypicalStayDays: t.TypicalStayDays, FollowUpMonths: t.FollowUpMonths, Included: t.Included,
		Prices: Prices{t.Prices.Consultation.Amount, t.Prices.Harvest.Amount, t.Prices.QualityTesting.Amount, t.Prices.AdministrationPerSession.Amount},
		Eligibility: Eligibility{RequiresConfirmedDiagnosis: t.Eligibility.RequiresConfirmedDiagnosis,
			MinCancerFreeYears: t.Eligibility.MinCancerFreeYears, OrganDisease: t.Eligibility.OrganDisease,
			ExcludesSeveredCord: t.Eligibility.ExcludesSeveredCord},
		DoseOptions: []Dose{},
	}
	if w := t.Eligibility.InjuryWindow; w != nil {
		out.Eligibility.InjuryWindow = &InjuryWindow{MinDays: w.MinDays, MaxMonths: w.MaxMonths}
	}
	if tr := t.Trial; tr != nil {
		out.Trial = &Trial{Institution: tr.Institution, Status: tr.Status, Phase: tr.Phase, RegistryID: tr.RegistryID, Participants: tr.Participants}
	}
	for _, d := range t.DoseOptions {
		out.DoseOptions = append(out.DoseOptions, Dose{Cells: d.Cells, Culture: d.Culture.Amount})
	}
	return out
}

// Parse reads a catalog document.
func Parse(b []byte) (Catalog, error) {
	var c Catalog
	if err := Decode(b, &c); err != nil {
		return c, fmt.Errorf("catalog document: %w", err)
	}
	return c, nil
}
