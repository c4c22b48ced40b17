// Package wire converts the platform's domain values to and from their
// protobuf event form (pkg/events), in one place.
package wire

import (
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/money"
)

// Money is m in its wire form.
func Money(m money.Money) *commonv1.Money {
	return &commonv1.Money{Amount: m.Amount, Currency: string(m.Currency)}
}

// FromMoney reads a wire amount, refusing an unknown currency.
func FromMoney(m *commonv1.Money) (money.Money, error) {
	c, err := money.ParseCurrency(m.GetCurrency())
	if err != nil {
		return money.Money{}, err
	}
	return money.New(m.GetAmount(), c), nil
}
