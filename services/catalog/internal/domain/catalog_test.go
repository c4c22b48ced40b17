package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/validation"
)

func day(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }

func stroke() Treatment {
	return Treatment{
		ID: "ginza-adipose-msc-stroke", ClinicID: "tokyo-ginza", PlanNumber: "PB3230045",
		Names: Text{"en": "Adipose MSC for stroke"}, Descriptions: Text{"en": "Mini-liposuction, culture, IV."},
		Conditions: []string{"stroke"}, CellType: "msc", CellSource: "adipose", Autologous: true, Routes: []string{"iv"},
		Sessions: 1, CultureDaysMin: 21, CultureDaysMax: 35, Visits: 2, TypicalStayDays: 5,
		Prices: PriceList{Consultation: money.Yen(100_000), Harvest: money.Yen(300_000),
			QualityTesting: money.Yen(100_000), AdministrationPerSession: money.Yen(1_100_000)},
		DoseOptions: []DoseOption{{Cells: 100_000_000, Culture: money.Yen(1_400_000)}, {Cells: 200_000_000, Culture: money.Yen(2_400_000)}},
		Eligibility: EligibilityRules{RequiresConfirmedDiagnosis: true, MinCancerFreeYears: 5, OrganDisease: "review"},
	}
}

func TestTotalAddsEveryPartOfTheProtocol(t *testing.T) {
	tr := stroke()
	d, err := tr.Dose(100_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Total(d); got != money.Yen(3_000_000) {
		t.Fatalf("total = %v, want ¥3,000,000", got)
	}
	tr.Sessions = 3
	if got, _ := tr.Total(d); got != money.Yen(5_200_000) {
		t.Fatalf("3 sessions total = %v, want ¥5,200,000", got)
	}
	if _, err := tr.Dose(50_000_000); !errors.Is(err, ErrUnknownDose) {
		t.Fatalf("unknown dose err = %v", err)
	}
}

func TestBookableOnlyWhileThePlanIsLawfulAndNeverATrial(t *testing.T) {
	plan := Plan{Number: "PB3230045", RiskClass: "II", Status: "active", ValidFrom: day("2024-04-01"), ValidUntil: day("2027-03-31")}
	cases := []struct {
		name  string
		plan  func(*Plan)
		treat func(*Treatment)
		on    string
		want  bool
	}{
		{"active, in validity", nil, nil, "2026-11-25", true},
		{"first day", nil, nil, "2024-04-01", true},
		{"last day", nil, nil, "2027-03-31", true},
		{"day after expiry", nil, nil, "2027-04-01", false},
		{"before start", nil, nil, "2024-03-31", false},
		{"suspended", func(p *Plan) { p.Status = "suspended" }, nil, "2026-11-25", false},
		{"withdrawn", func(p *Plan) { p.Status = "withdrawn" }, nil, "2026-11-25", false},
		{"class I", func(p *Plan) { p.RiskClass = "I"; p.Number = "PA3230045" }, nil, "2026-11-25", false},
		{"a trial", nil, func(t *Treatment) { t.Trial = &Trial{Institution: "Kyoto University Hospital", Status: "completed"} }, "2026-11-25", false},
	}
	for _, c := range cases {
		p, tr := plan, stroke()
		if c.plan != nil {
			c.plan(&p)
		}
		if c.treat != nil {
			c.treat(&tr)
		}
		if got := (Listing{Treatment: tr, Plan: p}).Bookable(day(c.on)); got != c.want {
			t.Errorf("%s: bookable = %v, want %v", c.name, got, c.want)
		}
	}
}

func fieldsOf(err error) []string {
	var fields []string
	if err == nil {
		return nil
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe validation.FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	return fields
}

func TestValidateNamesTheBadField(t *testing.T) {
	tr := stroke()
	tr.Conditions = []string{"baldness"}
	tr.Routes = []string{"iv", "oral"}
	tr.Visits = 1 // autologous cultured cells need two visits
	tr.DoseOptions = append(tr.DoseOptions, DoseOption{Cells: 100_000_000, Culture: money.Yen(1)})
	tr.Eligibility.InjuryWindow = &InjuryWindow{MinDays: 31, MaxMonths: 6}
	got := strings.Join(fieldsOf(tr.Validate()), ",")
	if got != "conditions,routes,visits,eligibility.injury_window,dose_options" {
		t.Fatalf("fields = %s", got)
	}
	if err := stroke().Validate(); err != nil {
		t.Fatalf("valid treatment: %v", err)
	}
	p := Plan{Number: "PB3230045", RiskClass: "III", Status: "active", Therapy: "x", Committee: "y", CPCName: "z", ValidFrom: day("2024-01-01"), ValidUntil: day("2025-01-01")}
	if got := fieldsOf(p.Validate()); len(got) != 1 || got[0] != "risk_class" {
		t.Fatalf("class III on a PB number: %v", got)
	}
	c := Clinic{ID: "tokyo-x", Names: Text{"en": "X", "fr": "X"}, Kind: "clinic", City: "nagoya", MHLWRegistration: "13-1",
		DepositPolicy: DepositPolicy{Covers: LineCodes}, CancellationPolicy: CancellationPolicy{CancellationFee: money.New(500, money.USD)},
		Extras: []Extra{{Code: "hotel", Unit: "day", Price: money.Yen(20_000)}, {Code: "spa", Unit: "once", Price: money.Yen(1)}}}
	if got := strings.Join(fieldsOf(c.Validate()), ","); got != "names,city,cancellation_policy.cancellation_fee,deposit_policy.covers,extras[0].unit,extras[1].code" {
		t.Fatalf("clinic fields = %s", got)
	}
}

func TestTrialsNeedNoPricesButMustNotBeSold(t *testing.T) {
	tr := stroke()
	tr.Trial = &Trial{Institution: "Kyoto University Hospital", Status: "completed", Phase: "I/II", Participants: 7}
	tr.Prices = PriceList{money.Yen(0), money.Yen(0), money.Yen(0), money.Yen(0)}
	if got := fieldsOf(tr.Validate()); len(got) != 1 || got[0] != "dose_options" {
		t.Fatalf("trial with doses: %v", got)
	}
	tr.DoseOptions = nil
	if err := tr.Validate(); err != nil {
		t.Fatalf("trial: %v", err)
	}
}

func TestPickLanguage(t *testing.T) {
	cases := []struct{ param, header, want string }{
		{"ko", "ja", "ko"},
		{"", "ja-JP,en;q=0.8", "ja"},
		{"", "zh-Hans-CN;q=0.9, en", "zh"},
		{"fr", "de, ko;q=0.5", "ko"},
		{"", "", "en"},
		{"ZH_tw", "", "zh"},
	}
	for _, c := range cases {
		if got := PickLanguage(c.param, c.header); got != c.want {
			t.Errorf("PickLanguage(%q, %q) = %q, want %q", c.param, c.header, got, c.want)
		}
	}
	if (Text{"en": "Stroke", "ja": "脳卒中"}).In("ko") != "Stroke" {
		t.Fatal("fallback to English")
	}
}

func TestTextAndPricesAreBounded(t *testing.T) {
	tr := stroke()
	tr.Names = Text{"en": strings.Repeat("n", MaxNameLength+1), "ja": "幹細胞\x00"}
	tr.Descriptions = Text{"en": "One infusion.\nTwo weeks' stay."}
	tr.Included = []string{"Interpreter", strings.Repeat("i", MaxLabelLength+1)}
	tr.Prices.AdministrationPerSession = money.Yen(MaxPrice + 1)
	got := strings.Join(fieldsOf(tr.Validate()), ",")
	if got != "names.en,names.ja,included[1],prices.administration_per_session" {
		t.Fatalf("fields = %s", got)
	}
	p := Plan{Number: "PB3230045", RiskClass: "II", Status: "active", Therapy: strings.Repeat("t", MaxLabelLength+1),
		Committee: "y", CPCName: "z\n", ValidFrom: day("2024-01-01"), ValidUntil: day("2025-01-01")}
	if got := strings.Join(fieldsOf(p.Validate()), ","); got != "therapy,cpc.name" {
		t.Fatalf("plan fields = %s", got)
	}
}
