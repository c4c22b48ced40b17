package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/services/catalog/server"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

type treatment struct {
	ID        string `json:"id"`
	Condition string `json:"condition"`
	Clinic    struct {
		ID   string `json:"id"`
		City string `json:"city"`
	} `json:"clinic"`
	PlanNumber string `json:"plan_number"`
	RiskClass  string `json:"risk_class"`
	Bookable   bool   `json:"bookable"`
	Trial      *struct {
		Institution string `json:"institution"`
	} `json:"trial"`
	CellSource  string `json:"cell_source"`
	Routes      []string
	DoseOptions []struct {
		Cells int64 `json:"cells"`
		Price struct {
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		} `json:"price"`
	} `json:"dose_options"`
}

func get(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func startCatalog(t *testing.T, iss *devtest.Issuer, dsn, natsURL, natsCreds string) string {
	addr, base := devtest.Addr(t)
	cfg := server.Config{Config: servicehost.Config{Name: "catalog", Identity: iss.Config("catalog"), HTTPAddr: addr, DatabaseURL: dsn, NATSURL: natsURL, NATSCreds: natsCreds, StreamReplicas: 1},
		Seed: true}
	deps := devtest.Deps(t, "catalog", nil)
	devtest.RunService(t, base, func(ctx context.Context) error { return server.Run(ctx, cfg, deps) })
	return base
}

func TestSeededCatalogIsServedFilteredAndAnnouncedOnce(t *testing.T) {
	dsn := devtest.ServiceDSN(t, devtest.NewDatabase(t), "catalog")
	natsURL, natsTrust := devtest.SecureNATS(t)
	catalogCreds := devtest.ServiceCreds(t, natsTrust, "catalog")
	iss := devtest.NewIssuer(t, "catalog")
	base := startCatalog(t, iss, dsn, natsURL, catalogCreds)

	var all struct{ Items []treatment }
	if code := get(t, base+"/v1/treatments?limit=100", &all); code != 200 {
		t.Fatalf("list: %d", code)
	}
	if len(all.Items) < 12 {
		t.Fatalf("%d treatments seeded, want at least 12", len(all.Items))
	}
	cities, conditions, clinics, trials := map[string]bool{}, map[string]int{}, map[string]bool{}, 0
	for _, tr := range all.Items {
		cities[tr.Clinic.City] = true
		conditions[tr.Condition]++
		clinics[tr.Clinic.ID] = true
		if tr.Trial != nil {
			trials++
			if tr.Bookable || tr.RiskClass != "I" || len(tr.DoseOptions) != 0 {
				t.Errorf("trial %s is bookable or priced: %+v", tr.ID, tr)
			}
			continue
		}
		if tr.PlanNumber == "" || tr.RiskClass == "" || !tr.Bookable || len(tr.DoseOptions) == 0 {
			t.Errorf("treatment %s lacks plan, class, bookability or doses: %+v", tr.ID, tr)
		}
		for _, d := range tr.DoseOptions {
			if d.Price.Currency != "JPY" || d.Price.Amount < 100_000 {
				t.Errorf("treatment %s dose %d priced %+v", tr.ID, d.Cells, d.Price)
			}
		}
	}
	if trials != 2 {
		t.Errorf("%d iPS trials listed, want 2", trials)
	}
	if len(clinics) < 6 || !cities["tokyo"] || !cities["osaka"] || !cities["kyoto"] {
		t.Fatalf("clinics %d in cities %v", len(clinics), cities)
	}
	for _, c := range []string{"stroke", "spinal_cord_injury", "parkinsons", "knee_osteoarthritis"} {
		if conditions[c] == 0 {
			t.Errorf("no treatment for %s", c)
		}
	}

	var strokeTokyo struct{ Items []treatment }
	get(t, base+"/v1/treatments?condition=stroke&city=tokyo", &strokeTokyo)
	if len(strokeTokyo.Items) == 0 {
		t.Fatal("no stroke treatment in Tokyo")
	}
	for _, tr := range strokeTokyo.Items {
		if tr.Condition != "stroke" || tr.Clinic.City != "tokyo" {
			t.Fatalf("filter leaked %s (%s, %s)", tr.ID, tr.Condition, tr.Clinic.City)
		}
	}

	var one treatment
	if code := get(t, base+"/v1/treatments/"+all.Items[0].ID, &one); code != 200 || one.ID != all.Items[0].ID {
		t.Fatalf("get one: %d %+v", code, one)
	}

	var problem struct {
		Type   string
		Status int
		Errors []struct{ Field string }
	}
	if code := get(t, base+"/v1/treatments?city=nagoya", &problem); code != 422 || problem.Errors[0].Field != "city" {
		t.Fatalf("bad city: %d %+v", code, problem)
	}
	// Price filters are range-checked: once, an amount near the int64 limit
	// overflowed the conversion and answered 500.
	for _, q := range []string{"max_price=9223372036854775807&price_currency=USD", "max_price=9223372036854775807",
		"min_price=-1", "max_price=1000000000001&price_currency=KRW"} {
		problem.Errors = nil
		field := q[:strings.Index(q, "=")]
		if code := get(t, base+"/v1/treatments?"+q, &problem); code != 422 || len(problem.Errors) != 1 || problem.Errors[0].Field != field {
			t.Errorf("%s: %d %+v, want 422 naming %s", q, code, problem, field)
		}
	}
	var upToTrillion struct{ Items []treatment }
	if code := get(t, base+"/v1/treatments?max_price=1000000000000&price_currency=USD&limit=100", &upToTrillion); code != 200 || len(upToTrillion.Items) != len(all.Items)-trials {
		t.Errorf("max_price at its bound: %d, %d items, want every priced one, %d", code, len(upToTrillion.Items), len(all.Items)-trials)
	}
	if code := get(t, base+"/v1/treatments/no-such-thing", &problem); code != 404 {
		t.Fatalf("unknown id: %d", code)
	}

	// Every treatment is announced once, with its plan, on its own subject.
	_, js, err := bus.Connect(natsURL, "test", devtest.Observer(t, natsTrust))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plans := len(all.Items) // one plan per treatment in the seed
	waitForStreamMessages(t, js, len(all.Items)+plans)
	stream, _ := js.Stream(ctx, bus.StreamCatalog)
	raw, err := stream.GetLastMsgForSubject(ctx, "catalog.v1.treatments."+one.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ev catalogv1.TreatmentChanged
	if err := proto.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetTreatment().GetPlan().GetNumber() != one.PlanNumber || ev.GetRevision() != 1 || !ev.GetTreatment().GetBookable() {
		t.Fatalf("event = %v", &ev)
	}

	// A second replica starting on the same database seeds the same catalog:
	// nothing changed, so nothing is announced again.
	second := startCatalog(t, iss, dsn, natsURL, catalogCreds)
	var again struct{ Items []treatment }
	get(t, second+"/v1/treatments", &again)
	if len(again.Items) != len(all.Items) {
		t.Fatalf("second replica serves %d treatments, want %d", len(again.Items), len(all.Items))
	}
	time.Sleep(300 * time.Millisecond)
	info, _ := stream.Info(ctx)
	// Administration is for the admin role only: no token is 401, another
	// role 403, and nothing changes.
	patch := func(token string) int {
		req, _ := http.NewRequest(http.MethodPatch, base+"/v1/admin/plans/"+one.PlanNumber, strings.NewReader(`{"status": "suspended"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for who, want := range map[string]int{
		"":            401,
		"not-a-token": 401,
		iss.Token(t, identity.Principal{Subject: "p-1", Role: identity.Patient}):                         403,
		iss.Token(t, identity.Principal{Subject: "s-1", Role: identity.Clinic, ClinicID: one.Clinic.ID}): 403,
		iss.Token(t, identity.Principal{Subject: "f-1", Role: identity.Finance}):                         403,
	} {
		if got := patch(who); got != want {
			t.Errorf("PATCH a plan with %q: %d, want %d", who, got, want)
		}
	}
	if get(t, base+"/v1/treatments/"+one.ID, &one); !one.Bookable {
		t.Fatal("a refused request changed the plan")
	}
	defer func() {
		// A change made through one replica reaches the other's search index
		// (Postgres NOTIFY), not just its own.
		req, _ := http.NewRequest(http.MethodPatch, base+"/v1/admin/plans/"+one.PlanNumber, strings.NewReader(`{"status": "withdrawn"}`))
		req.Header.Set("Authorization", "Bearer "+iss.Token(t, identity.Principal{Subject: "operator-1", Role: identity.Admin}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("withdraw plan: %v %v", resp, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var page struct{ Items []treatment }
			get(t, second+"/v1/treatments?bookable=false&limit=100", &page)
			for _, tr := range page.Items {
				if tr.ID == one.ID {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the second replica still lists %s as bookable", one.ID)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if info.State.Msgs != uint64(len(all.Items)+plans) || info.State.LastSeq != uint64(len(all.Items)+plans) {
		t.Fatalf("after a second start the stream holds %d messages (last seq %d), want %d", info.State.Msgs, info.State.LastSeq, len(all.Items)+plans)
	}
}

// A catalog given no clinic issuer (its NATS is someone else's) says so
// rather than pretending to issue credentials.
func TestWithoutAnIssuerNATSCredentialsAnswer501(t *testing.T) {
	dsn := devtest.ServiceDSN(t, devtest.NewDatabase(t), "catalog")
	natsURL, natsTrust := devtest.SecureNATS(t)
	iss := devtest.NewIssuer(t, "catalog")
	base := startCatalog(t, iss, dsn, natsURL, devtest.ServiceCreds(t, natsTrust, "catalog"))
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/admin/clinics/tokyo-ginza-namiki-clinic/nats-credentials", nil)
	req.Header.Set("Authorization", "Bearer "+iss.Token(t, identity.Principal{Subject: "operator-1", Role: identity.Admin}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var problem struct{ Type string }
	_ = json.NewDecoder(resp.Body).Decode(&problem)
	if resp.StatusCode != 501 || !strings.HasSuffix(problem.Type, "/nats-credentials-unconfigured") {
		t.Fatalf("POST nats-credentials without an issuer: %d %s", resp.StatusCode, problem.Type)
	}
}

// Treatments added at the same time by several operators are each in the
// search the moment their 201 arrives: the index rebuilds they ask for are
// shared (one at a time, each beginning after the writes it covers), not
// one per write.
func TestTreatmentsAddedConcurrentlyAreSearchableWhenTheirAnswerArrives(t *testing.T) {
	dsn := devtest.ServiceDSN(t, devtest.NewDatabase(t), "catalog")
	natsURL, natsTrust := devtest.SecureNATS(t)
	iss := devtest.NewIssuer(t, "catalog")
	base := startCatalog(t, iss, dsn, natsURL, devtest.ServiceCreds(t, natsTrust, "catalog"))
	admin := iss.Token(t, identity.Principal{Subject: "operator-1", Role: identity.Admin})

	raw, err := os.ReadFile("../internal/seed/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	var seed struct{ Treatments []map[string]any }
	if err := json.Unmarshal(raw, &seed); err != nil {
		t.Fatal(err)
	}
	const added = 24
	var wg sync.WaitGroup
	errs := make(chan error, added)
	for i := range added {
		wg.Go(func() {
			doc := maps.Clone(seed.Treatments[0])
			doc["id"] = fmt.Sprintf("probe-%02d", i)
			doc["names"] = map[string]string{"en": fmt.Sprintf("Kestrel probe %d", i)}
			body, _ := json.Marshal(doc)
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/admin/treatments", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+admin)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("POST %s: %d", doc["id"], resp.StatusCode)
				return
			}
			var page struct{ Items []treatment }
			get(t, base+"/v1/treatments?q=kestrel&limit=100", &page)
			if !slices.ContainsFunc(page.Items, func(tr treatment) bool { return tr.ID == doc["id"] }) {
				errs <- fmt.Errorf("%s answered 201 but is not in the search (%d probes are)", doc["id"], len(page.Items))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var page struct{ Items []treatment }
	if get(t, base+"/v1/treatments?q=kestrel&limit=100", &page); len(page.Items) != added {
		t.Fatalf("%d probes in the search, want %d", len(page.Items), added)
	}
}
