package transport

import (
	"time"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/catalog/internal/document"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

// TreatmentView is a treatment as frontends see it, in one language.
type TreatmentView struct {
	ID               string               `json:"id"`
	Language         string               `json:"language"`
	Name             string               `json:"name"`
	Description      string               `json:"description"`
	Condition        string               `json:"condition"`
	Conditions       []string             `json:"conditions"`
	ConditionNames   map[string]string    `json:"condition_names"`
	Clinic           ClinicView           `json:"clinic"`
	PlanNumber       string               `json:"plan_number"`
	RiskClass        string               `json:"risk_class"`
	Plan             PlanView             `json:"plan"`
	Trial            *document.Trial      `json:"trial"`
	Bookable         bool                 `json:"bookable"`
	CellType         string               `json:"cell_type"`
	CellSource       string               `json:"cell_source"`
	Autologous       bool                 `json:"autologous"`
	Routes           []string             `json:"routes"`
	Sessions         int                  `json:"sessions"`
	CultureDays      document.Range       `json:"culture_days"`
	Visits           int                  `json:"visits"`
	TypicalStayDays  int                  `json:"typical_stay_days"`
	FollowUpMonths   []int                `json:"follow_up_months"`
	Included         []string             `json:"included"`
	Prices           PricesView           `json:"prices"`
	DoseOptions      []DoseView           `json:"dose_options"`
	PriceFrom        *money.Money         `json:"price_from"`
	DisplayPriceFrom *money.Money         `json:"display_price_from,omitempty"`
	Eligibility      document.Eligibility `json:"eligibility"`
	Revision         int64                `json:"revision"`
}

// ConditionView is a condition code with its name in the view's language.
type ConditionView struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

type ClinicView struct {
	ID            string                 `json:"id"`
	Name          string                 `json:"name"`
	Kind          string                 `json:"kind"`
	City          string                 `json:"city"`
	Languages     []string               `json:"languages"`
	DepositPolicy document.DepositPolicy `json:"deposit_policy"`
	// CancellationPolicy is the fee for cancelling before the harvest, tax
	// included, and its version.
	CancellationPolicy document.CancellationPolicy `json:"cancellation_policy"`
	// Extras are the optional services the clinic sells, per unit, before tax.
	Extras []ExtraView `json:"extras"`
}

// ExtraView is one optional service and its price per unit.
type ExtraView struct {
	Code    string      `json:"code"`
	Price   money.Money `json:"price"`
	Unit    string      `json:"unit"`
	Taxable bool        `json:"taxable"`
}

type PlanView struct {
	Number     string  `json:"number"`
	RiskClass  string  `json:"risk_class"`
	Status     string  `json:"status"`
	Therapy    string  `json:"therapy"`
	Committee  string  `json:"committee"`
	ValidFrom  string  `json:"valid_from"`
	ValidUntil string  `json:"valid_until"`
	CPC        CPCView `json:"cpc"`
}

type CPCView struct {
	Name    string `json:"name"`
	InHouse bool   `json:"in_house"`
}

type PricesView struct {
	Consultation             money.Money `json:"consultation"`
	Harvest                  money.Money `json:"harvest"`
	QualityTesting           money.Money `json:"quality_testing"`
	AdministrationPerSession money.Money `json:"administration_per_session"`
}

// DoseView is one dose; price is the whole protocol at that dose, before
// consumption tax.
type DoseView struct {
	Cells   int64       `json:"cells"`
	Culture money.Money `json:"culture"`
	Price   money.Money `json:"price"`
}

func conditionViews(codes []string, lang string) []ConditionView {
	out := make([]ConditionView, 0, len(codes))
	for _, c := range codes {
		out = append(out, ConditionView{Code: c, Name: domain.ConditionNames[c].In(lang)})
	}
	return out
}

// viewOf renders l in lang; display, when set, adds the lowest price in
// that currency.
func viewOf(l domain.Listing, day time.Time, lang string, rates fx.Table, display money.Currency) TreatmentView {
	t := l.Treatment
	v := TreatmentView{
		ID: t.ID, Language: lang, Name: t.Names.In(lang), Description: t.Descriptions.In(lang),
		Condition: t.Condition(), Conditions: t.Conditions, ConditionNames: map[string]string{},
		Clinic: ClinicView{ID: l.Clinic.ID, Name: l.Clinic.Names.In(lang), Kind: l.Clinic.Kind, City: l.Clinic.City, Languages: l.Clinic.Languages,
			DepositPolicy: document.DepositPolicy{Covers: l.Clinic.DepositPolicy.Covers, FullWithoutCulture: l.Clinic.DepositPolicy.FullWithoutCulture},
			CancellationPolicy: document.CancellationPolicy{Version: l.Clinic.CancellationPolicy.Version,
				CancellationFee: l.Clinic.CancellationPolicy.CancellationFee},
			Extras: []ExtraView{}},
		PlanNumber: l.Plan.Number, RiskClass: l.Plan.RiskClass,
		Plan: PlanView{Number: l.Plan.Number, RiskClass: l.Plan.RiskClass, Status: l.Plan.Status, Therapy: l.Plan.Therapy,
			Committee: l.Plan.Committee, ValidFrom: l.Plan.ValidFrom.Format(time.DateOnly), ValidUntil: l.Plan.ValidUntil.Format(time.DateOnly),
			CPC: CPCView{Name: l.Plan.CPCName, InHouse: l.Plan.CPCInHouse}},
		Bookable: l.Bookable(day),
		CellType: t.CellType, CellSource: t.CellSource, Autologous: t.Autologous, Routes: t.Routes, Sessions: t.Sessions,
		CultureDays: document.Range{Min: t.CultureDaysMin, Max: t.CultureDaysMax}, Visits: t.Visits, TypicalStayDays: t.TypicalStayDays,
		FollowUpMonths: nonNil(t.FollowUpMonths), Included: nonNil(t.Included),
		Prices: PricesView{Consultation: t.Prices.Consultation, Harvest: t.Prices.Harvest,
			QualityTesting: t.Prices.QualityTesting, AdministrationPerSession: t.Prices.AdministrationPerSession},
		DoseOptions: []DoseView{},
		Revision:    t.Revision,
	}
	for _, c := range t.Conditions {
		v.ConditionNames[c] = domain.ConditionNames[c].In(lang)
	}
	for _, e := range l.Clinic.Extras {
		v.Clinic.Extras = append(v.Clinic.Extras, ExtraView{Code: e.Code, Price: e.Price, Unit: e.Unit, Taxable: e.Taxable})
	}
	doc := document.FromTreatment(t)
	v.Trial, v.Eligibility = doc.Trial, doc.Eligibility
	for _, d := range t.DoseOptions {
		total, _ := t.Total(d)
		v.DoseOptions = append(v.DoseOptions, DoseView{Cells: d.Cells, Culture: d.Culture, Price: total})
		if v.PriceFrom == nil || total.Amount < v.PriceFrom.Amount {
			p := total
			v.PriceFrom = &p
		}
	}
	if v.PriceFrom != nil && display != "" && display != money.JPY {
		if d, err := rates.FromJPY(*v.PriceFrom, display); err == nil {
			v.DisplayPriceFrom = &d
		}
	}
	return v
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
