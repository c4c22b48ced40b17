package domain

import (
	"testing"

	"github.com/saisei-health/platform/pkg/fx"
	"github.com/saisei-health/platform/pkg/money"
)

// BenchmarkIssue prices a quote: itemization with extras, tax, deposit
// split, screening and currency conversion, without I/O.
func BenchmarkIssue(b *testing.B) {
	t, rates := adiposeStroke(), fx.Default()
	req := Request{DoseCells: 100_000_000, Currency: money.KRW, Patient: patient, Screening: fit(),
		Extras: []ExtraRequest{{"hotel", 7}, {"rehabilitation", 1}}}
	for b.Loop() {
		if _, err := Issue("q", t, req, rates, issuedAt); err != nil {
			b.Fatal(err)
		}
	}
}
