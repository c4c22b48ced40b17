// Package fx holds the exchange rates the platform displays prices with.
// Prices are JPY; a patient sees them in USD, EUR, KRW, CNY, TWD, GBP or AUD
// at a rate that a quote locks in. Rates come from a configurable source
// (FX_RATES) and fall back to a static table; they are decimal strings
// evaluated exactly, never floats.
package fx

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/saisei-health/platform/pkg/money"
)

// Table is a set of rates against JPY as of one moment.
type Table struct {
	AsOf  time.Time
	rates map[money.Currency]money.Rate
}

// defaultPrices is JPY per one unit of each display currency, as of
// defaultAsOf; KRW is quoted the other way round (won per yen) because
// one won is a fraction of a yen.
var defaultPrices = map[money.Currency]string{
	money.USD: "151.20",
	money.EUR: "163.85",
	money.GBP: "195.40",
	money.AUD: "99.10",
	money.CNY: "21.05",
	money.TWD: "4.72",
}

const defaultKRWPerJPY = "9.28"

var defaultAsOf = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// Default is the static table used when no source is configured.
func Default() Table {
	t, err := parse(defaultPrices, defaultKRWPerJPY, defaultAsOf)
	if err != nil {
		panic(err)
	}
	return t
}

func parse(perUnit map[money.Currency]string, krwPerJPY string, asOf time.Time) (Table, error) {
	t := Table{AsOf: asOf, rates: map[money.Currency]money.Rate{money.JPY: money.Identity(money.JPY)}}
	for c, p := range perUnit {
		r, err := money.ParseRate(c, money.JPY, p)
		if err != nil {
			return Table{}, fmt.Errorf("fx: %s: %w", c, err)
		}
		t.rates[c] = r
	}
	if krwPerJPY != "" {
		r, err := money.ParseRate(money.JPY, money.KRW, krwPerJPY)
		if err != nil {
			return Table{}, fmt.Errorf("fx: KRW: %w", err)
		}
		t.rates[money.KRW] = r
	}
	return t, nil
}

// Parse reads a table from its configuration form:
//
//	"as_of=2026-11-24T00:00:00Z USD=151.20 EUR=163.85 KRW=9.28/JPY …"
//
// Each CODE=PRICE is JPY per one unit of CODE; CODE=PRICE/JPY is units of
// CODE per yen (how KRW is usually quoted). Currencies left out keep the
// default rate.
func Parse(s string) (Table, error) {
	prices := map[money.Currency]string{}
	for c, p := range defaultPrices {
		prices[c] = p
	}
	krw, asOf := defaultKRWPerJPY, time.Now().UTC()
	for _, field := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return Table{}, fmt.Errorf("fx: %q is not CODE=PRICE", field)
		}
		if k == "as_of" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return Table{}, fmt.Errorf("fx: as_of: %w", err)
			}
			asOf = t.UTC()
			continue
		}
		c, err := money.ParseCurrency(k)
		if err != nil || c == money.JPY {
			return Table{}, fmt.Errorf("fx: %q is not a display currency", k)
		}
		if per, inverse := strings.CutSuffix(v, "/JPY"); inverse {
			if c != money.KRW {
				return Table{}, fmt.Errorf("fx: only KRW is quoted per yen")
			}
			krw = per
			continue
		}
		if c == money.KRW {
			return Table{}, errors.New("fx: quote KRW per yen: KRW=9.28/JPY")
		}
		prices[c] = v
	}
	return parse(prices, krw, asOf)
}

// For returns the rate between JPY and c.
func (t Table) For(c money.Currency) (money.Rate, error) {
	r, ok := t.rates[c]
	if !ok {
		return money.Rate{}, fmt.Errorf("%w: no rate for %s", money.ErrUnknownCurrency, c)
	}
	return r, nil
}

// ToJPY expresses an amount in yen at the table's rate.
func (t Table) ToJPY(m money.Money) (money.Money, error) {
	r, err := t.For(m.Currency)
	if err != nil {
		return money.Money{}, err
	}
	if m.Currency == money.JPY {
		return m, nil
	}
	return r.Convert(m)
}

// FromJPY expresses a yen amount in c at the table's rate.
func (t Table) FromJPY(m money.Money, c money.Currency) (money.Money, error) {
	if m.Currency != money.JPY {
		return money.Money{}, fmt.Errorf("%w: %s is not JPY", money.ErrCurrencyMismatch, m.Currency)
	}
	if c == money.JPY {
		return m, nil
	}
	r, err := t.For(c)
	if err != nil {
		return money.Money{}, err
	}
	return r.Convert(m)
}

// YenRange turns a price range stated in another currency into the exact
// range of yen prices whose displayed value falls inside it: a yen price P
// matches when lo ≤ FromJPY(P) ≤ hi. Conversion is monotonic, so the yen
// bounds are found by converting the bounds and stepping to the first (and
// last) yen amount that really displays inside. A nil bound is open.
func (t Table) YenRange(lo, hi *money.Money) (minJPY, maxJPY *int64, err error) {
	if lo != nil {
		v, err := t.edge(*lo, true)
		if err != nil {
			return nil, nil, err
		}
		minJPY = &v
	}
	if hi != nil {
		v, err := t.edge(*hi, false)
		if err != nil {
			return nil, nil, err
		}
		maxJPY = &v
	}
	return minJPY, maxJPY, nil
}

func (t Table) edge(bound money.Money, lower bool) (int64, error) {
	guess, err := t.ToJPY(bound)
	if err != nil {
		return 0, err
	}
	inside := func(p int64) (bool, error) {
		d, err := t.FromJPY(money.Yen(p), bound.Currency)
		if err != nil {
			return false, err
		}
		if lower {
			return d.Amount >= bound.Amount, nil
		}
		return d.Amount <= bound.Amount, nil
	}
	p := guess.Amount
	// Step outward while still inside, then inward until inside: a handful
	// of steps, since one minor unit of any display currency is worth at
	// most a few hundred yen.
	step := int64(-1)
	if !lower {
		step = 1
	}
	for i := 0; i < 100_000; i++ {
		ok, err := inside(p + step)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		p += step
	}
	for i := 0; i < 100_000; i++ {
		ok, err := inside(p)
		if err != nil {
			return 0, err
		}
		if ok {
			return p, nil
		}
		p -= step
	}
	return 0, errors.New("fx: price bound does not converge")
}
