// Package search answers the frontends' treatment searches from an
// in-memory index of the whole catalog. The catalog is small (thousands of
// treatments) and read far more than written, so every replica holds it all
// and rebuilds it when Postgres announces a change; a search is then a scan
// of precomputed fields with no I/O (p99 well under 20 ms at 10,000
// treatments, see the benchmark).
package search

import (
	"encoding/base64"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

// MaxLimit bounds a page.
const MaxLimit = 100

// Query selects treatments; zero fields match everything.
type Query struct {
	Condition  string
	City       string
	CellSource string
	Route      string
	// Language the clinic speaks with patients.
	Language   string
	Autologous *bool
	Bookable   *bool
	// MinJPY and MaxJPY keep treatments with a dose priced inside the range.
	MinJPY, MaxJPY *int64
	// Text must appear, word by word, in a name, description, clinic or
	// condition name, in any language.
	Text  string
	Limit int
	// After is the cursor of the previous page.
	After string
	// Day is the Japanese date bookability is judged on.
	Day time.Time
}

// Page is one page of results in id order.
type Page struct {
	Items []domain.Listing
	// Next is the cursor of the following page, empty on the last.
	Next string
}

type entry struct {
	listing domain.Listing
	text    string
	grams   bloom
	totals  []int64
}

// bloom records which byte pairs occur in an entry's text. A search term
// whose pairs are not all present cannot occur, so most non-matching
// entries are skipped without scanning their text.
type bloom [16]uint64

func pairBit(a, b byte) (word int, bit uint64) {
	h := (uint32(a)*0x9E3779B1 ^ uint32(b)*0x85EBCA77) >> 22 // 10 bits: 0..1023
	return int(h >> 6), 1 << (h & 63)
}

func bloomOf(s string) (f bloom) {
	for i := 0; i+1 < len(s); i++ {
		w, bit := pairBit(s[i], s[i+1])
		f[w] |= bit
	}
	return f
}

// covers reports whether every pair of term may be in f.
func (f *bloom) covers(term *bloom) bool {
	for i := range f {
		if term[i]&^f[i] != 0 {
			return false
		}
	}
	return true
}

// Index is an immutable snapshot of the catalog.
type Index struct {
	entries []entry // ordered by treatment id
	BuiltAt time.Time
}

// Build indexes listings.
func Build(ls []domain.Listing, now time.Time) *Index {
	ix := &Index{entries: make([]entry, 0, len(ls)), BuiltAt: now}
	for _, l := range ls {
		ix.entries = append(ix.entries, newEntry(l))
	}
	sort.Slice(ix.entries, func(i, j int) bool { return ix.entries[i].listing.Treatment.ID < ix.entries[j].listing.Treatment.ID })
	return ix
}

// Stale lists the treatments of revisions (id → revision, the whole
// catalog) that ix does not hold at that revision: new or changed since.
func (ix *Index) Stale(revisions map[string]int64) []string {
	held := make(map[string]int64, len(ix.entries))
	for _, e := range ix.entries {
		held[e.listing.Treatment.ID] = e.listing.Treatment.Revision
	}
	var stale []string
	for id, rev := range revisions {
		if r, ok := held[id]; !ok || r != rev {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	return stale
}

// Update returns an index of the treatments in revisions: ix's entries for
// the others are kept as they are, and fresh are the listings of the stale
// ones (Stale), indexed anew. A treatment's revision grows with every
// change to it, its plan or its clinic, so an entry at the same revision
// is still right. Treatments no longer in revisions are dropped.
func (ix *Index) Update(revisions map[string]int64, fresh []domain.Listing, now time.Time) *Index {
	next := &Index{entries: make([]entry, 0, len(revisions)), BuiltAt: now}
	renewed := make(map[string]bool, len(fresh))
	for _, l := range fresh {
		renewed[l.Treatment.ID] = true
		next.entries = append(next.entries, newEntry(l))
	}
	for _, e := range ix.entries {
		id := e.listing.Treatment.ID
		if _, listed := revisions[id]; listed && !renewed[id] {
			next.entries = append(next.entries, e)
		}
	}
	sort.Slice(next.entries, func(i, j int) bool {
		return next.entries[i].listing.Treatment.ID < next.entries[j].listing.Treatment.ID
	})
	return next
}

// newEntry indexes one listing: its folded text, the text's byte-pair
// filter and its dose totals.
func newEntry(l domain.Listing) entry {
	e := entry{listing: l}
	var b strings.Builder
	for _, texts := range []domain.Text{l.Treatment.Names, l.Treatment.Descriptions, l.Clinic.Names} {
		for _, s := range texts {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	for _, c := range l.Treatment.Conditions {
		for _, s := range domain.ConditionNames[c] {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	e.text = Normalize(b.String())
	e.grams = bloomOf(e.text)
	for _, d := range l.Treatment.DoseOptions {
		if total, err := l.Treatment.Total(d); err == nil {
			e.totals = append(e.totals, total.Amount)
		}
	}
	return e
}

// Normalize folds width and case so "ＭＳＣ", "msc" and "MSC" match, and
// leaves CJK text as it is (it is matched as a substring).
func Normalize(s string) string { return strings.ToLower(norm.NFKC.String(s)) }

// Len is the number of indexed treatments.
func (ix *Index) Len() int { return len(ix.entries) }

// ErrBadCursor is returned for a cursor this index did not issue.
var ErrBadCursor = errors.New("cursor is not valid")

// EncodeCursor and DecodeCursor make the position opaque to clients.
func EncodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// DecodeCursor reads a cursor.
func DecodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !domain.ValidID(string(b)) {
		return "", ErrBadCursor
	}
	return string(b), nil
}

// Search returns one page of matches.
func (ix *Index) Search(q Query) (Page, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = 20
	}
	start := 0
	if q.After != "" {
		after, err := DecodeCursor(q.After)
		if err != nil {
			return Page{}, err
		}
		start = sort.Search(len(ix.entries), func(i int) bool { return ix.entries[i].listing.Treatment.ID > after })
	}
	terms := strings.Fields(Normalize(q.Text))
	grams := make([]bloom, len(terms))
	for i, t := range terms {
		grams[i] = bloomOf(t)
	}
	var page Page
	for i := start; i < len(ix.entries); i++ {
		e := &ix.entries[i]
		if !q.matches(e, terms, grams) {
			continue
		}
		if len(page.Items) == q.Limit {
			page.Next = EncodeCursor(page.Items[len(page.Items)-1].Treatment.ID)
			break
		}
		page.Items = append(page.Items, e.listing)
	}
	return page, nil
}

func (q Query) matches(e *entry, terms []string, grams []bloom) bool {
	l := &e.listing
	t := &l.Treatment
	switch {
	case q.Condition != "" && !slices.Contains(t.Conditions, q.Condition):
		return false
	case q.City != "" && l.Clinic.City != q.City:
		return false
	case q.CellSource != "" && t.CellSource != q.CellSource:
		return false
	case q.Route != "" && !slices.Contains(t.Routes, q.Route):
		return false
	case q.Language != "" && !slices.Contains(l.Clinic.Languages, q.Language):
		return false
	case q.Autologous != nil && t.Autologous != *q.Autologous:
		return false
	case q.Bookable != nil && l.Bookable(q.Day) != *q.Bookable:
		return false
	}
	if q.MinJPY != nil || q.MaxJPY != nil {
		inRange := false
		for _, p := range e.totals {
			if (q.MinJPY == nil || p >= *q.MinJPY) && (q.MaxJPY == nil || p <= *q.MaxJPY) {
				inRange = true
				break
			}
		}
		if !inRange {
			return false
		}
	}
	for i, term := range terms {
		if !e.grams.covers(&grams[i]) || !strings.Contains(e.text, term) {
			return false
		}
	}
	return true
}
