package search

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/services/catalog/internal/domain"
)

var today = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func listing(id, city, condition, source string, autologous bool, routes []string, langs []string, total int64, planStatus string) domain.Listing {
	return domain.Listing{
		Treatment: domain.Treatment{ID: id, Conditions: []string{condition}, CellSource: source, Autologous: autologous, Routes: routes, Sessions: 1,
			Names:        domain.Text{"en": "MSC therapy " + id, "ja": "幹細胞治療 " + id, "ko": "줄기세포 치료", "zh": "干细胞治疗"},
			Descriptions: domain.Text{"en": "Adipose-derived cells, cultured for four weeks."},
			Prices:       domain.PriceList{Consultation: money.Yen(0), Harvest: money.Yen(0), QualityTesting: money.Yen(0), AdministrationPerSession: money.Yen(total / 2)},
			DoseOptions:  []domain.DoseOption{{Cells: 1, Culture: money.Yen(total - total/2)}}},
		Clinic: domain.Clinic{ID: "c-" + city, City: city, Languages: langs, Names: domain.Text{"en": "Clinic " + city}},
		Plan:   domain.Plan{RiskClass: "II", Status: planStatus, ValidFrom: today.AddDate(-1, 0, 0), ValidUntil: today.AddDate(1, 0, 0)},
	}
}

func ids(p Page) []string {
	var out []string
	for _, l := range p.Items {
		out = append(out, l.Treatment.ID)
	}
	return out
}

func TestFiltersTextPriceAndPages(t *testing.T) {
	yes, no := true, false
	ix := Build([]domain.Listing{
		listing("a-stroke-tokyo", "tokyo", "stroke", "adipose", true, []string{"iv"}, []string{"ja", "en"}, 3_000_000, "active"),
		listing("b-knee-osaka", "osaka", "knee_osteoarthritis", "umbilical_cord", false, []string{"intra_articular"}, []string{"ja", "ko"}, 1_200_000, "active"),
		listing("c-stroke-kyoto", "kyoto", "stroke", "bone_marrow", true, []string{"iv", "intrathecal"}, []string{"ja", "zh"}, 5_000_000, "suspended"),
		listing("d-sci-tokyo", "tokyo", "spinal_cord_injury", "adipose", true, []string{"intrathecal"}, []string{"ja", "en", "ko"}, 9_000_000, "active"),
	}, today)
	min2m, max6m := int64(2_000_000), int64(6_000_000)
	cases := []struct {
		name string
		q    Query
		want []string
	}{
		{"all", Query{}, []string{"a-stroke-tokyo", "b-knee-osaka", "c-stroke-kyoto", "d-sci-tokyo"}},
		{"condition", Query{Condition: "stroke"}, []string{"a-stroke-tokyo", "c-stroke-kyoto"}},
		{"city", Query{City: "tokyo"}, []string{"a-stroke-tokyo", "d-sci-tokyo"}},
		{"cell source", Query{CellSource: "adipose"}, []string{"a-stroke-tokyo", "d-sci-tokyo"}},
		{"route", Query{Route: "intrathecal"}, []string{"c-stroke-kyoto", "d-sci-tokyo"}},
		{"language spoken", Query{Language: "ko"}, []string{"b-knee-osaka", "d-sci-tokyo"}},
		{"allogeneic", Query{Autologous: &no}, []string{"b-knee-osaka"}},
		{"bookable only", Query{Bookable: &yes}, []string{"a-stroke-tokyo", "b-knee-osaka", "d-sci-tokyo"}},
		{"not bookable", Query{Bookable: &no}, []string{"c-stroke-kyoto"}},
		{"price range", Query{MinJPY: &min2m, MaxJPY: &max6m}, []string{"a-stroke-tokyo", "c-stroke-kyoto"}},
		{"exact price edge", Query{MinJPY: ptr(3_000_000), MaxJPY: ptr(3_000_000)}, []string{"a-stroke-tokyo"}},
		{"English words", Query{Text: "four WEEKS"}, []string{"a-stroke-tokyo", "b-knee-osaka", "c-stroke-kyoto", "d-sci-tokyo"}},
		{"Japanese substring", Query{Text: "幹細胞"}, []string{"a-stroke-tokyo", "b-knee-osaka", "c-stroke-kyoto", "d-sci-tokyo"}},
		{"condition name in Korean", Query{Text: "뇌졸중"}, []string{"a-stroke-tokyo", "c-stroke-kyoto"}},
		{"full-width folds", Query{Text: "ＭＳＣ therapy d-sci"}, []string{"d-sci-tokyo"}},
		{"no match", Query{Text: "teeth"}, nil},
		{"combined", Query{Condition: "stroke", City: "kyoto", Bookable: &yes}, nil},
	}
	for _, c := range cases {
		c.q.Day = today
		page, err := ix.Search(c.q)
		if err != nil || !slices.Equal(ids(page), c.want) {
			t.Errorf("%s: %v %v, want %v", c.name, ids(page), err, c.want)
		}
	}

	// Two per page, in stable id order, until there is no next cursor.
	var all []string
	q := Query{Limit: 2, Day: today}
	for n := 0; n < 5; n++ {
		page, err := ix.Search(q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(page)...)
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if !slices.Equal(all, []string{"a-stroke-tokyo", "b-knee-osaka", "c-stroke-kyoto", "d-sci-tokyo"}) {
		t.Fatalf("paged %v", all)
	}
	if _, err := ix.Search(Query{After: "not base64 !"}); err != ErrBadCursor {
		t.Fatalf("bad cursor: %v", err)
	}
}

func ptr(v int64) *int64 { return &v }

// synthetic builds a catalog of n treatments with realistic text sizes.
func synthetic(n int) []domain.Listing {
	r := rand.New(rand.NewPCG(1, 2))
	cities := []string{"tokyo", "osaka", "kyoto"}
	sources := []string{"adipose", "bone_marrow", "umbilical_cord", "exosome"}
	routes := [][]string{{"iv"}, {"intrathecal"}, {"iv", "intrathecal"}, {"intra_articular"}}
	langs := [][]string{{"ja", "en"}, {"ja", "en", "zh"}, {"ja", "ko"}, {"ja", "en", "ko", "zh"}}
	desc := "Mesenchymal stem cells from the patient's own tissue are expanded for three to five weeks in a GCTP cell processing center and given by intravenous drip; follow-up at one, three and six months. "
	out := make([]domain.Listing, n)
	for i := range out {
		l := listing(fmt.Sprintf("t%05d-%s", i, cities[i%3]), cities[r.IntN(3)], domain.Conditions[r.IntN(4)], sources[r.IntN(4)],
			r.IntN(2) == 0, routes[r.IntN(4)], langs[r.IntN(4)], int64(800_000+r.IntN(150)*100_000), "active")
		l.Treatment.Descriptions = domain.Text{"en": desc + desc, "ja": "患者さま自身の組織から採取した間葉系幹細胞を3〜5週間培養し、点滴で投与します。" + fmt.Sprint(i),
			"ko": "환자 본인의 조직에서 채취한 중간엽 줄기세포를 3~5주 배양하여 정맥으로 투여합니다.", "zh": "从患者自身组织中提取的间充质干细胞经3至5周培养后静脉输注。"}
		out[i] = l
	}
	return out
}

// BenchmarkSearch measures search latency over 10,000 treatments with a mix
// of the frontends' queries and reports the 99th percentile.
func BenchmarkSearch(b *testing.B) {
	ix := Build(synthetic(10_000), today)
	yes := true
	lo, hi := int64(2_000_000), int64(6_000_000)
	queries := []Query{
		{Limit: 20},
		{Condition: "stroke", City: "tokyo", Limit: 20},
		{Condition: "parkinsons", Bookable: &yes, Language: "ko", Limit: 20},
		{MinJPY: &lo, MaxJPY: &hi, Route: "intrathecal", Limit: 20},
		{Text: "intravenous drip", Limit: 20},
		{Text: "間葉系幹細胞 t099", Limit: 20},
		{Text: "nothing matches this", Limit: 20}, // the worst case: a full scan
		{Condition: "knee_osteoarthritis", CellSource: "umbilical_cord", Text: "중간엽", Limit: 50},
	}
	latencies := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		q := queries[i%len(queries)]
		q.Day = today
		start := time.Now()
		if _, err := ix.Search(q); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
		i++
	}
	sort.Slice(latencies, func(a, c int) bool { return latencies[a] < latencies[c] })
	p := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(ix.Len()), "treatments")
}

// BenchmarkIndexMemory reports the heap an index of 10,000 treatments
// holds, listings included: what the catalog keeps in memory.
func BenchmarkIndexMemory(b *testing.B) {
	var held uint64
	for b.Loop() {
		before := heapInUse()
		ix := Build(synthetic(10_000), today)
		held = heapInUse() - before
		runtime.KeepAlive(ix)
	}
	b.ReportMetric(float64(held)/(1<<20), "heap-MB")
	b.ReportMetric(float64(held)/10_000, "B/treatment")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The treatments of one clinic share its decoded clinic, and a change to
// the clinic reaches every one of them: an update never keeps serving the
// clinic as it was.
func TestTreatmentsShareTheirClinicAndSeeItsChanges(t *testing.T) {
	a := listing("a-stroke-tokyo", "tokyo", "stroke", "adipose", true, []string{"iv"}, []string{"ja"}, 3_000_000, "active")
	b := listing("b-knee-tokyo", "tokyo", "knee_osteoarthritis", "adipose", false, []string{"iv"}, []string{"ja"}, 1_200_000, "active")
	a.Treatment.Revision, b.Treatment.Revision = 1, 1
	a.Clinic.Names, b.Clinic.Names = domain.Text{"en": "Osprey Clinic"}, domain.Text{"en": "Osprey Clinic"}
	ix := Build([]domain.Listing{a, b}, today)
	if reflect.ValueOf(ix.entries[0].listing.Clinic.Names).UnsafePointer() != reflect.ValueOf(ix.entries[1].listing.Clinic.Names).UnsafePointer() {
		t.Error("the two treatments of one clinic hold two copies of it")
	}

	// The clinic is renamed: both treatments' revisions move, and both are
	// re-read with the new name.
	renamed := func(l domain.Listing) domain.Listing {
		l.Clinic.Names = domain.Text{"en": "Harbour Light Clinic"}
		l.Treatment.Revision = 2
		return l
	}
	revs := map[string]int64{"a-stroke-tokyo": 2, "b-knee-tokyo": 2}
	updated := ix.Update(revs, []domain.Listing{renamed(a), renamed(b)}, today)
	for q, want := range map[string][]string{"harbour light": {"a-stroke-tokyo", "b-knee-tokyo"}, "osprey": nil} {
		if got, err := updated.Search(Query{Text: q, Day: today}); err != nil || !slices.Equal(ids(got), want) {
			t.Errorf("%q after the rename: %v (%v), want %v", q, ids(got), err, want)
		}
	}
	for _, e := range updated.entries {
		if e.listing.Clinic.Names.In("en") != "Harbour Light Clinic" {
			t.Errorf("%s shows the clinic as %q", e.listing.Treatment.ID, e.listing.Clinic.Names.In("en"))
		}
	}

	// Only a is re-read after a change of its own: b keeps the renamed
	// clinic, and a shares it again.
	a3 := renamed(a)
	a3.Treatment.Revision = 3
	a3.Treatment.Names = domain.Text{"en": "Kestrel stroke therapy"}
	revs["a-stroke-tokyo"] = 3
	again := updated.Update(revs, []domain.Listing{a3}, today)
	if reflect.ValueOf(again.entries[0].listing.Clinic.Names).UnsafePointer() != reflect.ValueOf(again.entries[1].listing.Clinic.Names).UnsafePointer() {
		t.Error("a re-read treatment does not share its clinic with the one kept")
	}
	if got, _ := again.Search(Query{Text: "kestrel harbour", Day: today}); !slices.Equal(ids(got), []string{"a-stroke-tokyo"}) {
		t.Errorf("kestrel harbour: %v", ids(got))
	}
}

// An update re-indexes only the treatments whose revision moved (a change
// to them, their plan or their clinic), keeps the others, adds the new and
// drops the removed, and the result answers as a full build would.
func TestAnUpdateReindexesOnlyWhatChanged(t *testing.T) {
	at := func(l domain.Listing, rev int64) domain.Listing { l.Treatment.Revision = rev; return l }
	a := at(listing("a-stroke-tokyo", "tokyo", "stroke", "adipose", true, []string{"iv"}, []string{"ja"}, 3_000_000, "active"), 1)
	b := at(listing("b-knee-osaka", "osaka", "knee_osteoarthritis", "adipose", false, []string{"iv"}, []string{"ja"}, 1_200_000, "active"), 1)
	c := at(listing("c-stroke-kyoto", "kyoto", "stroke", "adipose", true, []string{"iv"}, []string{"ja"}, 5_000_000, "active"), 1)
	ix := Build([]domain.Listing{a, b, c}, today)

	// b renamed (revision 2), c's plan suspended (revision 2), d new, a
	// unchanged; then a removed.
	revs := map[string]int64{"a-stroke-tokyo": 1, "b-knee-osaka": 2, "c-stroke-kyoto": 2, "d-sci-tokyo": 1}
	stale := ix.Stale(revs)
	if !slices.Equal(stale, []string{"b-knee-osaka", "c-stroke-kyoto", "d-sci-tokyo"}) {
		t.Fatalf("stale %v, want b, c and d", stale)
	}
	b2 := at(b, 2)
	b2.Treatment.Names = domain.Text{"en": "Kestrel knee therapy"}
	c2 := at(c, 2)
	c2.Plan.Status = "suspended"
	d := at(listing("d-sci-tokyo", "tokyo", "spinal_cord_injury", "adipose", true, []string{"iv"}, []string{"ja"}, 9_000_000, "active"), 1)
	updated := ix.Update(revs, []domain.Listing{d, b2, c2}, today)
	full := Build([]domain.Listing{a, b2, c2, d}, today)
	yes := true
	for _, q := range []Query{{}, {Text: "kestrel"}, {Text: "MSC therapy b-knee"}, {Bookable: &yes}, {Condition: "stroke"}} {
		got, err1 := updated.Search(q)
		want, err2 := full.Search(q)
		if err1 != nil || err2 != nil || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("%+v: updated %v (%v), a full build %v (%v)", q, ids(got), err1, ids(want), err2)
		}
	}
	if len(updated.Stale(revs)) != 0 {
		t.Errorf("after the update %v are still stale", updated.Stale(revs))
	}
	delete(revs, "a-stroke-tokyo")
	if got, _ := updated.Update(revs, nil, today).Search(Query{}); !slices.Equal(ids(got), []string{"b-knee-osaka", "c-stroke-kyoto", "d-sci-tokyo"}) {
		t.Errorf("after a's removal: %v", ids(got))
	}
}
