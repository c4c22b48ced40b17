package domain

import "github.com/saisei-health/platform/pkg/money"

// CountryPrice is what a treatment costs in one country, as the source
// articles estimate it (USD). OpenEnded marks a "+" upper bound.
type CountryPrice struct {
	Country    string // ISO 3166-1 alpha-2
	Min        money.Money
	Max        money.Money
	OpenEnded  bool
	Regulation string
}

func usd(dollars int64) money.Money { return money.New(dollars*100, money.USD) }

// PriceComparisons are the articles' country comparisons per condition
// (shared/domain.md). Conditions without a published comparison have none.
var PriceComparisons = map[string][]CountryPrice{
	"spinal_cord_injury": {
		{"JP", usd(15_000), usd(130_000), true, "Government licensed (ASRM plans) or approved (PMD Act)"},
		{"US", usd(25_000), usd(100_000), true, "Clinical trials only"},
		{"CN", usd(20_000), usd(40_000), false, "Restricted / grey area"},
		{"MX", usd(10_000), usd(25_000), false, "Variable regulation"},
	},
	"stroke": {
		{"JP", usd(15_000), usd(45_000), false, "High (MHLW regulated)"},
		{"US", usd(25_000), usd(60_000), true, "Very high (trials only)"},
		{"MX", usd(5_000), usd(18_000), false, "Moderate"},
		{"TR", usd(4_000), usd(15_000), false, "Moderate"},
	},
}
