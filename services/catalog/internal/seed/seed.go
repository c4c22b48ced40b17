// Package seed is the catalog the platform starts with: licensed clinics in
// Tokyo, Osaka and Kyoto with their provision plans, treatments, extras and
// deposit policies, two iPS clinical trials listed for information, all in
// English, Korean, Japanese and Chinese, with JPY prices drawn from the
// domain notes (shared/domain.md). The file is in the administration API's
// document format.
package seed

import (
	_ "embed"
	"fmt"

	"github.com/saisei-health/platform/services/catalog/internal/document"
	"github.com/saisei-health/platform/services/catalog/internal/service"
)

//go:embed catalog.json
var catalogJSON []byte

// Catalog parses the embedded seed.
func Catalog() (service.Catalog, error) { return Parse(catalogJSON) }

// Parse reads a catalog document into an importable catalog.
func Parse(b []byte) (service.Catalog, error) {
	doc, err := document.Parse(b)
	if err != nil {
		return service.Catalog{}, fmt.Errorf("seed: %w", err)
	}
	var c service.Catalog
	for _, x := range doc.Clinics {
		c.Clinics = append(c.Clinics, x.ToDomain())
	}
	for _, x := range doc.Plans {
		p, err := x.ToDomain()
		if err != nil {
			return c, fmt.Errorf("seed: plan %s: %w", x.Number, err)
		}
		c.Plans = append(c.Plans, p)
	}
	for _, x := range doc.Treatments {
		c.Treatments = append(c.Treatments, x.ToDomain())
	}
	return c, nil
}
