package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/catalogv1"
	"github.com/saisei-health/platform/pkg/events/commonv1"
	"github.com/saisei-health/platform/pkg/events/quotingv1"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/services/quoting/server"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

const (
	ginza       = "tokyo-ginza-namiki-clinic"
	stroke      = "ginza-adipose-msc-stroke-iv"
	strokePlan  = "PB3240117"
	exosome     = "ginza-exosome-parkinsons"
	trial       = "kyoto-univ-ips-dopaminergic-parkinsons-trial"
	strokeDose  = 100_000_000
	exosomeDose = 30_000_000_000
)

// issuedAt is 2026-11-25 18:40 in Tokyo: a quote issued then is valid
// through the end of 9 December, Tokyo time.
var (
	issuedAt   = time.Date(2026, 11, 25, 9, 40, 0, 0, time.UTC)
	validUntil = time.Date(2026, 12, 9, 14, 59, 59, 0, time.UTC)
)

// clock is the service's clock, frozen at an instant the test chooses, so
// issue times, validity and expiry are exact.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Modes of the fake catalog.
const (
	catalogBookable int32 = iota
	catalogSuspended
	catalogDown
)

// fakeCatalog answers GET /v1/treatments/{id} as the catalog does, with the
// fields quoting reads (bookable, plan), or drops the connection when down.
type fakeCatalog struct {
	url   string
	mode  atomic.Int32
	mu    sync.Mutex
	asked []string
}

func startCatalog(t *testing.T) *fakeCatalog {
	c := &fakeCatalog{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/treatments/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		c.mu.Lock()
		c.asked = append(c.asked, id)
		c.mu.Unlock()
		mode := c.mode.Load()
		if mode == catalogDown {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if id != stroke && id != exosome {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"type":"https://saisei.health/problems/not-found","title":"Not found","status":404,"detail":"no treatment %q"}`, id)
			return
		}
		plan, status := strokePlan, "active"
		if id == exosome {
			plan = "PC3250042"
		}
		if mode == catalogSuspended {
			status = "suspended"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": id, "plan_number": plan, "risk_class": "II", "bookable": status == "active",
			"clinic": map[string]any{"id": ginza, "city": "tokyo"},
			"plan":   map[string]any{"number": plan, "risk_class": "II", "status": status, "valid_from": "2024-10-01", "valid_until": "2027-09-30"},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func (c *fakeCatalog) askedFor(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.asked {
		if a == id {
			n++
		}
	}
	return n
}

// harness is quoting running in-process on its own schema and JetStream,
// with the catalog faked.
type harness struct {
	base    string
	js      jetstream.JetStream
	clock   *clock
	catalog *fakeCatalog
	issuer  *devtest.Issuer
	// admin is the database's superuser DSN; cfg and deps start quoting,
	// again for a second replica.
	admin string
	cfg   server.Config
	deps  servicehost.Deps
	// tokens are the bearer tokens minted so far, by caller; the default
	// callers' are minted at start, so goroutines can use them.
	mu     sync.Mutex
	tokens map[identity.Principal]string
}

// The callers requests are made as unless a test names another: the patient
// who asks for quotes, staff of the clinic that offers the treatments, and
// booking accepting quotes for that patient.
var (
	patientKim  = identity.Principal{Subject: "patient-kim", Role: identity.Patient}
	ginzaStaff  = identity.Principal{Subject: "staff-ginza-1", Role: identity.Clinic, ClinicID: ginza}
	bookingSvc  = identity.Principal{Subject: "booking", Role: identity.Service}
	patientLee  = identity.Principal{Subject: "patient-lee", Role: identity.Patient}
	osakaStaff  = identity.Principal{Subject: "staff-osaka-1", Role: identity.Clinic, ClinicID: "osaka-umeda-stem-cell-clinic"}
	financeDesk = identity.Principal{Subject: "finance-1", Role: identity.Finance}
	operator    = identity.Principal{Subject: "operator-1", Role: identity.Admin}
)

// token is p's bearer token, minted once.
func (h *harness) token(t *testing.T, p identity.Principal) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	tok, ok := h.tokens[p]
	if !ok {
		tok = h.issuer.Token(t, p)
		h.tokens[p] = tok
	}
	return tok
}

// as is the header that makes a request p's.
func (h *harness) as(t *testing.T, p identity.Principal) map[string]string {
	t.Helper()
	return map[string]string{"Authorization": "Bearer " + h.token(t, p)}
}

// anonymous sends no token at all.
var anonymous = map[string]string{"Authorization": ""}

// callerFor is who makes a request to path by default: booking for the
// internal API, the Ginza clinic's staff for the clinic API, and patient
// Kim for everything else.
func callerFor(path string) identity.Principal {
	switch {
	case strings.HasPrefix(path, "/internal/"):
		return bookingSvc
	case strings.HasPrefix(path, "/v1/clinic/"):
		return ginzaStaff
	}
	return patientKim
}

func startQuoting(t *testing.T) *harness {
	t.Helper()
	h := &harness{clock: &clock{now: issuedAt}, catalog: startCatalog(t), issuer: devtest.NewIssuer(t, "quoting"),
		tokens: map[identity.Principal]string{}}
	for _, p := range []identity.Principal{patientKim, ginzaStaff, bookingSvc} {
		h.token(t, p)
	}
	h.admin = devtest.NewDatabase(t)
	dsn := devtest.ServiceDSN(t, h.admin, "quoting")
	natsURL, natsTrust := devtest.SecureNATS(t)
	addr, base := devtest.Addr(t)
	h.base = base
	cfg := server.Config{Config: servicehost.Config{Name: "quoting", Identity: h.issuer.Config("quoting"), HTTPAddr: addr, DatabaseURL: dsn, NATSURL: natsURL, NATSCreds: devtest.ServiceCreds(t, natsTrust, "quoting"), StreamReplicas: 1},
		CatalogURL: h.catalog.url, DataKeyset: devtest.Keyset(t)}
	deps := devtest.Deps(t, "quoting", nil)
	deps.Now = h.clock.Now
	h.cfg, h.deps = cfg, deps
	devtest.RunService(t, base, func(ctx context.Context) error { return server.Run(ctx, cfg, deps) })
	nc, js, err := bus.Connect(natsURL, "test", devtest.Observer(t, natsTrust))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.js = js
	h.announce(t, strokeSnapshot(1, "active", 38_000))
	h.announce(t, exosomeSnapshot())
	h.announce(t, trialSnapshot())
	return h
}

// announce publishes a catalog snapshot as the catalog's outbox relay does,
// and waits until quoting has handled it.
func (h *harness) announce(t *testing.T, ev *catalogv1.TreatmentChanged) {
	t.Helper()
	h.announceAs(t, ev, fmt.Sprintf("treatment:%s:rev:%d", ev.GetTreatment().GetId(), ev.GetRevision()))
}

func (h *harness) announceAs(t *testing.T, ev *catalogv1.TreatmentChanged, eventID string) {
	t.Helper()
	ctx := context.Background()
	published := devtest.Publish(t, h.js, bus.Event{ID: eventID, Subject: subject.Treatment(ev.GetTreatment().GetId()), Message: ev}, time.Now())
	cons, err := h.js.Consumer(ctx, bus.StreamCatalog, "quoting-catalog")
	if err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "quoting to handle "+eventID, func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= published
	})
}

func yen(n int64) *commonv1.Money { return &commonv1.Money{Amount: n, Currency: "JPY"} }

// ginzaClinic is the seed catalog's Ginza clinic; hotelPerNight lets a
// test reprice its hotel rooms.
func ginzaClinic(hotelPerNight int64) *catalogv1.Clinic {
	return &catalogv1.Clinic{Id: ginza, Name: "Ginza Namiki-dori Regenerative Clinic",
		Names: map[string]string{"en": "Ginza Namiki-dori Regenerative Clinic", "ja": "銀座並木通り再生医療クリニック"},
		City:  "tokyo", Kind: "clinic", Languages: []string{"ja", "en", "zh"},
		DepositPolicy: &catalogv1.DepositPolicy{Covers: []string{"consultation", "harvest", "cell_culture", "quality_testing"}, FullWithoutCulture: true},
		Extras: []*catalogv1.Extra{
			{Code: "rehabilitation", Price: yen(380_000), Unit: "package", Taxable: true},
			{Code: "cell_banking", Price: yen(320_000), Unit: "year", Taxable: true},
			{Code: "interpreter", Price: yen(50_000), Unit: "day", Taxable: true},
			{Code: "visa_guarantee", Price: yen(60_000), Unit: "once", Taxable: false},
			{Code: "airport_transfer", Price: yen(85_000), Unit: "trip", Taxable: true},
			{Code: "hotel", Price: yen(hotelPerNight), Unit: "night", Taxable: true},
		}}
}

func rules() *catalogv1.EligibilityRules {
	return &catalogv1.EligibilityRules{RequiresConfirmedDiagnosis: true, MinCancerFreeYears: 5, OrganDisease: "review"}
}

// strokeSnapshot is the seed's Ginza adipose MSC stroke treatment (¥3,000,000
// for 100 million cells) at catalog revision rev.
func strokeSnapshot(rev int64, planStatus string, hotelPerNight int64) *catalogv1.TreatmentChanged {
	name := "Adipose-derived MSC therapy for stroke recovery (single IV infusion)"
	return &catalogv1.TreatmentChanged{Revision: rev, Treatment: &catalogv1.Treatment{
		Id: stroke, Name: name, Names: map[string]string{"en": name}, Conditions: []string{"stroke"},
		Clinic:   ginzaClinic(hotelPerNight),
		Plan:     &catalogv1.Plan{Number: strokePlan, RiskClass: "II", Status: planStatus, ValidFrom: "2024-10-01", ValidUntil: "2027-09-30"},
		CellType: "msc", CellSource: "adipose", Autologous: true, Routes: []string{"iv"}, Sessions: 1,
		CultureDaysMin: 21, CultureDaysMax: 35, Visits: 2, TypicalStayDays: 5, FollowUpMonths: []int32{1, 3, 6},
		Prices: &catalogv1.PriceList{Consultation: yen(100_000), Harvest: yen(300_000), QualityTesting: yen(100_000),
			AdministrationPerSession: yen(1_100_000)},
		DoseOptions: []*catalogv1.DoseOption{
			{Cells: 50_000_000, Culture: yen(900_000), Total: yen(2_500_000)},
			{Cells: 100_000_000, Culture: yen(1_400_000), Total: yen(3_000_000)},
			{Cells: 200_000_000, Culture: yen(2_500_000), Total: yen(4_100_000)},
		},
		Eligibility: rules(),
		Bookable:    planStatus == "active",
	}}
}

// exosomeSnapshot is the same clinic's exosome protocol: nothing is
// cultured, so the clinic takes the whole price up front.
func exosomeSnapshot() *catalogv1.TreatmentChanged {
	name := "Exosome therapy for Parkinson's disease (IV and intranasal)"
	return &catalogv1.TreatmentChanged{Revision: 1, Treatment: &catalogv1.Treatment{
		Id: exosome, Name: name, Names: map[string]string{"en": name}, Conditions: []string{"parkinsons"},
		Clinic:   ginzaClinic(38_000),
		Plan:     &catalogv1.Plan{Number: "PC3250042", RiskClass: "III", Status: "active", ValidFrom: "2025-04-01", ValidUntil: "2028-03-31"},
		CellType: "exosomes", CellSource: "exosome", Routes: []string{"iv", "intranasal"}, Sessions: 3, Visits: 1,
		Prices: &catalogv1.PriceList{Consultation: yen(100_000), Harvest: yen(0), QualityTesting: yen(50_000),
			AdministrationPerSession: yen(150_000)},
		DoseOptions: []*catalogv1.DoseOption{{Cells: 30_000_000_000, Culture: yen(650_000), Total: yen(1_250_000)}},
		Eligibility: rules(),
		Bookable:    true,
	}}
}

// trialSnapshot is a clinical trial: listed for information, never sold.
func trialSnapshot() *catalogv1.TreatmentChanged {
	name := "iPS cell-derived dopaminergic progenitor transplantation for Parkinson's disease (clinical trial, not bookable)"
	return &catalogv1.TreatmentChanged{Revision: 1, Treatment: &catalogv1.Treatment{
		Id: trial, Name: name, Conditions: []string{"parkinsons"},
		Clinic: &catalogv1.Clinic{Id: "kyoto-university-hospital", Name: "Kyoto University Hospital", City: "kyoto", Kind: "university_hospital",
			DepositPolicy: &catalogv1.DepositPolicy{Covers: []string{"consultation", "harvest", "cell_culture", "quality_testing"}}},
		Plan:     &catalogv1.Plan{Number: "PA5240011", RiskClass: "I", Status: "active", ValidFrom: "2024-10-01", ValidUntil: "2027-09-30"},
		CellType: "ips_dopaminergic_progenitors", CellSource: "ips", Routes: []string{"direct_injection"}, Sessions: 1, Visits: 1,
		Prices:      &catalogv1.PriceList{Consultation: yen(0), Harvest: yen(0), QualityTesting: yen(0), AdministrationPerSession: yen(0)},
		Eligibility: &catalogv1.EligibilityRules{RequiresConfirmedDiagnosis: true, MinCancerFreeYears: 5, OrganDisease: "exclude"},
		Trial:       &catalogv1.Trial{Institution: "Kyoto University Hospital", Status: "completed", Phase: "I/II", RegistryId: "jRCT2090220384", Participants: 7},
	}}
}

// Wire views, as a frontend or booking reads them.

type amount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func (a amount) String() string { return fmt.Sprintf("%d %s", a.Amount, a.Currency) }

type line struct {
	Code        string `json:"code"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	UnitPrice   amount `json:"unit_price"`
	Amount      amount `json:"amount"`
	Taxable     bool   `json:"taxable"`
	InDeposit   bool   `json:"in_deposit"`
}

type quote struct {
	ID              string `json:"id"`
	Version         int    `json:"version"`
	Status          string `json:"status"`
	Supersedes      string `json:"supersedes"`
	SupersededBy    string `json:"superseded_by"`
	TreatmentID     string `json:"treatment_id"`
	ClinicID        string `json:"clinic_id"`
	DoseCells       int64  `json:"dose_cells"`
	RequiresHarvest bool   `json:"requires_harvest"`
	Screening       *struct {
		CancerFreeYears *int `json:"cancer_free_years"`
	} `json:"screening"`
	Eligibility struct {
		Status  string `json:"status"`
		Reasons []struct {
			Code    string `json:"code"`
			Outcome string `json:"outcome"`
		} `json:"reasons"`
	} `json:"eligibility"`
	Lines          []line  `json:"lines"`
	Subtotal       amount  `json:"subtotal"`
	Tax            amount  `json:"tax"`
	TaxRatePercent int     `json:"tax_rate_percent"`
	Total          amount  `json:"total"`
	Deposit        *amount `json:"deposit"`
	Balance        *amount `json:"balance"`
	DisplayTotal   amount  `json:"display_total"`
	FX             struct {
		Currency string    `json:"currency"`
		Rate     string    `json:"rate"`
		Base     string    `json:"base"`
		Quote    string    `json:"quote"`
		AsOf     time.Time `json:"as_of"`
	} `json:"fx"`
	IssuedAt   time.Time `json:"issued_at"`
	ValidUntil time.Time `json:"valid_until"`
	BookingID  string    `json:"booking_id"`
	Note       string    `json:"note"`
}

func (q quote) line(code string) line {
	for _, l := range q.Lines {
		if l.Code == code {
			return l
		}
	}
	return line{}
}

func (q quote) codes() []string {
	var out []string
	for _, l := range q.Lines {
		out = append(out, l.Code)
	}
	return out
}

type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

type reply struct {
	status          int
	contentType     string
	wwwAuthenticate string
	raw             []byte
}

// do makes a request as the path's default caller (callerFor), unless
// header names another Authorization (an empty one sends no token).
func (h *harness) do(t *testing.T, method, path string, body any, header ...map[string]string) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, h.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+h.token(t, callerFor(path)))
	for _, hd := range header {
		for k, v := range hd {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), wwwAuthenticate: resp.Header.Get("WWW-Authenticate"), raw: raw}
}

// quoteFrom expects a quote answered with status want.
func quoteFrom(t *testing.T, r reply, want int) quote {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	var q quote
	if err := json.Unmarshal(r.raw, &q); err != nil {
		t.Fatalf("%v: %s", err, r.raw)
	}
	return q
}

// problemFrom expects a problem of type slug with status want, naming
// exactly fields (in any order) when fields are given.
func problemFrom(t *testing.T, r reply, want int, slug string, fields ...string) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(r.raw, &p); err != nil {
		t.Fatalf("answer %d %s, want %d %s (%v): %s", r.status, r.contentType, want, slug, err, r.raw)
	}
	if r.status != want || p.Status != want || p.Type != "https://saisei.health/problems/"+slug || r.contentType != "application/problem+json" {
		t.Fatalf("answer %d %s, want %d %s: %s", r.status, r.contentType, want, slug, r.raw)
	}
	got := p.fields()
	slices.Sort(got)
	fields = slices.Clone(fields)
	slices.Sort(fields)
	if len(fields) > 0 && !slices.Equal(got, fields) {
		t.Fatalf("problem names %v, want %v: %s", got, fields, r.raw)
	}
	return p
}

var patient = map[string]any{"name": "Kim Min-jun", "email": "minjun@example.kr", "country": "KR", "language": "ko"}

// fit is a complete questionnaire of a patient the stroke rules accept.
func fit() map[string]any {
	return map[string]any{"diagnosis_confirmed": true, "cancer_free_years": nil, "severe_organ_disease": false, "can_travel": true}
}

func request(treatment string, cells int64, currency string, screening map[string]any, extras ...map[string]any) map[string]any {
	r := map[string]any{"treatment_id": treatment, "dose_cells": cells, "currency": currency, "patient": patient}
	if screening != nil {
		r["screening"] = screening
	}
	if extras != nil {
		r["extras"] = extras
	}
	return r
}

func (h *harness) issue(t *testing.T, req map[string]any) quote {
	t.Helper()
	return quoteFrom(t, h.do(t, "POST", "/v1/quotes", req), http.StatusCreated)
}

func (h *harness) get(t *testing.T, id string) quote {
	t.Helper()
	return quoteFrom(t, h.do(t, "GET", "/v1/quotes/"+id, nil), http.StatusOK)
}

// accept is booking accepting quote id for patient Kim, who asks for the
// harness's quotes.
func (h *harness) accept(t *testing.T, id, bookingID, key string) reply {
	t.Helper()
	return h.do(t, "POST", "/internal/v1/quotes/"+id+"/acceptance", acceptance(bookingID, key, patientKim.Subject))
}

func acceptance(bookingID, key, patientSubject string) map[string]any {
	return map[string]any{"booking_id": bookingID, "idempotency_key": key, "patient_subject": patientSubject}
}

func (h *harness) revise(t *testing.T, id string, body any) reply {
	t.Helper()
	return h.do(t, "POST", "/v1/clinic/quotes/"+id+"/revisions", body)
}

// event is a message on the QUOTING stream.
type event struct {
	subject, id string
	data        []byte
}

func (h *harness) events(t *testing.T) []event {
	t.Helper()
	ctx := context.Background()
	stream, err := h.js.Stream(ctx, bus.StreamQuoting)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, event{subject: m.Subject, id: m.Header.Get(bus.HeaderEventID), data: m.Data})
	}
	return out
}

// published waits for the events with id (one is expected) and returns
// them all, so the caller can hold it to exactly one.
func (h *harness) published(t *testing.T, id string) []event {
	t.Helper()
	var found []event
	devtest.Eventually(t, "event "+id, func() bool {
		found = nil
		for _, e := range h.events(t) {
			if e.id == id {
				found = append(found, e)
			}
		}
		return len(found) > 0
	})
	return found
}

// only waits for event id, insists it was published once on subj, and
// decodes it into msg.
func (h *harness) only(t *testing.T, id, subj string, msg proto.Message) {
	t.Helper()
	evs := h.published(t, id)
	if len(evs) != 1 || evs[0].subject != subj {
		t.Fatalf("event %s published %d times (first on %s), want once on %s", id, len(evs), evs[0].subject, subj)
	}
	if err := proto.Unmarshal(evs[0].data, msg); err != nil {
		t.Fatal(err)
	}
}

// settle issues a throwaway quote and waits for its QuoteIssued: the outbox
// is relayed in order, so every event enqueued before it is on the stream
// by then, and a count taken afterwards is final.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	q := h.issue(t, request(exosome, exosomeDose, "JPY", nil))
	h.published(t, "quote:"+q.ID+":issued")
}

// count is how many events on the stream match subj and quote.
func (h *harness) count(t *testing.T, subj string, quoteID string) int {
	t.Helper()
	n := 0
	for _, e := range h.events(t) {
		if e.subject == subj && strings.HasPrefix(e.id, "quote:"+quoteID+":") {
			n++
		}
	}
	return n
}

var (
	issuedSubject    = subject.Quote(ginza, subject.QuoteIssued)
	acceptedSubject  = subject.Quote(ginza, subject.QuoteAccepted)
	withdrawnSubject = subject.Quote(ginza, subject.QuoteWithdrawn)
)

func TestQuotesAreItemizedTaxedDisplayedAndAnnouncedOnce(t *testing.T) {
	h := startQuoting(t)

	t.Run("itemized stroke quote in dollars", func(t *testing.T) {
		q := h.issue(t, request(stroke, strokeDose, "USD", fit(), map[string]any{"code": "hotel", "nights": 5}, map[string]any{"code": "interpreter", "days": 2}))
		if q.Version != 1 || q.Status != "issued" || q.TreatmentID != stroke || q.ClinicID != ginza || q.DoseCells != strokeDose || !q.RequiresHarvest {
			t.Fatalf("quote = %+v", q)
		}
		want := []line{
			{Code: "consultation", Quantity: 1, Amount: amount{100_000, "JPY"}, Taxable: true, InDeposit: true},
			{Code: "harvest", Quantity: 1, Amount: amount{300_000, "JPY"}, Taxable: true, InDeposit: true},
			{Code: "cell_culture", Quantity: 1, Amount: amount{1_400_000, "JPY"}, Taxable: true, InDeposit: true},
			{Code: "quality_testing", Quantity: 1, Amount: amount{100_000, "JPY"}, Taxable: true, InDeposit: true},
			{Code: "administration", Quantity: 1, Amount: amount{1_100_000, "JPY"}, Taxable: true},
			{Code: "hotel", Quantity: 5, UnitPrice: amount{38_000, "JPY"}, Amount: amount{190_000, "JPY"}, Taxable: true},
			{Code: "interpreter", Quantity: 2, UnitPrice: amount{50_000, "JPY"}, Amount: amount{100_000, "JPY"}, Taxable: true},
			{Code: "consumption_tax", Quantity: 1, Amount: amount{329_000, "JPY"}},
		}
		if len(q.Lines) != len(want) {
			t.Fatalf("lines %v, want %d", q.codes(), len(want))
		}
		for i, w := range want {
			g := q.Lines[i]
			if g.Code != w.Code || g.Quantity != w.Quantity || g.Amount != w.Amount || g.Taxable != w.Taxable || g.InDeposit != w.InDeposit ||
				(w.UnitPrice.Currency != "" && g.UnitPrice != w.UnitPrice) {
				t.Errorf("line %d = %+v, want %+v", i, g, w)
			}
		}
		if d := q.line("cell_culture").Description; !strings.Contains(d, "100 million adipose-derived MSCs") {
			t.Errorf("culture line says %q", d)
		}
		if q.Subtotal != (amount{3_290_000, "JPY"}) || q.Tax != (amount{329_000, "JPY"}) || q.TaxRatePercent != 10 || q.Total != (amount{3_619_000, "JPY"}) {
			t.Errorf("subtotal %v + tax %v (%d %%) = total %v, want 3290000 + 329000 = 3619000 JPY", q.Subtotal, q.Tax, q.TaxRatePercent, q.Total)
		}
		// The deposit is what the clinic spends before administration, with
		// its tax: (100,000 + 300,000 + 1,400,000 + 100,000) × 1.1.
		if q.Deposit == nil || *q.Deposit != (amount{2_090_000, "JPY"}) || q.Balance == nil || *q.Balance != (amount{1_529_000, "JPY"}) {
			t.Errorf("deposit %v, balance %v, want 2090000 and 1529000 JPY", q.Deposit, q.Balance)
		}
		// ¥3,619,000 at 151.20 yen to the dollar is $23,935.185…, shown to the cent.
		if q.DisplayTotal != (amount{2_393_519, "USD"}) || q.FX.Rate != "151.20" || q.FX.Base != "USD" || q.FX.Quote != "JPY" || q.FX.Currency != "USD" ||
			!q.FX.AsOf.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("display %v at %+v, want 2393519 USD at 1 USD = 151.20 JPY", q.DisplayTotal, q.FX)
		}
		if !q.IssuedAt.Equal(issuedAt) || !q.ValidUntil.Equal(validUntil) {
			t.Errorf("issued %v valid until %v, want %v and %v (end of 9 December in Tokyo)", q.IssuedAt, q.ValidUntil, issuedAt, validUntil)
		}
		if q.Eligibility.Status != "eligible" || len(q.Eligibility.Reasons) != 0 {
			t.Errorf("eligibility = %+v", q.Eligibility)
		}
		if got := h.get(t, q.ID); got.Status != "issued" || got.Total != q.Total || got.DisplayTotal != q.DisplayTotal || len(got.Lines) != len(q.Lines) {
			t.Errorf("read back %+v", got)
		}

		var ev quotingv1.QuoteIssued
		h.only(t, "quote:"+q.ID+":issued", issuedSubject, &ev)
		if ev.GetQuoteId() != q.ID || ev.GetTreatmentId() != stroke || ev.GetClinicId() != ginza || ev.GetVersion() != 1 || ev.GetSupersedes() != "" ||
			ev.GetTotal().GetAmount() != 3_619_000 || ev.GetTax().GetAmount() != 329_000 || ev.GetDeposit().GetAmount() != 2_090_000 ||
			ev.GetBalance().GetAmount() != 1_529_000 || ev.GetDisplayTotal().GetAmount() != 2_393_519 || ev.GetDisplayTotal().GetCurrency() != "USD" ||
			!ev.GetValidUntil().AsTime().Equal(validUntil) || ev.GetEligibility() != "eligible" {
			t.Errorf("QuoteIssued = %v", &ev)
		}
		// Who to write to, and about what, travel with it (never the screening).
		if p := ev.GetPatient(); p.GetName() != "Kim Min-jun" || p.GetEmail() != "minjun@example.kr" || p.GetLanguage() != "ko" ||
			p.GetSubject() != patientKim.Subject || ev.GetTreatmentName() == "" || ev.GetClinicName() == "" {
			t.Errorf("QuoteIssued patient %v, treatment %q, clinic %q", p, ev.GetTreatmentName(), ev.GetClinicName())
		}
	})

	t.Run("visa guarantee is outside the tax, won are whole", func(t *testing.T) {
		q := h.issue(t, request(stroke, strokeDose, "KRW", fit(), map[string]any{"code": "visa_guarantee"}, map[string]any{"code": "airport_transfer", "trips": 2}))
		if l := q.line("visa_guarantee"); l.Amount != (amount{60_000, "JPY"}) || l.Taxable || l.InDeposit {
			t.Errorf("visa line = %+v", l)
		}
		// Tax on 3,000,000 + 2 × 85,000 only.
		if q.Subtotal.Amount != 3_230_000 || q.Tax.Amount != 317_000 || q.Total.Amount != 3_547_000 ||
			q.Deposit.Amount != 2_090_000 || q.Balance.Amount != 1_457_000 {
			t.Errorf("subtotal %v tax %v total %v deposit %v balance %v", q.Subtotal, q.Tax, q.Total, q.Deposit, q.Balance)
		}
		if d := q.line("consumption_tax").Description; !strings.Contains(d, "¥3,170,000") {
			t.Errorf("tax line says %q", d)
		}
		// KRW is quoted per yen: 3,547,000 × 9.28.
		if q.DisplayTotal != (amount{32_916_160, "KRW"}) || q.FX.Base != "JPY" || q.FX.Quote != "KRW" || q.FX.Rate != "9.28" {
			t.Errorf("display %v at %+v", q.DisplayTotal, q.FX)
		}
	})

	t.Run("nothing cultured: the whole price up front", func(t *testing.T) {
		q := h.issue(t, request(exosome, exosomeDose, "JPY", fit()))
		if slices.Contains(q.codes(), "harvest") || q.RequiresHarvest {
			t.Errorf("an exosome protocol harvests: %v", q.codes())
		}
		if d := q.line("cell_culture").Description; !strings.HasPrefix(d, "Preparation of the cell product") {
			t.Errorf("culture line says %q", d)
		}
		if l := q.line("administration"); l.Quantity != 3 || l.Amount.Amount != 450_000 {
			t.Errorf("administration = %+v", l)
		}
		if q.Total != (amount{1_375_000, "JPY"}) || q.Deposit == nil || q.Deposit.Amount != 1_375_000 || q.Balance == nil || q.Balance.Amount != 0 ||
			q.DisplayTotal != q.Total {
			t.Errorf("total %v deposit %v balance %v display %v", q.Total, q.Deposit, q.Balance, q.DisplayTotal)
		}
		for _, l := range q.Lines {
			if l.Code != "consumption_tax" && !l.InDeposit {
				t.Errorf("line %s is not in the deposit", l.Code)
			}
		}
	})

	t.Run("screening decides eligibility", func(t *testing.T) {
		review := h.issue(t, request(stroke, strokeDose, "JPY", nil))
		if review.Status != "issued" || review.Eligibility.Status != "needs_review" || review.Eligibility.Reasons[0].Code != "screening_missing" {
			t.Errorf("no questionnaire: %s %+v", review.Status, review.Eligibility)
		}
		unconfirmed := fit()
		unconfirmed["diagnosis_confirmed"] = false
		if q := h.issue(t, request(stroke, strokeDose, "JPY", unconfirmed)); q.Eligibility.Status != "needs_review" || q.Eligibility.Reasons[0].Code != "diagnosis_unconfirmed" {
			t.Errorf("unconfirmed diagnosis: %+v", q.Eligibility)
		}
		for years, want := range map[int]string{4: "ineligible", 5: "eligible"} {
			s := fit()
			s["cancer_free_years"] = years
			if q := h.issue(t, request(stroke, strokeDose, "JPY", s)); q.Eligibility.Status != want {
				t.Errorf("cancer %d years ago: %+v, want %s", years, q.Eligibility, want)
			}
		}

		grounded := fit()
		grounded["can_travel"] = false
		q := h.issue(t, request(stroke, strokeDose, "JPY", grounded))
		if q.Status != "ineligible" || q.Eligibility.Status != "ineligible" || q.Eligibility.Reasons[0].Code != "cannot_travel" || q.Deposit != nil || q.Balance != nil {
			t.Errorf("cannot travel: status %s %+v deposit %v balance %v", q.Status, q.Eligibility, q.Deposit, q.Balance)
		}
		if !bytes.Contains(h.do(t, "GET", "/v1/quotes/"+q.ID, nil).raw, []byte(`"deposit":null`)) {
			t.Error("an ineligible quote shows a deposit")
		}
		var ev quotingv1.QuoteIssued
		h.only(t, "quote:"+q.ID+":issued", issuedSubject, &ev)
		if ev.GetEligibility() != "ineligible" || ev.GetDeposit() != nil || ev.GetBalance() != nil || ev.GetTotal().GetAmount() != 3_300_000 {
			t.Errorf("QuoteIssued = %v", &ev)
		}
	})

	t.Run("refusals name the fields", func(t *testing.T) {
		bad := request(stroke, strokeDose, "USD", map[string]any{"diagnosis_confirmed": true})
		bad["patient"] = map[string]any{"name": " ", "email": "minjun at example.kr", "country": "Korea", "language": "fr"}
		problemFrom(t, h.do(t, "POST", "/v1/quotes", bad), 422, "validation",
			"patient.name", "patient.email", "patient.country", "patient.language", "screening.severe_organ_disease", "screening.can_travel")

		p := problemFrom(t, h.do(t, "POST", "/v1/quotes", request(stroke, 150_000_000, "USD", fit())), 422, "validation", "dose_cells")
		if !strings.Contains(p.Errors[0].Message, "[50000000 100000000 200000000]") {
			t.Errorf("dose message %q does not list the doses", p.Errors[0].Message)
		}
		problemFrom(t, h.do(t, "POST", "/v1/quotes", request(stroke, strokeDose, "CHF", fit())), 422, "validation", "currency")
		problemFrom(t, h.do(t, "POST", "/v1/quotes", request("ginza-adipose-msc-hair", strokeDose, "USD", fit())), 422, "validation", "treatment_id")
		problemFrom(t, h.do(t, "POST", "/v1/quotes", request(stroke, strokeDose, "USD", fit(),
			map[string]any{"code": "hotel"}, map[string]any{"code": "interpreter", "nights": 2})), 422, "validation", "extras[0].nights", "extras[1].nights", "extras[1].days")
		problemFrom(t, h.do(t, "POST", "/v1/quotes", request(stroke, strokeDose, "USD", fit(),
			map[string]any{"code": "spa"}, map[string]any{"code": "hotel", "nights": 91}, map[string]any{"code": "spa"})), 422, "validation",
			"extras[0].code", "extras[1].nights", "extras[2].code")
		sci := fit()
		sci["injury_date"] = "1 September"
		problemFrom(t, h.do(t, "POST", "/v1/quotes", request(stroke, strokeDose, "USD", sci)), 422, "validation", "screening.injury_date")

		// Everything wrong at once is named at once, whichever layer finds
		// it: a malformed date and an extra in the wrong unit (transport),
		// the patient (domain), the dose, currency and an unknown extra
		// (pricing). The patient fixes them in one round trip.
		all := request(stroke, 150_000_000, "CHF", sci, map[string]any{"code": "hotel", "days": 2}, map[string]any{"code": "spa"})
		all["patient"] = map[string]any{"name": "Kim Min-jun", "email": "minjun at example.kr", "country": "KR", "language": "ko"}
		problemFrom(t, h.do(t, "POST", "/v1/quotes", all), 422, "validation",
			"extras[0].days", "extras[0].nights", "screening.injury_date", "patient.email", "dose_cells", "currency", "extras[1].code")
		// Bounded free text: the name that once made a booking event larger
		// than NATS accepts (about a million characters) is refused before
		// anything is stored, as are control characters; a body over 1 MiB
		// is a 413.
		long := request(stroke, strokeDose, "USD", fit())
		long["patient"] = map[string]any{"name": strings.Repeat("A", 1_040_000), "email": "minjun@example.kr", "country": "KR", "language": "ko"}
		problemFrom(t, h.do(t, "POST", "/v1/quotes", long), 422, "validation", "patient.name")
		nul := request(stroke, strokeDose, "USD", fit())
		nul["patient"] = map[string]any{"name": "Kim\u0000Min-jun", "email": strings.Repeat("m", 250) + "@example.kr", "country": "KR", "language": "ko"}
		problemFrom(t, h.do(t, "POST", "/v1/quotes", nul), 422, "validation", "patient.name", "patient.email")
		huge := request(stroke, strokeDose, "USD", fit())
		huge["patient"] = map[string]any{"name": strings.Repeat("A", 1_100_000), "email": "minjun@example.kr", "country": "KR", "language": "ko"}
		problemFrom(t, h.do(t, "POST", "/v1/quotes", huge), 413, "payload-too-large")
		tooMany := request(stroke, strokeDose, "USD", fit())
		var extras []any
		for range 1000 {
			extras = append(extras, map[string]any{"code": "hotel", "nights": 1})
		}
		tooMany["extras"] = extras
		problemFrom(t, h.do(t, "POST", "/v1/quotes", tooMany), 422, "validation", "extras")

		unknown := request("no-such-treatment", strokeDose, "CHF", fit())
		unknown["patient"] = all["patient"]
		problemFrom(t, h.do(t, "POST", "/v1/quotes", unknown), 422, "validation", "treatment_id", "patient.email", "currency")

		body := `{"treatment_id": "` + stroke + `", "dose_cells": 100000000, "currency": "USD", "coupon": "SPRING",
			"patient": {"name": "Kim Min-jun", "email": "minjun@example.kr", "country": "KR", "language": "ko"}}`
		problemFrom(t, h.do(t, "POST", "/v1/quotes", body), 400, "malformed-request", "coupon")

		problemFrom(t, h.do(t, "POST", "/v1/quotes", request(trial, 0, "JPY", fit())), 422, "treatment-not-bookable")
	})

	t.Run("unknown quotes", func(t *testing.T) {
		problemFrom(t, h.do(t, "GET", "/v1/quotes/"+uuid.NewString(), nil), 404, "not-found")
		problemFrom(t, h.do(t, "GET", "/v1/quotes/not-a-quote", nil), 404, "not-found")
	})
}

func TestAcceptanceDecidesBookabilityOnce(t *testing.T) {
	h := startQuoting(t)

	t.Run("accepted once, a replay after a crash gets the first booking", func(t *testing.T) {
		q := h.issue(t, request(stroke, strokeDose, "USD", fit()))
		first, retried := uuid.NewString(), uuid.NewString()
		before := h.catalog.askedFor(stroke)
		a := quoteFrom(t, h.accept(t, q.ID, first, "booking-request-1"), 200)
		if a.ID != q.ID || a.Status != "accepted" || a.BookingID != first || a.Total.Amount != 3_300_000 || a.Deposit.Amount != 2_090_000 {
			t.Fatalf("accepted = %+v", a)
		}
		if h.catalog.askedFor(stroke) != before+1 {
			t.Errorf("the catalog was not asked whether %s is bookable", stroke)
		}
		// Booking crashed after the acceptance and retries under the same
		// Idempotency-Key, with the booking id it generated anew.
		again := quoteFrom(t, h.accept(t, q.ID, retried, "booking-request-1"), 200)
		if again.Status != "accepted" || again.BookingID != first {
			t.Errorf("replay answered booking %s (%s), want the first, %s", again.BookingID, again.Status, first)
		}
		problemFrom(t, h.accept(t, q.ID, uuid.NewString(), "booking-request-2"), 409, "quote-already-booked")
		if got := h.get(t, q.ID); got.Status != "accepted" || got.BookingID != first {
			t.Errorf("read back %s for booking %s", got.Status, got.BookingID)
		}
		// The race in which a revision landed between booking and acceptance
		// is gone: an accepted quote is never revised.
		problemFrom(t, h.revise(t, q.ID, map[string]any{"dose_cells": 200_000_000}), 409, "quote-not-revisable")

		var ev quotingv1.QuoteAccepted
		h.only(t, "quote:"+q.ID+":accepted", acceptedSubject, &ev)
		if ev.GetQuoteId() != q.ID || ev.GetBookingId() != first || ev.GetClinicId() != ginza {
			t.Errorf("QuoteAccepted = %v", &ev)
		}
		h.settle(t)
		if n := h.count(t, acceptedSubject, q.ID); n != 1 {
			t.Errorf("%d QuoteAccepted for one quote", n)
		}
	})

	t.Run("concurrent bookings: exactly one wins", func(t *testing.T) {
		q := h.issue(t, request(stroke, strokeDose, "JPY", fit()))
		const bookings = 5
		bearer := "Bearer " + h.token(t, bookingSvc)
		codes := make([]int, bookings)
		slugs := make([]string, bookings)
		var wg sync.WaitGroup
		for i := range bookings {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", h.base+"/internal/v1/quotes/"+q.ID+"/acceptance",
					strings.NewReader(fmt.Sprintf(`{"booking_id": %q, "idempotency_key": "concurrent-%d", "patient_subject": %q}`, uuid.NewString(), i, patientKim.Subject)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", bearer)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				var p problem
				_ = json.NewDecoder(resp.Body).Decode(&p)
				codes[i], slugs[i] = resp.StatusCode, strings.TrimPrefix(p.Type, "https://saisei.health/problems/")
			})
		}
		wg.Wait()
		won := 0
		for i := range bookings {
			switch {
			case codes[i] == 200:
				won++
			case codes[i] != 409 || slugs[i] != "quote-already-booked":
				t.Errorf("booking %d answered %d %s", i, codes[i], slugs[i])
			}
		}
		if won != 1 {
			t.Fatalf("%d bookings accepted one quote: %v", won, codes)
		}
		h.published(t, "quote:"+q.ID+":accepted")
		h.settle(t)
		if n := h.count(t, acceptedSubject, q.ID); n != 1 {
			t.Errorf("%d QuoteAccepted for one quote", n)
		}
	})

	t.Run("the catalog is asked at that moment", func(t *testing.T) {
		q := h.issue(t, request(stroke, strokeDose, "EUR", fit()))
		booking := uuid.NewString()

		// The plan was suspended a moment ago; quoting has not heard yet.
		h.catalog.mode.Store(catalogSuspended)
		p := problemFrom(t, h.accept(t, q.ID, booking, "suspended-try"), 409, "treatment-not-bookable")
		if !strings.Contains(p.Detail, strokePlan) || !strings.Contains(p.Detail, "suspended") {
			t.Errorf("detail %q does not name the plan and its status", p.Detail)
		}
		h.catalog.mode.Store(catalogDown)
		problemFrom(t, h.accept(t, q.ID, booking, "down-try"), 503, "dependency-unavailable")
		if got := h.get(t, q.ID); got.Status != "issued" || got.BookingID != "" {
			t.Errorf("after refusals the quote is %s for booking %q", got.Status, got.BookingID)
		}
		h.settle(t)
		if n := h.count(t, acceptedSubject, q.ID); n != 0 {
			t.Errorf("%d QuoteAccepted for a refused quote", n)
		}

		h.catalog.mode.Store(catalogBookable)
		if a := quoteFrom(t, h.accept(t, q.ID, booking, "reinstated-try"), 200); a.Status != "accepted" || a.BookingID != booking {
			t.Errorf("accepted = %s for %s", a.Status, a.BookingID)
		}
		h.only(t, "quote:"+q.ID+":accepted", acceptedSubject, &quotingv1.QuoteAccepted{})
	})

	t.Run("quotes that cannot be booked", func(t *testing.T) {
		review := h.issue(t, request(stroke, strokeDose, "USD", nil))
		problemFrom(t, h.accept(t, review.ID, uuid.NewString(), "review"), 409, "quote-needs-review")
		grounded := fit()
		grounded["can_travel"] = false
		ineligible := h.issue(t, request(stroke, strokeDose, "USD", grounded))
		problemFrom(t, h.accept(t, ineligible.ID, uuid.NewString(), "ineligible"), 422, "quote-ineligible")

		problemFrom(t, h.accept(t, uuid.NewString(), uuid.NewString(), "unknown"), 404, "not-found")
		problemFrom(t, h.accept(t, review.ID, "BK-1", "bad-id"), 422, "validation", "booking_id")
		problemFrom(t, h.accept(t, review.ID, uuid.NewString(), ""), 422, "validation", "idempotency_key")
		problemFrom(t, h.do(t, "POST", "/internal/v1/quotes/"+review.ID+"/acceptance",
			fmt.Sprintf(`{"booking_id": %q, "idempotency_key": "k", "patient_subject": %q, "quote_id": %q}`, uuid.NewString(), patientKim.Subject, review.ID)), 400, "malformed-request", "quote_id")

		h.settle(t)
		for _, id := range []string{review.ID, ineligible.ID} {
			if n := h.count(t, acceptedSubject, id); n != 0 {
				t.Errorf("%d QuoteAccepted for refused quote %s", n, id)
			}
		}
	})

	t.Run("valid through the end of the 14th Tokyo day", func(t *testing.T) {
		h.clock.Set(issuedAt)
		onTime := h.issue(t, request(stroke, strokeDose, "USD", fit()))
		late := h.issue(t, request(stroke, strokeDose, "USD", fit()))
		booking := uuid.NewString()

		h.clock.Set(validUntil) // 9 December, 23:59:59 in Tokyo
		if got := h.get(t, late.ID); got.Status != "issued" {
			t.Errorf("on its last second the quote is %s", got.Status)
		}
		quoteFrom(t, h.accept(t, onTime.ID, booking, "last-second"), 200)

		h.clock.Set(validUntil.Add(time.Second)) // 10 December in Tokyo
		if got := h.get(t, late.ID); got.Status != "expired" {
			t.Errorf("the next day the quote is %s", got.Status)
		}
		p := problemFrom(t, h.accept(t, late.ID, uuid.NewString(), "too-late"), 409, "quote-expired")
		if !strings.Contains(p.Detail, "2026-12-09T14:59:59Z") {
			t.Errorf("detail %q does not say until when it was valid", p.Detail)
		}
		problemFrom(t, h.revise(t, late.ID, map[string]any{"note": "extend"}), 409, "quote-not-revisable")
		// An acceptance made in time stays, and its replay still answers.
		if got := h.get(t, onTime.ID); got.Status != "accepted" {
			t.Errorf("an accepted quote reads %s after its validity", got.Status)
		}
		if a := quoteFrom(t, h.accept(t, onTime.ID, uuid.NewString(), "last-second"), 200); a.BookingID != booking {
			t.Errorf("replay after validity answered booking %s, want %s", a.BookingID, booking)
		}
		h.only(t, "quote:"+onTime.ID+":accepted", acceptedSubject, &quotingv1.QuoteAccepted{})
		h.settle(t)
		if n := h.count(t, acceptedSubject, late.ID); n != 0 {
			t.Errorf("%d QuoteAccepted for an expired quote", n)
		}
	})
}

func TestRevisionsAndCatalogChanges(t *testing.T) {
	h := startQuoting(t)

	// Issued before any review: the clinic has not seen the records.
	v1 := h.issue(t, request(stroke, strokeDose, "EUR", nil))
	if v1.Eligibility.Status != "needs_review" || v1.DisplayTotal != (amount{2_014_037, "EUR"}) {
		t.Fatalf("v1: %+v, display %v", v1.Eligibility, v1.DisplayTotal)
	}
	problemFrom(t, h.accept(t, v1.ID, uuid.NewString(), "before-review"), 409, "quote-needs-review")

	// The clinic reprices its hotel rooms; the next day it revises the quote.
	h.announce(t, strokeSnapshot(2, "active", 41_745))
	nextDay := issuedAt.Add(24 * time.Hour)
	h.clock.Set(nextDay)

	var v2 quote
	t.Run("a revision supersedes and is priced again", func(t *testing.T) {
		problemFrom(t, h.revise(t, v1.ID, map[string]any{"eligibility": map[string]any{"status": "fine"}, "note": strings.Repeat("n", 2001)}),
			422, "validation", "eligibility.status", "note")
		problemFrom(t, h.revise(t, v1.ID, map[string]any{"dose_cells": 75_000_000}), 422, "validation", "dose_cells")
		problemFrom(t, h.revise(t, uuid.NewString(), map[string]any{"note": "x"}), 404, "not-found")
		problemFrom(t, h.revise(t, v1.ID, `{"dose": 200000000}`), 400, "malformed-request", "dose")

		v2 = quoteFrom(t, h.revise(t, v1.ID, map[string]any{
			"dose_cells": 200_000_000, "extras": []any{map[string]any{"code": "hotel", "nights": 7}},
			"eligibility": map[string]any{"status": "eligible", "reasons": []any{map[string]any{"code": "clinician_review", "outcome": "eligible", "message": "MRI reviewed"}}},
			"note":        "Higher dose advised after MRI review",
		}), 201)
		if v2.ID == v1.ID || v2.Version != 2 || v2.Supersedes != v1.ID || v2.Status != "issued" || v2.DoseCells != 200_000_000 ||
			v2.Eligibility.Status != "eligible" || v2.Eligibility.Reasons[0].Code != "clinician_review" || v2.Note != "Higher dose advised after MRI review" {
			t.Fatalf("v2 = %+v", v2)
		}
		// Priced from the current catalog: 7 nights at the new ¥41,745.
		if l := v2.line("hotel"); l.UnitPrice.Amount != 41_745 || l.Amount.Amount != 292_215 {
			t.Errorf("hotel = %+v", l)
		}
		if v2.line("cell_culture").Amount.Amount != 2_500_000 {
			t.Errorf("culture = %+v", v2.line("cell_culture"))
		}
		// 10 % of ¥4,392,215 is ¥439,221.5: the tax is rounded down.
		if v2.Subtotal.Amount != 4_392_215 || v2.Tax.Amount != 439_221 || v2.Total.Amount != 4_831_436 ||
			v2.Deposit.Amount != 3_300_000 || v2.Balance.Amount != 1_531_436 {
			t.Errorf("subtotal %v tax %v total %v deposit %v balance %v", v2.Subtotal, v2.Tax, v2.Total, v2.Deposit, v2.Balance)
		}
		// Still in euros, the patient's currency; its validity starts again.
		if v2.DisplayTotal != (amount{2_948_695, "EUR"}) || !v2.IssuedAt.Equal(nextDay) || !v2.ValidUntil.Equal(validUntil.Add(24*time.Hour)) {
			t.Errorf("display %v issued %v valid until %v", v2.DisplayTotal, v2.IssuedAt, v2.ValidUntil)
		}

		if old := h.get(t, v1.ID); old.Status != "superseded" || old.SupersededBy != v2.ID {
			t.Errorf("v1 is %s, superseded by %q", old.Status, old.SupersededBy)
		}
		p := problemFrom(t, h.accept(t, v1.ID, uuid.NewString(), "old-version"), 409, "quote-superseded")
		if !strings.Contains(p.Detail, "version 2") || !strings.Contains(p.Detail, v2.ID) {
			t.Errorf("detail %q does not name the version to book", p.Detail)
		}
		problemFrom(t, h.revise(t, v1.ID, map[string]any{"note": "again"}), 409, "quote-not-revisable")

		var ev quotingv1.QuoteIssued
		h.only(t, "quote:"+v2.ID+":issued", issuedSubject, &ev)
		if ev.GetVersion() != 2 || ev.GetSupersedes() != v1.ID || ev.GetTotal().GetAmount() != 4_831_436 || ev.GetTax().GetAmount() != 439_221 ||
			ev.GetEligibility() != "eligible" {
			t.Errorf("QuoteIssued = %v", &ev)
		}
	})

	t.Run("older or equal catalog revisions are ignored", func(t *testing.T) {
		h.announceAs(t, strokeSnapshot(1, "active", 38_000), "treatment:"+stroke+":rev:1:replayed")
		h.announceAs(t, strokeSnapshot(2, "active", 1), "treatment:"+stroke+":rev:2:conflicting")
		q := h.issue(t, request(stroke, strokeDose, "JPY", fit(), map[string]any{"code": "hotel", "nights": 1}))
		if l := q.line("hotel"); l.UnitPrice.Amount != 41_745 {
			t.Errorf("hotel priced %v from a stale snapshot, want 41745", l.UnitPrice)
		}
	})

	t.Run("a stopped plan withdraws the open quotes once", func(t *testing.T) {
		open := h.issue(t, request(stroke, strokeDose, "JPY", fit()))
		grounded := fit()
		grounded["can_travel"] = false
		ineligible := h.issue(t, request(stroke, strokeDose, "JPY", grounded))
		booked := h.issue(t, request(stroke, strokeDose, "JPY", fit()))
		quoteFrom(t, h.accept(t, booked.ID, uuid.NewString(), "booked-before"), 200)
		otherTreatment := h.issue(t, request(exosome, exosomeDose, "JPY", fit()))

		h.announce(t, strokeSnapshot(3, "suspended", 41_745))

		for _, id := range []string{v2.ID, open.ID, ineligible.ID} {
			if got := h.get(t, id); got.Status != "withdrawn" {
				t.Errorf("quote %s is %s, want withdrawn", id, got.Status)
			}
			var ev quotingv1.QuoteWithdrawn
			h.only(t, "quote:"+id+":withdrawn", withdrawnSubject, &ev)
			if ev.GetQuoteId() != id || ev.GetTreatmentId() != stroke || ev.GetClinicId() != ginza || ev.GetPlanNumber() != strokePlan || ev.GetPlanStatus() != "suspended" {
				t.Errorf("QuoteWithdrawn = %v", &ev)
			}
		}
		// Withdrawn, an ineligible patient's quote still asks for no money.
		if got := h.get(t, ineligible.ID); got.Deposit != nil || got.Balance != nil {
			t.Errorf("withdrawn ineligible quote shows deposit %v, balance %v", got.Deposit, got.Balance)
		}
		for id, want := range map[string]string{v1.ID: "superseded", booked.ID: "accepted", otherTreatment.ID: "issued"} {
			if got := h.get(t, id); got.Status != want {
				t.Errorf("quote %s is %s, want %s", id, got.Status, want)
			}
		}

		problemFrom(t, h.accept(t, open.ID, uuid.NewString(), "after-suspension"), 409, "quote-withdrawn")
		problemFrom(t, h.revise(t, open.ID, map[string]any{"note": "reinstate"}), 409, "quote-not-revisable")
		problemFrom(t, h.do(t, "POST", "/v1/quotes", request(stroke, strokeDose, "JPY", fit())), 422, "treatment-not-bookable")

		// The same suspension again, as after a catalog restart: nothing new.
		h.announceAs(t, strokeSnapshot(3, "suspended", 41_745), "treatment:"+stroke+":rev:3:again")
		h.settle(t)
		for _, id := range []string{v1.ID, v2.ID, open.ID, ineligible.ID, booked.ID, otherTreatment.ID} {
			want := 0
			if id == v2.ID || id == open.ID || id == ineligible.ID {
				want = 1
			}
			if n := h.count(t, withdrawnSubject, id); n != want {
				t.Errorf("quote %s: %d QuoteWithdrawn, want %d", id, n, want)
			}
		}
	})
}

// revisionsOf are the QuoteIssued events of versions superseding quote id,
// whichever clinic's subject they were published on.
func (h *harness) revisionsOf(t *testing.T, id string) []*quotingv1.QuoteIssued {
	t.Helper()
	var out []*quotingv1.QuoteIssued
	for _, e := range h.events(t) {
		if !strings.HasSuffix(e.id, ":issued") {
			continue
		}
		var ev quotingv1.QuoteIssued
		if err := proto.Unmarshal(e.data, &ev); err != nil {
			t.Fatalf("event %s: %v", e.id, err)
		}
		if ev.GetSupersedes() == id {
			out = append(out, &ev)
		}
	}
	return out
}

func TestOnlyTheQuotesPatientAndClinicReachIt(t *testing.T) {
	h := startQuoting(t)
	// Patient Kim's quotes at the Ginza clinic: one to read and revise, one
	// for booking to accept.
	q := h.issue(t, request(stroke, strokeDose, "JPY", fit()))
	booked := h.issue(t, request(stroke, strokeDose, "JPY", fit()))
	unknown := uuid.NewString()
	get, revise, accept := "/v1/quotes/"+q.ID, "/v1/clinic/quotes/"+q.ID+"/revisions", "/internal/v1/quotes/"+booked.ID+"/acceptance"
	lee, osaka := h.as(t, patientLee), h.as(t, osakaStaff)
	// A token signed by an issuer quoting does not trust.
	forged := map[string]string{"Authorization": "Bearer " + devtest.NewIssuer(t, "quoting").Token(t, patientKim)}

	h.settle(t)
	before := len(h.events(t))

	type call struct {
		name         string
		method, path string
		body         any
		header       map[string]string
		status       int
		slug         string
	}
	routes := []struct {
		method, path string
		body         any
		roles        []identity.Role
	}{
		{"POST", "/v1/quotes", request(stroke, strokeDose, "JPY", fit()), []identity.Role{identity.Patient}},
		{"GET", get, nil, []identity.Role{identity.Patient, identity.Clinic}},
		{"POST", revise, map[string]any{"dose_cells": 200_000_000}, []identity.Role{identity.Clinic}},
		{"POST", accept, acceptance(uuid.NewString(), "refused", patientKim.Subject), []identity.Role{identity.Service}},
	}
	var refused []call
	for _, r := range routes {
		route := r.method + " " + strings.Replace(r.path, q.ID, "{id}", 1)
		route = strings.Replace(route, booked.ID, "{id}", 1)
		refused = append(refused,
			call{route + " without a token", r.method, r.path, r.body, anonymous, 401, "unauthorized"},
			call{route + " with a forged token", r.method, r.path, r.body, forged, 401, "unauthorized"})
		// Each role's rightful caller, where the route is not the role's.
		for _, p := range []identity.Principal{patientKim, ginzaStaff, bookingSvc, financeDesk, operator} {
			if !slices.Contains(r.roles, p.Role) {
				refused = append(refused, call{route + " as " + string(p.Role), r.method, r.path, r.body, h.as(t, p), 403, "forbidden"})
			}
		}
	}
	// Another tenant's quote is no quote at all.
	refused = append(refused,
		call{"another patient reads", "GET", get, nil, lee, 404, "not-found"},
		call{"another clinic reads", "GET", get, nil, osaka, 404, "not-found"},
		call{"another clinic revises", "POST", revise, map[string]any{"dose_cells": 200_000_000}, osaka, 404, "not-found"},
		call{"booking for another patient", "POST", accept, acceptance(uuid.NewString(), "lee-booking", patientLee.Subject), nil, 404, "not-found"},
		call{"booking for nobody", "POST", accept, acceptance(uuid.NewString(), "nobody-booking", ""), nil, 404, "not-found"},
	)

	t.Run("refused callers", func(t *testing.T) {
		for _, c := range refused {
			t.Run(c.name, func(t *testing.T) {
				r := h.do(t, c.method, c.path, c.body, c.header)
				problemFrom(t, r, c.status, c.slug)
				if c.status == 401 && !strings.HasPrefix(r.wwwAuthenticate, "Bearer ") {
					t.Errorf("401 challenges with %q, want Bearer", r.wwwAuthenticate)
				}
			})
		}
	})

	t.Run("a refusal changes nothing", func(t *testing.T) {
		if got := h.get(t, q.ID); got.Status != "issued" || got.SupersededBy != "" || got.DoseCells != strokeDose {
			t.Errorf("after refused revisions the quote is %s, superseded by %q, for %d cells", got.Status, got.SupersededBy, got.DoseCells)
		}
		if got := h.get(t, booked.ID); got.Status != "issued" || got.BookingID != "" {
			t.Errorf("after refused acceptances the quote is %s for booking %q", got.Status, got.BookingID)
		}
		h.settle(t)
		// The only event since is settle's own QuoteIssued: no quote was
		// issued, revised (no version 2) or accepted by a refused caller.
		if evs := h.events(t); len(evs) != before+1 {
			var ids []string
			for _, e := range evs[before:] {
				ids = append(ids, e.id)
			}
			t.Errorf("%d events published by refused calls: %v", len(evs)-before-1, ids)
		}
		if vs := h.revisionsOf(t, q.ID); len(vs) != 0 {
			t.Errorf("a refused revision issued version %d", vs[0].GetVersion())
		}
		if n := h.count(t, acceptedSubject, booked.ID); n != 0 {
			t.Errorf("%d QuoteAccepted for another patient's booking", n)
		}
	})

	t.Run("another tenant's quote reads exactly like an unknown one", func(t *testing.T) {
		missing := h.do(t, "GET", "/v1/quotes/"+unknown, nil)
		problemFrom(t, missing, 404, "not-found")
		for who, header := range map[string]map[string]string{"another patient": lee, "another clinic": osaka} {
			r := h.do(t, "GET", get, nil, header)
			if got := strings.ReplaceAll(string(r.raw), q.ID, unknown); r.status != missing.status || got != string(missing.raw) {
				t.Errorf("%s reads %d %s, an unknown quote %d %s", who, r.status, got, missing.status, missing.raw)
			}
		}
	})

	t.Run("a quote belongs to the patient who asked for it", func(t *testing.T) {
		own := quoteFrom(t, h.do(t, "POST", "/v1/quotes", request(exosome, exosomeDose, "KRW", fit()), lee), 201)
		if got := quoteFrom(t, h.do(t, "GET", "/v1/quotes/"+own.ID, nil, lee), 200); got.ID != own.ID || got.Total != own.Total {
			t.Errorf("Lee reads back %+v", got)
		}
		problemFrom(t, h.do(t, "GET", "/v1/quotes/"+own.ID, nil), 404, "not-found")
		if got := quoteFrom(t, h.do(t, "GET", "/v1/quotes/"+own.ID, nil, h.as(t, ginzaStaff)), 200); got.ClinicID != ginza {
			t.Errorf("the clinic reads a quote of %s", got.ClinicID)
		}
		problemFrom(t, h.do(t, "GET", "/v1/quotes/"+own.ID, nil, osaka), 404, "not-found")
		// Booking may accept it for Lee only.
		problemFrom(t, h.accept(t, own.ID, uuid.NewString(), "kim-takes-lees"), 404, "not-found")
		if a := quoteFrom(t, h.do(t, "POST", "/internal/v1/quotes/"+own.ID+"/acceptance", acceptance(uuid.NewString(), "lee-books", patientLee.Subject)), 200); a.Status != "accepted" {
			t.Errorf("Lee's acceptance left the quote %s", a.Status)
		}
	})

	t.Run("the owner and its own clinic", func(t *testing.T) {
		if got := h.get(t, q.ID); got.ID != q.ID || got.Total.Amount != 3_300_000 {
			t.Errorf("Kim reads %+v", got)
		}
		if got := quoteFrom(t, h.do(t, "GET", get, nil, h.as(t, ginzaStaff)), 200); got.ID != q.ID || got.Total.Amount != 3_300_000 {
			t.Errorf("the clinic reads %+v", got)
		}

		v2 := quoteFrom(t, h.revise(t, q.ID, map[string]any{"dose_cells": 200_000_000}), 201)
		if v2.Version != 2 || v2.Supersedes != q.ID || v2.DoseCells != 200_000_000 || v2.Total.Amount != 4_510_000 {
			t.Fatalf("v2 = version %d superseding %q, %d cells, total %v", v2.Version, v2.Supersedes, v2.DoseCells, v2.Total)
		}
		var ev quotingv1.QuoteIssued
		h.only(t, "quote:"+v2.ID+":issued", issuedSubject, &ev)
		if ev.GetVersion() != 2 || ev.GetSupersedes() != q.ID {
			t.Errorf("QuoteIssued = %v", &ev)
		}
		// The new version is still Kim's: she reads and books it, Lee does not.
		if got := h.get(t, v2.ID); got.Version != 2 || got.Status != "issued" {
			t.Errorf("Kim reads v2 as version %d, %s", got.Version, got.Status)
		}
		problemFrom(t, h.do(t, "GET", "/v1/quotes/"+v2.ID, nil, lee), 404, "not-found")
		problemFrom(t, h.do(t, "GET", "/v1/quotes/"+v2.ID, nil, osaka), 404, "not-found")
		problemFrom(t, h.do(t, "POST", "/internal/v1/quotes/"+v2.ID+"/acceptance", acceptance(uuid.NewString(), "lee-takes-v2", patientLee.Subject)), 404, "not-found")
		booking := uuid.NewString()
		if a := quoteFrom(t, h.accept(t, v2.ID, booking, "kim-books-v2"), 200); a.Status != "accepted" || a.BookingID != booking {
			t.Errorf("v2 accepted = %s for %q", a.Status, a.BookingID)
		}

		first := uuid.NewString()
		if a := quoteFrom(t, h.accept(t, booked.ID, first, "kim-books"), 200); a.Status != "accepted" || a.BookingID != first {
			t.Errorf("accepted = %s for %q", a.Status, a.BookingID)
		}
		var acc quotingv1.QuoteAccepted
		h.only(t, "quote:"+booked.ID+":accepted", acceptedSubject, &acc)
		if acc.GetBookingId() != first {
			t.Errorf("QuoteAccepted = %v", &acc)
		}
	})
}

// Screening answers and eligibility are sealed at rest (Tink envelope
// encryption), rows written before sealing are sealed when quoting starts,
// and every read of them by a clinic is in the audit log operators read.
func TestHealthInformationIsSealedAtRestAndItsReadsAudited(t *testing.T) {
	h := startQuoting(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, h.admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(ctx) })
	screened := fit()
	screened["cancer_free_years"] = 6
	q := h.issue(t, request(stroke, strokeDose, "USD", screened))

	var clearScreening, clearEligibility *string
	var sealedScreening, sealedEligibility []byte
	row := `SELECT screening::text, eligibility::text, screening_sealed, eligibility_sealed FROM quoting.quotes WHERE id = $1`
	if err := db.QueryRow(ctx, row, q.ID).Scan(&clearScreening, &clearEligibility, &sealedScreening, &sealedEligibility); err != nil {
		t.Fatal(err)
	}
	if clearScreening != nil || clearEligibility != nil || len(sealedScreening) == 0 || len(sealedEligibility) == 0 ||
		bytes.Contains(sealedScreening, []byte("cancer_free_years")) || bytes.Contains(sealedEligibility, []byte("eligible")) {
		t.Fatalf("stored in clear: screening %v eligibility %v sealed %q", clearScreening, clearEligibility, sealedScreening)
	}
	if got := h.get(t, q.ID); got.Screening == nil || got.Screening.CancerFreeYears == nil || *got.Screening.CancerFreeYears != 6 ||
		got.Eligibility.Status != "eligible" {
		t.Fatalf("the patient reads back %+v %+v", got.Screening, got.Eligibility)
	}

	// A quote stored in clear text (before sealing existed) is sealed when
	// quoting starts again, and reads the same.
	if _, err := db.Exec(ctx, `UPDATE quoting.quotes SET screening = '{"diagnosis_confirmed": true, "cancer_free_years": 6,
		"severe_organ_disease": false, "can_travel": true}', eligibility = '{"status": "eligible", "reasons": []}',
		screening_sealed = NULL, eligibility_sealed = NULL WHERE id = $1`, q.ID); err != nil {
		t.Fatal(err)
	}
	addr, base := devtest.Addr(t)
	second := h.cfg
	second.HTTPAddr = addr
	devtest.RunService(t, base, func(ctx context.Context) error { return server.Run(ctx, second, h.deps) })
	if err := db.QueryRow(ctx, row, q.ID).Scan(&clearScreening, &clearEligibility, &sealedScreening, &sealedEligibility); err != nil {
		t.Fatal(err)
	}
	if clearScreening != nil || clearEligibility != nil || len(sealedScreening) == 0 {
		t.Fatalf("the clear-text row was not sealed at start: %v %v", clearScreening, clearEligibility)
	}
	if got := h.get(t, q.ID); got.Screening == nil || *got.Screening.CancerFreeYears != 6 {
		t.Fatalf("after sealing, the patient reads %+v", got.Screening)
	}

	// The patient's own reads are not audited; the clinic's are, and so is
	// its revision.
	h.get(t, q.ID)
	quoteFrom(t, h.do(t, "GET", "/v1/quotes/"+q.ID, nil, h.as(t, ginzaStaff)), 200)
	quoteFrom(t, h.revise(t, q.ID, map[string]any{"note": "records reviewed"}), 201)
	var audit struct {
		Items []struct {
			At                            time.Time
			Subject, Role, Action, Record string
			ClinicID                      string `json:"clinic_id"`
		}
	}
	r := h.do(t, "GET", "/v1/admin/audit?record=quote:"+q.ID, nil, h.as(t, operator))
	if r.status != 200 || json.Unmarshal(r.raw, &audit) != nil {
		t.Fatalf("audit log: %d %s", r.status, r.raw)
	}
	var got []string
	for _, e := range audit.Items {
		got = append(got, e.Action+" by "+e.Role+" "+e.Subject)
		if e.Role == "clinic" && (e.ClinicID != ginza || e.At.IsZero() || e.Record != "quote:"+q.ID) {
			t.Errorf("entry %+v", e)
		}
	}
	want := []string{"read by clinic " + ginzaStaff.Subject, "revise by clinic " + ginzaStaff.Subject}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("audit %v, want %v", got, want)
	}
	for _, c := range []struct {
		who  map[string]string
		want int
	}{{anonymous, 401}, {h.as(t, ginzaStaff), 403}, {h.as(t, patientKim), 403}, {h.as(t, financeDesk), 403}} {
		if r := h.do(t, "GET", "/v1/admin/audit", nil, c.who); r.status != c.want {
			t.Errorf("audit log as %v: %d, want %d", c.who, r.status, c.want)
		}
	}
	problemFrom(t, h.do(t, "GET", "/v1/admin/audit?limit=0", nil, h.as(t, operator)), 422, "validation", "limit")
}
