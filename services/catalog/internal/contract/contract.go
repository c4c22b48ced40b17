// Package contract maps the catalog's domain onto its published event
// contract (proto/saisei/catalog/v1).
package contract

import (
	"strconv"
	"time"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

// Subject is where a treatment's snapshots are published.
func Subject(treatmentID string) string { return "catalog.v1.treatments." + treatmentID }

// TreatmentChanged is the event announcing l's current revision. Its id is
// deterministic, so announcing the same revision twice publishes it once.
func TreatmentChanged(l domain.Listing, day time.Time) bus.Event {
	t := l.Treatment
	pb := &catalogv1.Treatment{
		Id: t.ID, Name: t.Name, Condition: t.Condition, Description: t.Description,
		Clinic: &catalogv1.Clinic{Id: l.Clinic.ID, Name: l.Clinic.Name, City: l.Clinic.City},
		Plan: &catalogv1.Plan{Number: l.Plan.Number, RiskClass: l.Plan.RiskClass, Status: l.Plan.Status,
			ValidFrom: l.Plan.ValidFrom.Format(time.DateOnly), ValidUntil: l.Plan.ValidUntil.Format(time.DateOnly)},
		CellSource: t.CellSource, Autologous: t.Autologous, Routes: t.Routes, Sessions: int32(t.Sessions),
		CultureDaysMin: int32(t.CultureDaysMin), CultureDaysMax: int32(t.CultureDaysMax),
		Prices: &catalogv1.PriceList{
			Consultation: wire.Money(t.Prices.Consultation), Harvest: wire.Money(t.Prices.Harvest),
			QualityTesting: wire.Money(t.Prices.QualityTesting), AdministrationPerSession: wire.Money(t.Prices.AdministrationPerSession),
		},
		Bookable: l.Bookable(day),
	}
	for _, d := range t.DoseOptions {
		total, _ := t.Total(d)
		pb.DoseOptions = append(pb.DoseOptions, &catalogv1.DoseOption{Cells: d.Cells, Culture: wire.Money(d.Culture), Total: wire.Money(total)})
	}
	return bus.Event{
		ID:      "treatment:" + t.ID + ":rev:" + strconv.FormatInt(t.Revision, 10),
		Subject: Subject(t.ID),
		Message: &catalogv1.TreatmentChanged{Treatment: pb, Revision: t.Revision},
	}
}
