package money

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Rate is a fixed exchange rate: one unit (major) of Base costs Price units
// (major) of Quote. "1 USD = 150.25 JPY" is Rate{Base: USD, Quote: JPY, Price: "150.25"}.
//
// Price is kept as the decimal string it was published with and evaluated with
// exact rational arithmetic, so a conversion never passes through a float.
type Rate struct {
	Base  Currency
	Quote Currency
	price *big.Rat
	text  string
}

// ErrBadRate reports a rate that is not a positive decimal.
var ErrBadRate = errors.New("exchange rate must be a positive decimal")

// ParseRate builds a Rate from a decimal string such as "150.25" or "0.1093".
func ParseRate(base, quote Currency, price string) (Rate, error) {
	price = strings.TrimSpace(price)
	if !base.Valid() || !quote.Valid() {
		return Rate{}, fmt.Errorf("%w: %s/%s", ErrUnknownCurrency, base, quote)
	}
	if price == "" || strings.ContainsAny(price, "eE/+-") {
		return Rate{}, fmt.Errorf("%w: %q", ErrBadRate, price)
	}
	r, ok := new(big.Rat).SetString(price)
	if !ok || r.Sign() <= 0 {
		return Rate{}, fmt.Errorf("%w: %q", ErrBadRate, price)
	}
	return Rate{Base: base, Quote: quote, price: r, text: price}, nil
}

// Price is the rate as published, e.g. "150.25".
func (r Rate) Price() string { return r.text }

// Identity is the 1:1 rate of a currency with itself.
func Identity(c Currency) Rate {
	return Rate{Base: c, Quote: c, price: big.NewRat(1, 1), text: "1"}
}

// Convert expresses m (in Base or Quote) in the other currency of the rate,
// rounding half away from zero to the target's minor unit.
func (r Rate) Convert(m Money) (Money, error) {
	if r.price == nil {
		return Money{}, ErrBadRate
	}
	var target Currency
	// factor converts major units of m into major units of target.
	factor := new(big.Rat)
	switch m.Currency {
	case r.Base:
		target = r.Quote
		factor.Set(r.price)
	case r.Quote:
		target = r.Base
		factor.Inv(r.price)
	default:
		return Money{}, fmt.Errorf("%w: rate %s/%s cannot convert %s", ErrCurrencyMismatch, r.Base, r.Quote, m.Currency)
	}
	// minor_target = minor_src / 10^exp_src * factor * 10^exp_tgt
	v := new(big.Rat).SetInt64(m.Amount)
	v.Mul(v, factor)
	v.Mul(v, new(big.Rat).SetFrac(pow10(target.Exponent()), pow10(m.Currency.Exponent())))
	amount, err := roundHalfAway(v)
	if err != nil {
		return Money{}, err
	}
	return Money{Amount: amount, Currency: target}, nil
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

func roundHalfAway(v *big.Rat) (int64, error) {
	num, den := new(big.Int).Set(v.Num()), v.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if rem.Mul(rem, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return q.Int64(), nil
}
