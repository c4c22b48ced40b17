// Package money holds amounts as integer minor units of an ISO 4217 currency.
//
// There is no float anywhere in this package: ¥500 is Amount 500 (JPY has no
// minor unit), $12.34 is Amount 1234. Arithmetic refuses to mix currencies and
// reports int64 overflow instead of wrapping.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Currency is an upper-case ISO 4217 code the platform supports.
type Currency string

// The currencies the platform prices in (JPY) or displays in.
const (
	JPY Currency = "JPY"
	KRW Currency = "KRW"
	USD Currency = "USD"
	EUR Currency = "EUR"
	CNY Currency = "CNY"
	TWD Currency = "TWD"
	GBP Currency = "GBP"
	AUD Currency = "AUD"
)

type currencyInfo struct {
	exponent int    // digits after the decimal point in the minor unit
	symbol   string // prefix used when formatting for people
}

var known = map[Currency]currencyInfo{
	JPY: {0, "¥"},
	KRW: {0, "₩"},
	USD: {2, "US$"},
	EUR: {2, "€"},
	CNY: {2, "CN¥"},
	TWD: {2, "NT$"},
	GBP: {2, "£"},
	AUD: {2, "A$"},
}

// Errors callers can test for with errors.Is.
var (
	ErrUnknownCurrency  = errors.New("unknown currency")
	ErrCurrencyMismatch = errors.New("currency mismatch")
	ErrOverflow         = errors.New("amount overflows int64")
)

// ParseCurrency accepts a code in any letter case and returns it canonical.
func ParseCurrency(s string) (Currency, error) {
	c := Currency(strings.ToUpper(strings.TrimSpace(s)))
	if _, ok := known[c]; !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownCurrency, s)
	}
	return c, nil
}

// Exponent is the number of decimal digits of the currency's minor unit.
func (c Currency) Exponent() int { return known[c].exponent }

// Valid reports whether the platform supports the currency.
func (c Currency) Valid() bool { _, ok := known[c]; return ok }

// Money is an amount in minor units of Currency.
type Money struct {
	Amount   int64    `json:"amount"`
	Currency Currency `json:"currency"`
}

// New returns amount minor units of c.
func New(amount int64, c Currency) Money { return Money{Amount: amount, Currency: c} }

// Yen is shorthand for a JPY amount; JPY has no minor unit, so yen == minor units.
func Yen(amount int64) Money { return Money{Amount: amount, Currency: JPY} }

// Zero returns a zero amount of c.
func Zero(c Currency) Money { return Money{Currency: c} }

func (m Money) IsZero() bool     { return m.Amount == 0 }
func (m Money) IsNegative() bool { return m.Amount < 0 }
func (m Money) IsPositive() bool { return m.Amount > 0 }

// Add returns m+o; both must be the same currency.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrCurrencyMismatch, m.Currency, o.Currency)
	}
	if (o.Amount > 0 && m.Amount > math.MaxInt64-o.Amount) || (o.Amount < 0 && m.Amount < math.MinInt64-o.Amount) {
		return Money{}, ErrOverflow
	}
	return Money{Amount: m.Amount + o.Amount, Currency: m.Currency}, nil
}

// Sub returns m-o; both must be the same currency.
func (m Money) Sub(o Money) (Money, error) {
	if o.Amount == math.MinInt64 {
		return Money{}, ErrOverflow
	}
	return m.Add(Money{Amount: -o.Amount, Currency: o.Currency})
}

// Mul returns m*n.
func (m Money) Mul(n int64) (Money, error) {
	if m.Amount != 0 && n != 0 {
		p := m.Amount * n
		if p/n != m.Amount || (m.Amount == -1 && n == math.MinInt64) || (n == -1 && m.Amount == math.MinInt64) {
			return Money{}, ErrOverflow
		}
		return Money{Amount: p, Currency: m.Currency}, nil
	}
	return Money{Currency: m.Currency}, nil
}

// Sum adds amounts of currency c; an empty list sums to zero.
func Sum(c Currency, ms ...Money) (Money, error) {
	total := Zero(c)
	for _, m := range ms {
		var err error
		if total, err = total.Add(m); err != nil {
			return Money{}, err
		}
	}
	return total, nil
}

// Decimal renders the amount in major units without grouping: "1234.50", "1900000".
func (m Money) Decimal() string {
	exp := m.Currency.Exponent()
	neg := m.Amount < 0
	// Work on the magnitude as uint64 so MinInt64 renders correctly.
	mag := uint64(m.Amount)
	if neg {
		mag = uint64(-(m.Amount + 1)) + 1
	}
	digits := strconv.FormatUint(mag, 10)
	if exp > 0 {
		for len(digits) <= exp {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// String is for logs: "1900000 JPY", "12.34 USD".
func (m Money) String() string { return m.Decimal() + " " + string(m.Currency) }

// Format is for people: "¥1,900,000", "US$12,345.67".
func (m Money) Format() string {
	d := m.Decimal()
	sign := ""
	if strings.HasPrefix(d, "-") {
		sign, d = "-", d[1:]
	}
	intPart, frac, hasFrac := strings.Cut(d, ".")
	var b strings.Builder
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := sign + known[m.Currency].symbol + b.String()
	if hasFrac {
		out += "." + frac
	}
	return out
}

// UnmarshalJSON insists on a whole-number amount and a supported currency, so a
// request carrying 12.5 or "usd$" fails loudly instead of being rounded.
func (m *Money) UnmarshalJSON(b []byte) error {
	var raw struct {
		Amount   json.RawMessage `json:"amount"`
		Currency string          `json:"currency"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	// ParseInt rejects quotes, fractions and exponents: only a bare integer passes.
	amount, err := strconv.ParseInt(string(raw.Amount), 10, 64)
	if err != nil {
		return fmt.Errorf("amount must be an integer number of minor units, got %s", raw.Amount)
	}
	c, err := ParseCurrency(raw.Currency)
	if err != nil {
		return err
	}
	*m = Money{Amount: amount, Currency: c}
	return nil
}
