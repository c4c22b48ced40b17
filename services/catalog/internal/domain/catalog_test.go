package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

func day(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }

func stroke() Treatment {
	return Treatment{
		ID: "ginza-adipose-msc-stroke", ClinicID: "tokyo-ginza", PlanNumber: "PB3230045", Name: "Adipose MSC for stroke",
		Condition: "stroke", CellSource: "adipose", Autologous: true, Routes: []string{"iv"}, Sessions: 1,
		CultureDaysMin: 21, CultureDaysMax: 35,
		Prices: PriceList{Consultation: money.Yen(100_000), Harvest: money.Yen(300_000),
			QualityTesting: money.Yen(100_000), AdministrationPerSession: money.Yen(1_100_000)},
		DoseOptions: []DoseOption{{Cells: 100_000_000, Culture: money.Yen(1_400_000)}, {Cells: 200_000_000, Culture: money.Yen(2_400_000)}},
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

func TestBookableOnlyWhileThePlanIsLawful(t *testing.T) {
	plan := Plan{Number: "PB3230045", RiskClass: "II", Status: "active", ValidFrom: day("2024-04-01"), ValidUntil: day("2027-03-31")}
	cases := []struct {
		name string
		edit func(*Plan)
		on   string
		want bool
	}{
		{"active, in validity", func(*Plan) {}, "2026-11-25", true},
		{"first day", func(*Plan) {}, "2024-04-01", true},
		{"last day", func(*Plan) {}, "2027-03-31", true},
		{"day after expiry", func(*Plan) {}, "2027-04-01", false},
		{"before start", func(*Plan) {}, "2024-03-31", false},
		{"suspended", func(p *Plan) { p.Status = "suspended" }, "2026-11-25", false},
		{"withdrawn", func(p *Plan) { p.Status = "withdrawn" }, "2026-11-25", false},
		{"class I is a trial", func(p *Plan) { p.RiskClass = "I"; p.Number = "PA3230045" }, "2026-11-25", false},
	}
	for _, c := range cases {
		p := plan
		c.edit(&p)
		if got := (Listing{Treatment: stroke(), Plan: p}).Bookable(day(c.on).Add(13 * time.Hour)); got != c.want {
			t.Errorf("%s: bookable = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestValidateNamesTheBadField(t *testing.T) {
	tr := stroke()
	tr.Condition = "baldness"
	tr.Routes = []string{"iv", "oral"}
	tr.DoseOptions = append(tr.DoseOptions, DoseOption{Cells: 100_000_000, Culture: money.Yen(1)})
	err := tr.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	want := []string{"condition", "routes", "dose_options"}
	if len(fields) != len(want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	for i := range want {
		if fields[i] != want[i] {
			t.Fatalf("fields = %v, want %v", fields, want)
		}
	}
	if err := stroke().Validate(); err != nil {
		t.Fatalf("valid treatment: %v", err)
	}
	p := Plan{Number: "PB3230045", RiskClass: "III", Status: "active", CPCName: "x", ValidFrom: day("2024-01-01"), ValidUntil: day("2025-01-01")}
	if err := p.Validate(); err == nil {
		t.Fatal("class III on a PB (class II) number must fail")
	}
}
