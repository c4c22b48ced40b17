package domain

import (
	"fmt"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Rates is a table of exchange rates against JPY, as of one moment.
type Rates struct {
	AsOf  time.Time
	rates map[money.Currency]money.Rate
}

// DefaultRates is the static table used when no rate source is configured:
// JPY per one unit of each display currency. A quote locks the rate it used,
// so a later change of table never alters an issued quote.
func DefaultRates() Rates {
	table := map[money.Currency]string{
		money.USD: "151.20",
		money.EUR: "163.85",
		money.GBP: "195.40",
		money.AUD: "99.10",
		money.CNY: "21.05",
		money.TWD: "4.72",
		// Quoted the other way round for KRW: 9.28 won per yen.
	}
	r := Rates{AsOf: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), rates: map[money.Currency]money.Rate{}}
	for c, p := range table {
		rate, err := money.ParseRate(c, money.JPY, p)
		if err != nil {
			panic(err)
		}
		r.rates[c] = rate
	}
	krw, _ := money.ParseRate(money.JPY, money.KRW, "9.28")
	r.rates[money.KRW] = krw
	r.rates[money.JPY] = money.Identity(money.JPY)
	return r
}

// For returns the rate converting JPY into c.
func (r Rates) For(c money.Currency) (money.Rate, error) {
	rate, ok := r.rates[c]
	if !ok {
		return money.Rate{}, fmt.Errorf("%w: no rate for %s", money.ErrUnknownCurrency, c)
	}
	return rate, nil
}

// FX is the exchange rate locked into a quote, stated as the price of one
// unit of the base currency in the quote currency.
type FX struct {
	Currency money.Currency
	Base     money.Currency
	Quote    money.Currency
	Price    string
	AsOf     time.Time
}
