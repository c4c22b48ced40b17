package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
)

const (
	exosomeID = "ginza-exosome-parkinsons"
	trialID   = "kyoto-univ-ips-dopaminergic-parkinsons-trial"
)

// quote asks for a quote until quoting knows the treatment, and returns its
// answer, whatever it is.
func (p *platform) quote(t *testing.T, req QuoteRequest) Result[Quote] {
	t.Helper()
	var q Result[Quote]
	devtest.Eventually(t, "quoting to answer", func() bool {
		q = p.IssueQuote(t, req)
		return q.Status != 422 || !q.Problem.Mentions("in the catalog")
	})
	return q
}

func TestCatalogAndQuotingRulesThroughTheGateway(t *testing.T) {
	p := startPlatform(t)
	base := QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "KRW", Patient: patient}
	screened := func(s Screening) QuoteRequest {
		r := base
		r.Screening = &s
		return r
	}

	t.Run("search, languages and the country comparison", func(t *testing.T) {
		r := p.SearchTreatments(t, "condition=parkinsons&lang=ko&limit=2").Expect(t, 200)
		items := r.Value.Items
		must(t, len(items) == 2 && r.Value.NextCursor != nil, fmt.Sprintf("first page: %s", r.Raw))
		first := items[0]
		must(t, first.Language == "ko" && len(first.Conditions) > 0 && first.Conditions[0] == "parkinsons" &&
			first.ConditionNames["parkinsons"] == "파킨슨병", "Korean names")
		next := p.SearchTreatments(t, "condition=parkinsons&lang=ko&limit=2&cursor="+url.QueryEscape(*r.Value.NextCursor)).Expect(t, 200)
		must(t, len(next.Value.Items) > 0 && next.Value.Items[0].ID != first.ID, "second page continues")

		ja := p.TreatmentIn(t, treatmentID, "ja-JP,en;q=0.5").Expect(t, 200)
		must(t, ja.Value.Language == "ja" && !strings.Contains(ja.Value.Name, "Adipose"), "Japanese via Accept-Language")

		trials := p.SearchTreatments(t, "bookable=false&condition=parkinsons").Expect(t, 200)
		i := slices.IndexFunc(trials.Value.Items, func(tr Treatment) bool { return tr.ID == trialID })
		must(t, i >= 0, fmt.Sprintf("trial listed: %s", trials.Raw))
		trial := trials.Value.Items[i]
		must(t, trial.Trial != nil && trial.Trial.Institution != "" && trial.Plan.RiskClass == "I", "trial listed, class I")

		// $10,000 – $20,000, shown in dollars: every item has a dose inside.
		priced := p.SearchTreatments(t, "price_currency=USD&min_price=1000000&max_price=2000000&limit=100").Expect(t, 200)
		must(t, len(priced.Value.Items) > 0, "some treatments cost $10k–$20k")
		for _, it := range priced.Value.Items {
			from := it.DisplayPriceFrom
			must(t, from != nil && from.Currency == "USD" && from.Amount <= 2_000_000, fmt.Sprintf("%s from %+v", it.ID, from))
		}
		text := p.SearchTreatments(t, "q=脊髄損傷&bookable=true").Expect(t, 200)
		for _, it := range text.Value.Items {
			must(t, it.Condition == "spinal_cord_injury", fmt.Sprintf("%s matched 脊髄損傷", it.ID))
		}
		must(t, len(text.Value.Items) > 0, "Japanese full-text search")
		bad := p.SearchTreatments(t, "route=oral&price_currency=BTC&limit=1000").Expect(t, 422)
		for _, f := range []string{"route", "price_currency", "limit"} {
			must(t, bad.Problem.Names(f), "names "+f)
		}

		cmp := p.PriceComparison(t, "stroke", "currency=USD").Expect(t, 200)
		countries := map[string]bool{}
		for _, c := range cmp.Value.Countries {
			countries[c.Country] = true
		}
		must(t, countries["JP"] && countries["US"] && countries["MX"] && countries["TR"], fmt.Sprintf("stroke comparison %s", cmp.Raw))
		jp := cmp.Value.Countries[0]
		must(t, jp.Min == Money{1_500_000, "USD"} && jp.Max == Money{4_500_000, "USD"}, "Japan $15,000 – $45,000")
		p.PriceComparison(t, "baldness", "").Expect(t, 404)
	})

	t.Run("an ineligible screening is quoted but cannot be booked", func(t *testing.T) {
		q := p.quote(t, screened(Screening{DiagnosisConfirmed: ptr(true), CancerFreeYears: ptr(2), SevereOrganDisease: ptr(false), CanTravel: ptr(true)}))
		must(t, q.Status == 201 && q.Value.Status == "ineligible" && q.Value.Deposit == nil && q.Value.Balance == nil,
			fmt.Sprintf("ineligible quote: %s", q.Raw))
		reasons := q.Value.Eligibility.Reasons
		must(t, len(reasons) == 1 && reasons[0].Code == "recent_cancer", "reason given")
		r := p.Book(t, q.Value.ID, uuid.NewString())
		must(t, r.Status == 422 && r.Problem.Slug() == "quote-ineligible", fmt.Sprintf("booking: %d %s", r.Status, r.Raw))
	})

	t.Run("a quote needing review is booked only after the clinic's revision", func(t *testing.T) {
		v1 := p.quote(t, base) // no screening: a clinician must look
		must(t, v1.Status == 201 && v1.Value.Eligibility.Status == "needs_review", fmt.Sprintf("v1 %s", v1.Raw))
		r := p.Book(t, v1.Value.ID, uuid.NewString())
		must(t, r.Status == 409 && r.Problem.Slug() == "quote-needs-review", fmt.Sprintf("booking v1: %d %s", r.Status, r.Raw))

		v2 := p.ReviseQuote(t, v1.Value.ID, RevisionRequest{DoseCells: ptr(int64(200_000_000)), Note: "MRI reviewed; higher dose advised",
			Eligibility: &Eligibility{Status: "eligible", Reasons: []Reason{{Code: "clinician_review", Outcome: "eligible", Message: "Records reviewed"}}},
		}).Expect(t, 201)
		must(t, v2.Value.Version == 2 && v2.Value.Supersedes == v1.Value.ID && v2.Value.Eligibility.Status == "eligible", fmt.Sprintf("v2 %s", v2.Raw))
		must(t, v2.Value.Total.Amount > v1.Value.Total.Amount, "the higher dose costs more")
		old := p.Book(t, v1.Value.ID, uuid.NewString())
		must(t, old.Status == 409 && old.Problem.Slug() == "quote-superseded" && v2.Value.ID != "" && strings.Contains(old.Problem.Detail, v2.Value.ID),
			fmt.Sprintf("booking v1 after revision: %d %s", old.Status, old.Raw))
		must(t, p.Quote(t, v1.Value.ID).Expect(t, 200).Value.Status == "superseded", "v1 superseded")
		booked := p.Book(t, v2.Value.ID, uuid.NewString())
		must(t, booked.Status == 201, fmt.Sprintf("booking v2: %d %s", booked.Status, booked.Raw))
		must(t, v2.Value.Deposit != nil && booked.Value.Deposit.Amount == *v2.Value.Deposit, "deposit of v2")
	})

	t.Run("a trial is never quoted", func(t *testing.T) {
		r := p.quote(t, QuoteRequest{TreatmentID: trialID, DoseCells: 1, Currency: "JPY", Patient: patient, Screening: &fit})
		must(t, r.Status == 422 && r.Problem.Slug() == "treatment-not-bookable", fmt.Sprintf("trial quote: %d %s", r.Status, r.Raw))
	})

	t.Run("a product with no culture stage is paid in full up front and needs no harvest", func(t *testing.T) {
		tr := p.Treatment(t, exosomeID).Expect(t, 200)
		must(t, len(tr.Value.DoseOptions) > 0, fmt.Sprintf("doses of %s: %s", exosomeID, tr.Raw))
		doseCells := tr.Value.DoseOptions[0].Cells
		q := p.quote(t, QuoteRequest{TreatmentID: exosomeID, DoseCells: doseCells, Currency: "JPY", Patient: patient, Screening: &fit})
		must(t, q.Status == 201 && q.Value.Deposit != nil && q.Value.Balance != nil && *q.Value.Deposit == q.Value.Total &&
			*q.Value.Balance == yen(0) && q.Has("requires_harvest") && !q.Value.RequiresHarvest, fmt.Sprintf("full up front: %s", q.Raw))
		deposit := q.Value.Deposit.Amount
		created := p.Book(t, q.Value.ID, uuid.NewString())
		must(t, created.Status == 201, fmt.Sprintf("booked: %s", created.Raw))
		id := created.Value.ID
		payload, sig := stripeEvent(t, "evt_exo_"+id, "payment_intent.succeeded", paymentIntent{ID: created.Value.Deposit.PaymentIntentID,
			Amount: deposit, AmountReceived: deposit, Currency: "jpy", Status: "succeeded", PaymentMethod: "pm_exo"})
		p.StripeWebhook(t, payload, sig)
		p.waitForStatus(t, id, "confirmed")
		p.ReportHarvest(t, id).Expect(t, 409)
		ready := p.ReportCellsReady(t, id, CellsReport{CellCount: doseCells, ViabilityPct: 100, Sterility: "pass", Endotoxin: "pass"}).Expect(t, 200)
		must(t, ready.Value.Status == "ready_for_administration", fmt.Sprintf("straight to administration: %s", ready.Raw))
		fin := p.Finance(t, id).Expect(t, 200).Value
		must(t, fin.Balance.Status == "not_required" && fin.Settled, fmt.Sprintf("finance %+v", fin))
		_, charged := findRequest(p.stripe.Requests(), "POST", "/v1/payment_intents", "booking:"+id+":balance")
		must(t, !charged, "no balance charge")
	})

	t.Run("a quote past its validity cannot be booked", func(t *testing.T) {
		q := p.quote(t, screened(fit))
		must(t, q.Status == 201, string(q.Raw))
		validUntil := q.Value.ValidUntil
		p.clock.Advance(time.Until(validUntil) + time.Minute)
		defer p.clock.Advance(-(time.Until(validUntil) + time.Minute))
		must(t, p.Quote(t, q.Value.ID).Expect(t, 200).Value.Status == "expired", "reads as expired")
		r := p.Book(t, q.Value.ID, uuid.NewString())
		must(t, r.Status == 409 && r.Problem.Slug() == "quote-expired", fmt.Sprintf("booking an expired quote: %d %s", r.Status, r.Raw))
	})

	t.Run("suspending a plan stops bookings at once and withdraws open quotes", func(t *testing.T) {
		plan := p.Treatment(t, treatmentID).Expect(t, 200).Value.PlanNumber
		open := p.quote(t, screened(fit))
		must(t, open.Status == 201, string(open.Raw))

		p.PatchPlan(t, plan, map[string]any{"status": "suspended"}, anonymous).Expect(t, 401)
		bad := p.PatchPlan(t, plan, map[string]any{"status": "paused"}, admin()).Expect(t, 422)
		must(t, bad.Problem.Names("status"), "bad status named")
		p.PatchPlan(t, plan, map[string]any{"status": "suspended"}, admin()).Expect(t, 200)
		defer func() { p.PatchPlan(t, plan, map[string]any{"status": "active"}, admin()).Expect(t, 200) }()

		// At once: the catalog says so, and booking asks the catalog.
		now := p.Treatment(t, treatmentID).Expect(t, 200)
		must(t, now.Has("bookable") && !now.Value.Bookable && now.Value.Plan.Status == "suspended", "unbookable at once")
		r := p.Book(t, open.Value.ID, uuid.NewString())
		must(t, r.Status == 409 && (r.Problem.Slug() == "treatment-not-bookable" || r.Problem.Slug() == "quote-withdrawn"),
			fmt.Sprintf("booking under a suspended plan: %d %s", r.Status, r.Raw))
		// Within a second, quoting follows: new quotes refused, open ones withdrawn.
		devtest.Eventually(t, "quoting to refuse new quotes", func() bool {
			q := p.IssueQuote(t, screened(fit))
			return q.Status == 422 && q.Problem.Slug() == "treatment-not-bookable"
		})
		devtest.Eventually(t, "the open quote to be withdrawn", func() bool {
			q := p.Quote(t, open.Value.ID)
			return q.Status == 200 && q.Value.Status == "withdrawn"
		})
		r = p.Book(t, open.Value.ID, uuid.NewString())
		must(t, r.Status == 409 && r.Problem.Slug() == "quote-withdrawn", fmt.Sprintf("booking a withdrawn quote: %d %s", r.Status, r.Raw))
	})

	t.Run("operators create clinics, plans and treatments with validation", func(t *testing.T) {
		clinic := ClinicDocument{ID: "osaka-test-clinic", Names: map[string]string{"en": "Osaka Test Clinic", "ja": "大阪テストクリニック"},
			Kind: "clinic", City: "osaka", MHLWRegistration: "27-1234567", Languages: []string{"ja", "en"},
			DepositPolicy: DepositPolicy{Covers: []string{"consultation", "harvest", "cell_culture", "quality_testing"}, FullWithoutCulture: false},
			Extras:        []ExtraDocument{{Code: "hotel", Price: 20000, Unit: "night", Taxable: true}}}
		p.CreateClinic(t, clinic, anonymous).Expect(t, 401)
		clinic.City = "nagoya"
		bad := p.CreateClinic(t, clinic, admin()).Expect(t, 422)
		must(t, bad.Problem.Names("city"), "city named")
		clinic.City = "osaka"
		p.CreateClinic(t, clinic, admin()).Expect(t, 201)
		p.CreateClinic(t, clinic, admin()).Expect(t, 409)
		p.CreatePlan(t, PlanDocument{Number: "PB5269999", ClinicID: "osaka-test-clinic", RiskClass: "II",
			Therapy: "Autologous adipose MSC, intra-articular, knee osteoarthritis", Committee: "Osaka Certified Committee No. 1",
			CPC: CPC{Name: "Osaka Cell Lab", InHouse: false}, ValidFrom: "2026-01-01", ValidUntil: "2028-12-31", Status: "active"}, admin()).Expect(t, 201)
		treatment := TreatmentDocument{ID: "osaka-test-knee", ClinicID: "osaka-test-clinic", PlanNumber: "PB5269999",
			Names: map[string]string{"en": "Adipose MSC for knee osteoarthritis"}, Descriptions: map[string]string{"en": "One injection per knee."},
			Conditions: []string{"knee_osteoarthritis"}, CellType: "msc", CellSource: "adipose", Autologous: true,
			Routes: []string{"intra_articular"}, Sessions: 1, CultureDays: DayRange{Min: 21, Max: 28}, Visits: 2,
			TypicalStayDays: 2, FollowUpMonths: []int{1, 3, 6}, Included: []string{"Certificate of analysis"},
			Prices:      PricesDocument{Consultation: 50000, Harvest: 200000, QualityTesting: 50000, AdministrationPerSession: 300000},
			DoseOptions: []DoseDocument{{Cells: 50000000, Culture: 700000}},
			Eligibility: EligibilityRules{RequiresConfirmedDiagnosis: true, MinCancerFreeYears: 5, OrganDisease: "review", ExcludesSeveredCord: false, InjuryWindow: nil},
			Trial:       nil}
		p.CreateTreatment(t, treatment, admin()).Expect(t, 201)
		kneeQuote := QuoteRequest{TreatmentID: "osaka-test-knee", DoseCells: 50000000, Currency: "JPY", Patient: patient, Screening: &fit}
		// Quoting follows within a second.
		devtest.Eventually(t, "quoting to quote the new treatment", func() bool {
			q := p.IssueQuote(t, kneeQuote)
			// Until quoting has seen the treatment it refuses the quote.
			return q.Status == 201 && q.Value.Total.Amount == 1_430_000 // (50k + 200k + 700k + 50k + 300k) × 1.1
		})
		// A price change reaches quoting too.
		p.PatchTreatment(t, "osaka-test-knee", map[string]any{"prices": map[string]any{
			"consultation": 50000, "harvest": 200000, "quality_testing": 50000, "administration_per_session": 400000}}, admin()).Expect(t, 200)
		devtest.Eventually(t, "quoting to use the new price", func() bool {
			q := p.IssueQuote(t, kneeQuote)
			return q.Status == 201 && q.Value.Total.Amount == 1_540_000
		})
		badPatch := p.PatchTreatment(t, "osaka-test-knee", map[string]any{"routes": []any{"oral"}, "sessions": 0}, admin()).Expect(t, 422)
		must(t, badPatch.Problem.Names("routes") && badPatch.Problem.Names("sessions"), string(badPatch.Raw))
		unknown := p.PatchTreatment(t, "osaka-test-knee", map[string]any{"colour": "blue"}, admin()).Expect(t, 400)
		must(t, unknown.Problem.Names("colour"), string(unknown.Raw))
	})
}
