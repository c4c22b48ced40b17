package wire

import (
	"testing"

	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/money"
)

func TestMoneyRoundTrips(t *testing.T) {
	for _, m := range []money.Money{money.Yen(1_900_000), money.New(1234, money.USD), money.New(27_840_000, money.KRW)} {
		got, err := FromMoney(Money(m))
		if err != nil || got != m {
			t.Fatalf("%v → %v, %v", m, got, err)
		}
	}
	if _, err := FromMoney(&commonv1.Money{Amount: 1, Currency: "XXX"}); err == nil {
		t.Fatal("unknown currency accepted")
	}
}
