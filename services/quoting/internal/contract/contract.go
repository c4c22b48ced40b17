// Package contract maps between quoting's domain and the event contracts
// (proto/saisei/*/v1) it consumes and publishes.
package contract

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/events/quotingv1"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/quoting/internal/domain"
)

// Treatment converts a catalog snapshot into the read model.
func Treatment(e *catalogv1.TreatmentChanged) (domain.Treatment, error) {
	pb := e.GetTreatment()
	if pb == nil || pb.GetId() == "" || pb.GetPlan() == nil || pb.GetPrices() == nil || pb.GetClinic() == nil {
		return domain.Treatment{}, fmt.Errorf("treatment snapshot is incomplete")
	}
	from, err1 := time.Parse(time.DateOnly, pb.GetPlan().GetValidFrom())
	until, err2 := time.Parse(time.DateOnly, pb.GetPlan().GetValidUntil())
	if err1 != nil || err2 != nil {
		return domain.Treatment{}, fmt.Errorf("treatment %s: plan dates are not YYYY-MM-DD", pb.GetId())
	}
	p, c, r := pb.GetPrices(), pb.GetClinic(), pb.GetEligibility()
	t := domain.Treatment{
		ID: pb.GetId(), Name: pb.GetName(), Names: pb.GetNames(), Conditions: pb.GetConditions(),
		ClinicID: c.GetId(), ClinicName: c.GetName(),
		PlanNumber: pb.GetPlan().GetNumber(), RiskClass: pb.GetPlan().GetRiskClass(), PlanStatus: pb.GetPlan().GetStatus(),
		PlanValidFrom: from, PlanValidUntil: until, Trial: pb.GetTrial() != nil,
		CellType: pb.GetCellType(), CellSource: pb.GetCellSource(), Autologous: pb.GetAutologous(), Routes: pb.GetRoutes(),
		Sessions: int(pb.GetSessions()), CultureDaysMin: int(pb.GetCultureDaysMin()), CultureDaysMax: int(pb.GetCultureDaysMax()),
		Visits: int(pb.GetVisits()),
		Eligibility: domain.Rules{RequiresConfirmedDiagnosis: r.GetRequiresConfirmedDiagnosis(), MinCancerFreeYears: int(r.GetMinCancerFreeYears()),
			OrganDisease: r.GetOrganDisease(), ExcludesSeveredCord: r.GetExcludesSeveredCord()},
		DepositPolicy: domain.DepositPolicy{Covers: c.GetDepositPolicy().GetCovers(), FullWithoutCulture: c.GetDepositPolicy().GetFullWithoutCulture()},
		Revision:      e.GetRevision(),
	}
	// A snapshot without a policy (from a catalog before policies) has no
	// fee: version 0.
	t.CancellationPolicy = domain.CancellationPolicy{CancellationFee: money.Yen(0)}
	if cp := c.GetCancellationPolicy(); cp != nil {
		fee, err := Yen(cp.GetCancellationFee())
		if err != nil {
			return t, fmt.Errorf("treatment %s: cancellation fee: %w", pb.GetId(), err)
		}
		t.CancellationPolicy = domain.CancellationPolicy{Version: int(cp.GetVersion()), CancellationFee: fee}
	}
	if w := r.GetInjuryWindow(); w != nil {
		t.Eligibility.InjuryWindow = &domain.InjuryWindow{MinDays: int(w.GetMinDays()), MaxMonths: int(w.GetMaxMonths())}
	}
	var errs [4]error
	t.Consultation, errs[0] = Yen(p.GetConsultation())
	t.Harvest, errs[1] = Yen(p.GetHarvest())
	t.QualityTesting, errs[2] = Yen(p.GetQualityTesting())
	t.AdministrationPerSession, errs[3] = Yen(p.GetAdministrationPerSession())
	for _, err := range errs {
		if err != nil {
			return t, fmt.Errorf("treatment %s: %w", t.ID, err)
		}
	}
	for _, d := range pb.GetDoseOptions() {
		culture, err := Yen(d.GetCulture())
		if err != nil {
			return t, fmt.Errorf("treatment %s: %w", t.ID, err)
		}
		t.Doses = append(t.Doses, domain.Dose{Cells: d.GetCells(), Culture: culture})
	}
	for _, x := range c.GetExtras() {
		price, err := Yen(x.GetPrice())
		if err != nil {
			return t, fmt.Errorf("treatment %s: extra %s: %w", t.ID, x.GetCode(), err)
		}
		t.Extras = append(t.Extras, domain.Extra{Code: x.GetCode(), Price: price, Unit: x.GetUnit(), Taxable: x.GetTaxable()})
	}
	return t, nil
}

// Yen reads a wire amount that must be JPY.
func Yen(m *commonv1.Money) (money.Money, error) {
	v, err := wire.FromMoney(m)
	if err != nil || v.Currency != money.JPY {
		return money.Money{}, fmt.Errorf("price in %q, want JPY", m.GetCurrency())
	}
	return v, nil
}

// QuoteIssued announces a new quote or revision.
func QuoteIssued(q domain.Quote) bus.Event {
	ev := &quotingv1.QuoteIssued{
		QuoteId: q.ID, TreatmentId: q.TreatmentID, ClinicId: q.ClinicID, Total: wire.Money(q.Total), Tax: wire.Money(q.Tax),
		DisplayTotal: wire.Money(q.DisplayTotal), ValidUntil: timestamppb.New(q.ValidUntil),
		Version: int32(q.Version), Supersedes: q.Supersedes, Eligibility: q.Eligibility.Status,
		Patient: &commonv1.Patient{Name: q.Patient.Name, Email: q.Patient.Email, Country: q.Patient.Country,
			Language: q.Patient.Language, Subject: q.PatientSubject},
		TreatmentName: q.TreatmentName, ClinicName: q.ClinicName,
	}
	if q.Status != domain.StatusIneligible {
		ev.Deposit, ev.Balance = wire.Money(q.Deposit), wire.Money(q.Balance)
	}
	return bus.Event{ID: "quote:" + q.ID + ":issued", Subject: subject.Quote(q.ClinicID, subject.QuoteIssued), Message: ev}
}

// QuoteAccepted announces that a booking took the quote.
func QuoteAccepted(q domain.Quote) bus.Event {
	return bus.Event{
		ID:      "quote:" + q.ID + ":accepted",
		Subject: subject.Quote(q.ClinicID, subject.QuoteAccepted),
		Message: &quotingv1.QuoteAccepted{QuoteId: q.ID, BookingId: q.BookingID, ClinicId: q.ClinicID},
	}
}

// QuoteWithdrawn announces that a quote can no longer be booked.
func QuoteWithdrawn(q domain.Quote, t domain.Treatment) bus.Event {
	return bus.Event{
		ID:      "quote:" + q.ID + ":withdrawn",
		Subject: subject.Quote(q.ClinicID, subject.QuoteWithdrawn),
		Message: &quotingv1.QuoteWithdrawn{QuoteId: q.ID, TreatmentId: q.TreatmentID, ClinicId: q.ClinicID,
			PlanNumber: t.PlanNumber, PlanStatus: t.PlanStatus},
	}
}
