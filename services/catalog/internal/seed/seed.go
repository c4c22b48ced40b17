// Package seed is the catalog the platform starts with: licensed clinics in
// Tokyo, Osaka and Kyoto, their provision plans and treatments, with JPY
// prices drawn from the domain notes (shared/domain.md).
package seed

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
	"github.com/saisei-health/platform/services/catalog/internal/service"
)

//go:embed catalog.json
var catalogJSON []byte

type file struct {
	Clinics []struct {
		ID               string   `json:"id"`
		Name             string   `json:"name"`
		NameJA           string   `json:"name_ja"`
		City             string   `json:"city"`
		MHLWRegistration string   `json:"mhlw_registration"`
		Languages        []string `json:"languages"`
	} `json:"clinics"`
	Plans []struct {
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
	} `json:"plans"`
	Treatments []struct {
		ID          string   `json:"id"`
		ClinicID    string   `json:"clinic_id"`
		PlanNumber  string   `json:"plan_number"`
		Name        string   `json:"name"`
		Condition   string   `json:"condition"`
		Description string   `json:"description"`
		CellSource  string   `json:"cell_source"`
		Autologous  bool     `json:"autologous"`
		Routes      []string `json:"routes"`
		Sessions    int      `json:"sessions"`
		CultureDays struct {
			Min int `json:"min"`
			Max int `json:"max"`
		} `json:"culture_days"`
		Prices struct {
			Consultation             int64 `json:"consultation"`
			Harvest                  int64 `json:"harvest"`
			QualityTesting           int64 `json:"quality_testing"`
			AdministrationPerSession int64 `json:"administration_per_session"`
		} `json:"prices"`
		DoseOptions []struct {
			Cells   int64 `json:"cells"`
			Culture int64 `json:"culture"`
		} `json:"dose_options"`
	} `json:"treatments"`
}

// Catalog parses the embedded seed.
func Catalog() (service.Catalog, error) { return Parse(catalogJSON) }

// Parse reads a catalog in the seed's JSON format (JPY amounts as integers).
func Parse(b []byte) (service.Catalog, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return service.Catalog{}, fmt.Errorf("seed: %w", err)
	}
	var c service.Catalog
	for _, x := range f.Clinics {
		c.Clinics = append(c.Clinics, domain.Clinic{ID: x.ID, Name: x.Name, NameJA: x.NameJA, City: x.City,
			MHLWRegistration: x.MHLWRegistration, Languages: x.Languages})
	}
	for _, x := range f.Plans {
		from, err1 := time.Parse(time.DateOnly, x.ValidFrom)
		until, err2 := time.Parse(time.DateOnly, x.ValidUntil)
		if err1 != nil || err2 != nil {
			return c, fmt.Errorf("seed: plan %s: dates must be YYYY-MM-DD", x.Number)
		}
		c.Plans = append(c.Plans, domain.Plan{Number: x.Number, ClinicID: x.ClinicID, RiskClass: x.RiskClass,
			Therapy: x.Therapy, Committee: x.Committee, CPCName: x.CPC.Name, CPCInHouse: x.CPC.InHouse,
			ValidFrom: from, ValidUntil: until, Status: x.Status})
	}
	for _, x := range f.Treatments {
		t := domain.Treatment{ID: x.ID, ClinicID: x.ClinicID, PlanNumber: x.PlanNumber, Name: x.Name,
			Condition: x.Condition, Description: x.Description, CellSource: x.CellSource, Autologous: x.Autologous,
			Routes: x.Routes, Sessions: x.Sessions, CultureDaysMin: x.CultureDays.Min, CultureDaysMax: x.CultureDays.Max,
			Prices: domain.PriceList{
				Consultation: money.Yen(x.Prices.Consultation), Harvest: money.Yen(x.Prices.Harvest),
				QualityTesting: money.Yen(x.Prices.QualityTesting), AdministrationPerSession: money.Yen(x.Prices.AdministrationPerSession),
			}}
		for _, d := range x.DoseOptions {
			t.DoseOptions = append(t.DoseOptions, domain.DoseOption{Cells: d.Cells, Culture: money.Yen(d.Culture)})
		}
		c.Treatments = append(c.Treatments, t)
	}
	return c, nil
}
