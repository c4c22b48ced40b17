package domain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinViabilityBP is the release threshold for cell viability: 70.00%.
const MinViabilityBP = 7000

// QualityReport is the certificate of analysis the clinic files before
// administration.
type QualityReport struct {
	CellCount int64
	// ViabilityBP is viability in hundredths of a percent (92.5% = 9250),
	// kept integral so it compares exactly.
	ViabilityBP     int32
	SterilityPassed bool
	EndotoxinPassed bool
	ReportedAt      time.Time
}

// Failures lists the release criteria the cells miss, for an ordered dose.
func (r QualityReport) Failures(orderedCells int64) []string {
	var out []string
	if !r.SterilityPassed {
		out = append(out, "sterility test failed")
	}
	if !r.EndotoxinPassed {
		out = append(out, "endotoxin test failed")
	}
	if r.ViabilityBP < MinViabilityBP {
		out = append(out, fmt.Sprintf("viability %s%% is below 70%%", FormatPercent(r.ViabilityBP)))
	}
	if r.CellCount < orderedCells {
		out = append(out, fmt.Sprintf("%d cells cultured, %d ordered", r.CellCount, orderedCells))
	}
	return out
}

// ParsePercent reads a percentage with at most two decimals ("92.5", "100")
// into hundredths of a percent without going through a float.
func ParsePercent(s string) (int32, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || (hasFrac && (frac == "" || len(frac) > 2)) {
		return 0, fmt.Errorf("must be a percentage with at most two decimals")
	}
	w, err := strconv.ParseUint(whole, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("must be a percentage with at most two decimals")
	}
	f := uint64(0)
	if hasFrac {
		for len(frac) < 2 {
			frac += "0"
		}
		if f, err = strconv.ParseUint(frac, 10, 8); err != nil {
			return 0, fmt.Errorf("must be a percentage with at most two decimals")
		}
	}
	bp := w*100 + f
	if bp > 10000 {
		return 0, fmt.Errorf("must be between 0 and 100")
	}
	return int32(bp), nil
}

// FormatPercent renders hundredths of a percent: 9250 → "92.5".
func FormatPercent(bp int32) string {
	s := fmt.Sprintf("%d.%02d", bp/100, bp%100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
