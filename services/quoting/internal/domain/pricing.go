package domain

// Pricing: the itemized lines of a quote, consumption tax, the clinic's
// deposit policy and the display currency. The quote's lifecycle is in
// quote.go.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/tokyo"
	"github.com/saisei-health/platform/pkg/validation"
)

// Line codes of an itemized quote.
const (
	LineConsultation   = "consultation"
	LineHarvest        = "harvest"
	LineCellCulture    = "cell_culture"
	LineQualityTesting = "quality_testing"
	LineAdministration = "administration"
	LineConsumptionTax = "consumption_tax"
)

// MaxChargeJPY is the most one card payment can take (Stripe's limit for
// JPY): a deposit or balance above it could never be paid, so such a quote
// is refused before anything is stored.
const MaxChargeJPY = 99_999_999

// ConsumptionTaxPercent is Japan's standard consumption tax rate. Self-pay
// (non-insured) medical care is taxable; the tax is computed once per quote
// on the total of the taxable lines and rounded down, as on an invoice.
const ConsumptionTaxPercent = 10

// Line is one item of a quote, in JPY.
type Line struct {
	Code        string      `json:"code"`
	Description string      `json:"description"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
	Amount      money.Money `json:"amount"`
	Taxable     bool        `json:"taxable"`
	// InDeposit marks the lines the deposit pays for.
	InDeposit bool `json:"in_deposit"`
}

// DepositPolicy says which lines a clinic takes as the deposit: what it
// spends before the cells are administered. FullWithoutCulture takes the
// whole price up front for protocols with no culture stage.
type DepositPolicy struct {
	Covers             []string `json:"covers"`
	FullWithoutCulture bool     `json:"full_without_culture"`
}

// DefaultDepositPolicy covers everything spent before administration.
var DefaultDepositPolicy = DepositPolicy{Covers: []string{LineConsultation, LineHarvest, LineCellCulture, LineQualityTesting}}

// CancellationPolicy is the clinic's, as the catalog publishes it: the fee
// for cancelling before the harvest, tax included, and its version.
type CancellationPolicy struct {
	Version         int         `json:"version"`
	CancellationFee money.Money `json:"cancellation_fee"`
}

// CancellationTerms are what a cancellation keeps, fixed with the price:
// the patient reads them on the quote and the booking keeps them.
//   - CancellationFee: cancelling before the harvest (the clinic's policy).
//   - ConsultationFee: found ineligible at the consultation (the
//     consultation line with its tax).
//   - CultureCost: cancelling once the culture started (the consultation,
//     harvest, culture and quality-testing lines with their tax).
//
// Tax is 10 % of each taxable part, rounded down.
type CancellationTerms struct {
	PolicyVersion   int         `json:"policy_version"`
	CancellationFee money.Money `json:"cancellation_fee"`
	ConsultationFee money.Money `json:"consultation_fee"`
	CultureCost     money.Money `json:"culture_cost"`
}

// cancellationTerms derives a quote's terms from its lines and the policy.
func cancellationTerms(lines []Line, policy CancellationPolicy) CancellationTerms {
	withTax := func(codes ...string) money.Money {
		var sum int64
		for _, l := range lines {
			if slices.Contains(codes, l.Code) {
				sum += l.Amount.Amount
				if l.Taxable {
					sum += l.Amount.Amount * ConsumptionTaxPercent / 100
				}
			}
		}
		return money.Yen(sum)
	}
	fee := policy.CancellationFee
	if fee.Currency == "" {
		fee = money.Yen(0)
	}
	return CancellationTerms{
		PolicyVersion: policy.Version, CancellationFee: fee,
		ConsultationFee: withTax(LineConsultation),
		CultureCost:     withTax(LineConsultation, LineHarvest, LineCellCulture, LineQualityTesting),
	}
}

// ExtraRequest is an optional extra the patient asks for.
type ExtraRequest struct {
	Code     string
	Quantity int
}

// FX is the exchange rate locked into a quote: one Base costs Price Quote.
type FX struct {
	Currency money.Currency
	Base     money.Currency
	Quote    money.Currency
	Price    string
	AsOf     time.Time
}

// price fills the lines, totals, deposit, display amount and validity.
func (q *Quote) price(t Treatment, doseCells int64, currency money.Currency, extras []ExtraRequest, rates fx.Table, now time.Time) error {
	var v validation.Validator
	dose, doseOK := t.Dose(doseCells)
	v.Check(doseOK, "dose_cells", fmt.Sprintf("must be one of %v", t.DoseCells()))
	rate, rateErr := rates.For(currency)
	v.Check(rateErr == nil, "currency", "must be one of JPY, USD, EUR, KRW, CNY, TWD, GBP, AUD")
	lines, err := itemize(t, dose, extras) // with a bad dose, still checks the extras
	v.Add(validation.Fields(err)...)
	if fields := v.Err(); fields != nil {
		return fields
	}
	if err != nil {
		return err
	}
	policy := t.DepositPolicy
	if len(policy.Covers) == 0 {
		policy = DefaultDepositPolicy
	}
	full := policy.FullWithoutCulture && !t.HasCultureStage()
	var subtotal, taxable, depositBase, depositTaxable money.Money = money.Zero(money.JPY), money.Zero(money.JPY), money.Zero(money.JPY), money.Zero(money.JPY)
	for i := range lines {
		l := &lines[i]
		l.InDeposit = full || slices.Contains(policy.Covers, l.Code)
		add := func(acc *money.Money, m money.Money) {
			if err == nil {
				*acc, err = acc.Add(m)
			}
		}
		add(&subtotal, l.Amount)
		if l.Taxable {
			add(&taxable, l.Amount)
		}
		if l.InDeposit {
			add(&depositBase, l.Amount)
			if l.Taxable {
				add(&depositTaxable, l.Amount)
			}
		}
	}
	if err != nil {
		return err
	}
	tax := money.Yen(taxable.Amount * ConsumptionTaxPercent / 100)
	depositTax := money.Yen(depositTaxable.Amount * ConsumptionTaxPercent / 100)
	total, err := subtotal.Add(tax)
	if err != nil {
		return err
	}
	deposit, err := depositBase.Add(depositTax)
	if err != nil {
		return err
	}
	balance, err := total.Sub(deposit)
	if err != nil {
		return err
	}
	if deposit.Amount > MaxChargeJPY || balance.Amount > MaxChargeJPY {
		return validation.FieldError{Field: "dose_cells", Message: fmt.Sprintf(
			"with these extras the deposit would be %s and the balance %s; one card payment takes at most ¥%d",
			deposit.Format(), balance.Format(), MaxChargeJPY)}
	}
	if !deposit.IsPositive() || (balance.IsZero() && !full) || balance.IsNegative() {
		return fmt.Errorf("deposit policy of clinic %s leaves deposit %s and balance %s", t.ClinicID, deposit, balance)
	}
	lines = append(lines, Line{Code: LineConsumptionTax, Quantity: 1, UnitPrice: tax, Amount: tax,
		Description: fmt.Sprintf("Consumption tax %d%% on taxable items of %s", ConsumptionTaxPercent, taxable.Format())})
	display, err := rate.Convert(total)
	if currency == money.JPY {
		display, err = total, nil
	}
	if err != nil {
		return err
	}
	q.TreatmentID, q.TreatmentName, q.TreatmentRevision = t.ID, t.Name, t.Revision
	q.ClinicID, q.ClinicName, q.DoseCells = t.ClinicID, t.ClinicName, dose.Cells
	q.Visits, q.RequiresHarvest = t.Visits, t.Harvest.IsPositive()
	q.Extras, q.Lines = extras, lines
	q.Cancellation = cancellationTerms(lines, t.CancellationPolicy)
	q.Subtotal, q.Tax, q.Total, q.Deposit, q.Balance = subtotal, tax, total, deposit, balance
	q.FX = FX{Currency: currency, Base: rate.Base, Quote: rate.Quote, Price: rate.Price(), AsOf: rates.AsOf}
	q.DisplayTotal = display
	q.Status = StatusIssued
	q.IssuedAt = now.UTC()
	q.ValidUntil = tokyo.EndOfDay(tokyo.Date(now).AddDate(0, 0, ValidityDays))
	return nil
}

var sourceNames = map[string]string{
	"adipose": "adipose-derived MSCs", "bone_marrow": "bone-marrow MSCs", "umbilical_cord": "umbilical-cord MSCs",
	"dental_pulp": "dental-pulp stem cells", "muse": "Muse cells", "nk_cells": "NK cells", "exosome": "exosome particles",
}

var harvestNames = map[string]string{
	"adipose":     "Adipose tissue harvest (mini-liposuction under local anaesthesia)",
	"bone_marrow": "Bone-marrow aspiration from the hip",
	"dental_pulp": "Dental pulp collection",
	"nk_cells":    "Blood draw for NK cell culture",
}

var routeNames = map[string]string{
	"iv": "intravenous infusion", "intrathecal": "intrathecal injection", "intranasal": "intranasal administration",
	"intra_articular": "intra-articular injection", "direct_injection": "direct injection",
}

var extraNames = map[string]string{
	"rehabilitation":   "Rehabilitation package",
	"cell_banking":     "Cell banking of surplus cells",
	"interpreter":      "Medical interpreter",
	"visa_guarantee":   "Guarantor service for the Visa for Medical Stay",
	"airport_transfer": "Airport medical transfer (accessible vehicle with attendant)",
	"hotel":            "Accessible hotel room near the clinic",
}

// ExtraUnits are the units each extra is counted in, and the most a quote
// may ask for.
var ExtraUnits = map[string]struct {
	Unit string
	Max  int
}{
	"rehabilitation": {"package", 1}, "cell_banking": {"year", 10}, "interpreter": {"day", 60},
	"visa_guarantee": {"once", 1}, "airport_transfer": {"trip", 4}, "hotel": {"night", 90},
}

func itemize(t Treatment, dose Dose, extras []ExtraRequest) ([]Line, error) {
	one := func(code, desc string, amount money.Money) Line {
		return Line{Code: code, Description: desc, Quantity: 1, UnitPrice: amount, Amount: amount, Taxable: true}
	}
	lines := []Line{one(LineConsultation, "Medical review of records and consultation, with interpreter", t.Consultation)}
	if t.Harvest.IsPositive() {
		name := harvestNames[t.CellSource]
		if name == "" {
			name = "Tissue harvest"
		}
		lines = append(lines, one(LineHarvest, name, t.Harvest))
	}
	culture := "Cell culture in a GCTP cell processing center"
	if !t.HasCultureStage() {
		culture = "Preparation of the cell product"
	} else if !t.Autologous {
		culture = "Expansion of banked donor cells"
	}
	lines = append(lines,
		one(LineCellCulture, fmt.Sprintf("%s: %s %s", culture, cellCount(dose.Cells), sourceNames[t.CellSource]), dose.Culture),
		one(LineQualityTesting, "Quality testing and certificate of analysis (sterility, endotoxin, cell count, viability)", t.QualityTesting),
	)
	admin, err := t.AdministrationPerSession.Mul(int64(t.Sessions))
	if err != nil {
		return nil, err
	}
	routes := make([]string, len(t.Routes))
	for i, r := range t.Routes {
		routes[i] = routeNames[r]
	}
	lines = append(lines, Line{Code: LineAdministration, Quantity: t.Sessions, UnitPrice: t.AdministrationPerSession, Amount: admin, Taxable: true,
		Description: fmt.Sprintf("Administration by %s, %d session(s)", strings.Join(routes, " and "), t.Sessions)})

	var errs []error
	seen := map[string]bool{}
	for i, x := range extras {
		field := fmt.Sprintf("extras[%d]", i)
		spec, known := ExtraUnits[x.Code]
		offer, offered := t.Extra(x.Code)
		switch {
		case !known:
			errs = append(errs, validation.FieldError{Field: field + ".code", Message: "must be one of rehabilitation, cell_banking, interpreter, visa_guarantee, airport_transfer, hotel"})
			continue
		case !offered:
			errs = append(errs, validation.FieldError{Field: field + ".code", Message: fmt.Sprintf("%s is not offered by %s", x.Code, t.ClinicName)})
			continue
		case seen[x.Code]:
			errs = append(errs, validation.FieldError{Field: field + ".code", Message: "is listed twice"})
			continue
		case x.Quantity < 1 || x.Quantity > spec.Max:
			errs = append(errs, validation.FieldError{Field: field + "." + spec.Unit + "s", Message: fmt.Sprintf("must be 1 to %d", spec.Max)})
			continue
		}
		seen[x.Code] = true
		amount, err := offer.Price.Mul(int64(x.Quantity))
		if err != nil {
			return nil, err
		}
		desc := extraNames[x.Code]
		if spec.Max > 1 {
			desc = fmt.Sprintf("%s, %d %s(s)", desc, x.Quantity, spec.Unit)
		}
		lines = append(lines, Line{Code: x.Code, Description: desc, Quantity: x.Quantity, UnitPrice: offer.Price, Amount: amount, Taxable: offer.Taxable})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return lines, nil
}

// cellCount renders 200000000 as "200 million".
func cellCount(n int64) string {
	switch {
	case n >= 1_000_000_000 && n%1_000_000_000 == 0:
		return fmt.Sprintf("%d billion", n/1_000_000_000)
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%d million", n/1_000_000)
	}
	return fmt.Sprintf("%d", n)
}
