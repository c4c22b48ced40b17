package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/saisei-health/platform/pkg/httpkit"
)

// Every problem type any service (or the gateway) can answer with is one a
// client can read about: listed with its status in docs/api.md, and by name
// in the README. The registry holds every type declared by the packages
// this test binary links, which are all of them.
func TestEveryProblemTypeIsDocumented(t *testing.T) {
	api, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	types := httpkit.ProblemTypes()
	if len(types) < 20 {
		t.Fatalf("only %d problem types registered: the services' tables were not linked in", len(types))
	}
	seen := map[string]bool{}
	for _, pt := range types {
		row := fmt.Sprintf("| `%s` | %d |", pt.Slug, pt.Status)
		if seen[row] {
			continue // one type declared by several services
		}
		seen[row] = true
		if !strings.Contains(string(api), row) {
			t.Errorf("docs/api.md has no row %q", row)
		}
		if !strings.Contains(string(readme), "`"+pt.Slug+"`") {
			t.Errorf("README.md does not name `%s`", pt.Slug)
		}
	}
}
