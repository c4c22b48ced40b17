// Package contract maps the catalog's domain onto its published event
// contract (proto/saisei/catalog/v1).
package contract

import (
	"strconv"
	"time"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

func plan(p domain.Plan) *catalogv1.Plan {
	return &catalogv1.Plan{Number: p.Number, RiskClass: p.RiskClass, Status: p.Status,
		ValidFrom: p.ValidFrom.Format(time.DateOnly), ValidUntil: p.ValidUntil.Format(time.DateOnly)}
}

func clinic(c domain.Clinic) *catalogv1.Clinic {
	pb := &catalogv1.Clinic{Id: c.ID, Name: c.Names.In("en"), Names: c.Names, City: c.City, Kind: c.Kind, Languages: c.Languages,
		DepositPolicy: &catalogv1.DepositPolicy{Covers: c.DepositPolicy.Covers, FullWithoutCulture: c.DepositPolicy.FullWithoutCulture},
		CancellationPolicy: &catalogv1.CancellationPolicy{Version: int32(c.CancellationPolicy.Version),
			CancellationFee: wire.Money(c.CancellationPolicy.CancellationFee)}}
	for _, e := range c.Extras {
		pb.Extras = append(pb.Extras, &catalogv1.Extra{Code: e.Code, Price: wire.Money(e.Price), Unit: e.Unit, Taxable: e.Taxable})
	}
	return pb
}

// TreatmentChanged is the event announcing l's current revision. Its id is
// deterministic, so announcing the same revision twice publishes it once.
func TreatmentChanged(l domain.Listing, day time.Time) bus.Event {
	t := l.Treatment
	pb := &catalogv1.Treatment{
		Id: t.ID, Name: t.Names.In("en"), Description: t.Descriptions.In("en"), Names: t.Names, Descriptions: t.Descriptions,
		Conditions: t.Conditions, Clinic: clinic(l.Clinic), Plan: plan(l.Plan),
		CellType: t.CellType, CellSource: t.CellSource, Autologous: t.Autologous, Routes: t.Routes, Sessions: int32(t.Sessions),
		CultureDaysMin: int32(t.CultureDaysMin), CultureDaysMax: int32(t.CultureDaysMax), Visits: int32(t.Visits),
		TypicalStayDays: int32(t.TypicalStayDays), Included: t.Included,
		Prices: &catalogv1.PriceList{
			Consultation: wire.Money(t.Prices.Consultation), Harvest: wire.Money(t.Prices.Harvest),
			QualityTesting: wire.Money(t.Prices.QualityTesting), AdministrationPerSession: wire.Money(t.Prices.AdministrationPerSession),
		},
		Eligibility: &catalogv1.EligibilityRules{RequiresConfirmedDiagnosis: t.Eligibility.RequiresConfirmedDiagnosis,
			MinCancerFreeYears: int32(t.Eligibility.MinCancerFreeYears), OrganDisease: t.Eligibility.OrganDisease,
			ExcludesSeveredCord: t.Eligibility.ExcludesSeveredCord},
		Bookable: l.Bookable(day),
	}
	for _, m := range t.FollowUpMonths {
		pb.FollowUpMonths = append(pb.FollowUpMonths, int32(m))
	}
	if w := t.Eligibility.InjuryWindow; w != nil {
		pb.Eligibility.InjuryWindow = &catalogv1.InjuryWindow{MinDays: int32(w.MinDays), MaxMonths: int32(w.MaxMonths)}
	}
	if tr := t.Trial; tr != nil {
		pb.Trial = &catalogv1.Trial{Institution: tr.Institution, Status: tr.Status, Phase: tr.Phase, RegistryId: tr.RegistryID, Participants: int32(tr.Participants)}
	}
	for _, d := range t.DoseOptions {
		total, _ := t.Total(d)
		pb.DoseOptions = append(pb.DoseOptions, &catalogv1.DoseOption{Cells: d.Cells, Culture: wire.Money(d.Culture), Total: wire.Money(total)})
	}
	return bus.Event{
		ID:      "treatment:" + t.ID + ":rev:" + strconv.FormatInt(t.Revision, 10),
		Subject: subject.Treatment(t.ID),
		Message: &catalogv1.TreatmentChanged{Treatment: pb, Revision: t.Revision},
	}
}

// PlanChanged announces a created or changed plan.
func PlanChanged(p domain.Plan, treatmentIDs []string, eventID string) bus.Event {
	return bus.Event{
		ID:      "plan:" + p.Number + ":" + eventID,
		Subject: subject.Plan(p.Number),
		Message: &catalogv1.PlanChanged{Plan: plan(p), ClinicId: p.ClinicID, TreatmentIds: treatmentIDs},
	}
}
