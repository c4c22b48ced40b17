package domain

import (
	"testing"

	"github.com/saisei-health/platform/pkg/money"
)

// BenchmarkIssue prices a quote: itemization, deposit split and currency
// conversion, without I/O.
func BenchmarkIssue(b *testing.B) {
	t, rates := adiposeStroke(), DefaultRates()
	req := Request{DoseCells: 100_000_000, Currency: money.KRW, Patient: patient}
	for b.Loop() {
		if _, err := Issue("q", t, req, rates, DefaultDepositPolicy, issuedAt); err != nil {
			b.Fatal(err)
		}
	}
}
