package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/saisei-health/platform/pkg/bus"
	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/events/bookingv1"
	"github.com/saisei-health/platform/pkg/events/paymentv1"
	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/money"
	"github.com/saisei-health/platform/pkg/servicehost"
	"github.com/saisei-health/platform/pkg/subject"
	"github.com/saisei-health/platform/pkg/validation"
	"github.com/saisei-health/platform/pkg/wire"
	"github.com/saisei-health/platform/services/booking/server"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }

const clinicID = "tokyo-ginza-namiki-clinic"

// The standard quote: ¥3,300,000 with tax, of which ¥1,320,000 is the
// deposit (harvest, culture, testing) and ¥1,980,000 the balance.
var (
	standardTotal   = money.Yen(3_300_000)
	standardDeposit = money.Yen(1_320_000)
	standardBalance = money.Yen(1_980_000)
)

// ---- quoting, faked as its acceptance endpoint behaves ----

type patientJSON struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Country  string `json:"country"`
	Language string `json:"language"`
}

// quoteJSON is quoting's QuoteView, the fields its acceptance answers with.
type quoteJSON struct {
	ID              string       `json:"id"`
	Version         int          `json:"version"`
	Status          string       `json:"status"`
	TreatmentID     string       `json:"treatment_id"`
	TreatmentName   string       `json:"treatment_name"`
	ClinicID        string       `json:"clinic_id"`
	ClinicName      string       `json:"clinic_name"`
	DoseCells       int64        `json:"dose_cells"`
	Visits          int          `json:"visits"`
	RequiresHarvest bool         `json:"requires_harvest"`
	Patient         patientJSON  `json:"patient"`
	Subtotal        money.Money  `json:"subtotal"`
	Tax             money.Money  `json:"tax"`
	TaxRatePercent  int          `json:"tax_rate_percent"`
	Total           money.Money  `json:"total"`
	Deposit         *money.Money `json:"deposit"`
	Balance         *money.Money `json:"balance"`
	IssuedAt        time.Time    `json:"issued_at"`
	ValidUntil      time.Time    `json:"valid_until"`
	BookingID       string       `json:"booking_id,omitempty"`
}

func standardQuote() quoteJSON {
	deposit, balance := standardDeposit, standardBalance
	return quoteJSON{
		ID: uuid.NewString(), Version: 1, Status: "issued",
		TreatmentID: "ginza-adipose-msc-stroke-iv", TreatmentName: "Adipose-derived MSC therapy for stroke recovery (single IV infusion)",
		ClinicID: clinicID, ClinicName: "Ginza Namiki-dori Regenerative Clinic",
		DoseCells: 100_000_000, Visits: 2, RequiresHarvest: true,
		Patient:  patientJSON{Name: "Lin Mei-hua", Email: "meihua.lin@example.tw", Country: "TW", Language: "zh"},
		Subtotal: money.Yen(3_000_000), Tax: money.Yen(300_000), TaxRatePercent: 10, Total: standardTotal,
		Deposit: &deposit, Balance: &balance,
		IssuedAt: time.Now().Add(-time.Hour).UTC(), ValidUntil: time.Now().Add(13 * 24 * time.Hour).UTC(),
	}
}

// acceptance is one call booking made on quoting.
type acceptance struct {
	QuoteID        string `json:"-"`
	BookingID      string `json:"booking_id"`
	IdempotencyKey string `json:"idempotency_key"`
	PatientSubject string `json:"patient_subject"`
	// Caller is whom the call's bearer token names.
	Caller identity.Principal `json:"-"`
}

type offer struct {
	quote   quoteJSON
	owner   string           // the patient subject the quote was issued to
	refusal *httpkit.Problem // what quoting answers instead of accepting
	key     string           // the idempotency key it was accepted under
}

// fakeQuoting answers POST /internal/v1/quotes/{id}/acceptance as quoting
// does (services/quoting/internal/service AcceptQuote): 200 with the quote
// and the booking id it recorded, the booking id it FIRST recorded when the
// same idempotency key asks again, or a problem. Another patient's quote is,
// as in quoting, no quote at all: 404. It sits behind the identity guard
// quoting's route has (services only).
type fakeQuoting struct {
	mu          sync.Mutex
	offers      map[string]*offer
	calls       []acceptance
	unavailable bool // answers 503, as quoting does when the catalog is down
	loseNext    bool // accepts the next call, then drops the connection unanswered
	// together, when set, holds each call until all it counts have arrived,
	// so concurrent booking requests get their answers at the same moment.
	together *sync.WaitGroup
}

func (q *fakeQuoting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/internal/v1/quotes/")
	id, ok2 := strings.CutSuffix(id, "/acceptance")
	if r.Method != http.MethodPost || !ok || !ok2 {
		httpkit.WriteProblem(w, httpkit.ProblemNoRoute.New(r.Method+" "+r.URL.Path))
		return
	}
	var call acceptance
	if err := httpkit.DecodeJSON(r, &call); err != nil {
		httpkit.WriteProblem(w, err.(*httpkit.Problem))
		return
	}
	call.QuoteID = id
	call.Caller, _ = identity.FromContext(r.Context())
	if g := q.together; g != nil {
		g.Done()
		g.Wait()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, call)
	o := q.offers[id]
	switch {
	case q.unavailable:
		httpkit.WriteProblem(w, problem(503, "dependency-unavailable", "Try again shortly", "catalog: connection refused"))
		return
	case o == nil || o.owner == "" || o.owner != call.PatientSubject:
		httpkit.WriteProblem(w, problem(404, "not-found", "Quote not found", fmt.Sprintf("quote not found: %q", id)))
		return
	case uuid.Validate(call.BookingID) != nil:
		httpkit.WriteProblem(w, httpkit.Invalid(validation.FieldError{Field: "booking_id", Message: "must be a booking id"}))
		return
	case call.IdempotencyKey == "" || len(call.IdempotencyKey) > 255:
		httpkit.WriteProblem(w, httpkit.Invalid(validation.FieldError{Field: "idempotency_key", Message: "must be 1 to 255 characters"}))
		return
	case o.key == call.IdempotencyKey:
		// A repeat: the booking id first recorded, not the one offered now.
	case o.key != "":
		httpkit.WriteProblem(w, problem(409, "quote-already-booked", "Quote is already booked",
			fmt.Sprintf("quote is already booked: quote %s belongs to booking %s", id, o.quote.BookingID)))
		return
	case o.refusal != nil:
		httpkit.WriteProblem(w, o.refusal)
		return
	default:
		o.key, o.quote.BookingID, o.quote.Status = call.IdempotencyKey, call.BookingID, "accepted"
	}
	if q.loseNext {
		q.loseNext = false
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	_ = httpkit.WriteJSON(w, http.StatusOK, o.quote)
}

func problem(status int, slug, title, detail string) *httpkit.Problem {
	return &httpkit.Problem{Type: httpkit.ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

// offer issues quote to patient-kim, bookable (refusal nil) or refused
// with refusal; it returns the quote id.
func (q *fakeQuoting) offer(quote quoteJSON, refusal *httpkit.Problem) string {
	return q.offerTo(kim.Subject, quote, refusal)
}

// offerTo issues quote to the patient whose subject is owner.
func (q *fakeQuoting) offerTo(owner string, quote quoteJSON, refusal *httpkit.Problem) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.offers[quote.ID] = &offer{quote: quote, owner: owner, refusal: refusal}
	return quote.ID
}

func (q *fakeQuoting) callsFor(quoteID string) []acceptance {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []acceptance
	for _, c := range q.calls {
		if c.QuoteID == quoteID {
			out = append(out, c)
		}
	}
	return out
}

func (q *fakeQuoting) callCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.calls)
}

func (q *fakeQuoting) set(f func(q *fakeQuoting)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f(q)
}

// ---- payment, faked as its deposit endpoint behaves ----

type depositRequest struct {
	BookingID string      `json:"booking_id"`
	ClinicID  string      `json:"clinic_id"`
	Deposit   money.Money `json:"deposit"`
	Balance   money.Money `json:"balance"`
	Patient   patientJSON `json:"patient"`
	// DepositMethod is card or bank_transfer, as payment takes it.
	DepositMethod string `json:"deposit_method"`
	// caller is whom the call's bearer token names.
	caller identity.Principal
}

type depositAnswer struct {
	PaymentID       string      `json:"payment_id"`
	BookingID       string      `json:"booking_id"`
	Amount          money.Money `json:"amount"`
	PaymentIntentID string      `json:"payment_intent_id"`
	ClientSecret    string      `json:"client_secret"`
	Status          string      `json:"status"`
}

// fakePayment answers POST /internal/v1/deposits as payment does
// (services/payment/internal/service CreateDeposit): it keys the deposit on
// the booking, so asking again returns the same intent. It sits behind the
// identity guard payment's route has (services only).
type fakePayment struct {
	mu       sync.Mutex
	calls    []depositRequest
	answered map[string]depositAnswer
	plans    map[string]depositRequest
	down     bool // answers 502, as payment does when Stripe fails
}

func (p *fakePayment) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/internal/v1/deposits" {
		httpkit.WriteProblem(w, httpkit.ProblemNoRoute.New(r.Method+" "+r.URL.Path))
		return
	}
	var req depositRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		httpkit.WriteProblem(w, err.(*httpkit.Problem))
		return
	}
	req.caller, _ = identity.FromContext(r.Context())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, req)
	var v validation.Validator
	v.Check(uuid.Validate(req.BookingID) == nil, "booking_id", "must be a booking id")
	v.Check(req.ClinicID != "", "clinic_id", "is required")
	v.Check(req.Deposit.Currency == money.JPY && req.Deposit.IsPositive(), "deposit", "must be a positive JPY amount")
	v.Check(req.Balance.Currency == money.JPY && !req.Balance.IsNegative(), "balance", "must be a JPY amount, zero when paid in full with the deposit")
	v.Check(req.Patient.Email != "", "patient.email", "is required")
	if err := v.Err(); err != nil {
		httpkit.WriteProblem(w, httpkit.Invalid(validation.Fields(err)...))
		return
	}
	if plan, ok := p.plans[req.BookingID]; ok && (plan.Deposit != req.Deposit || plan.Balance != req.Balance || plan.ClinicID != req.ClinicID) {
		httpkit.WriteProblem(w, problem(409, "payment-plan-conflict", "Booking already has a different payment plan", req.BookingID))
		return
	}
	p.plans[req.BookingID] = req
	if p.down {
		httpkit.WriteProblem(w, problem(502, "payment-provider-unavailable", "Payment provider unavailable", "create deposit intent: connection reset"))
		return
	}
	a, ok := p.answered[req.BookingID]
	if !ok {
		pi := "pi_" + randomHex(12)
		a = depositAnswer{PaymentID: uuid.NewString(), BookingID: req.BookingID, Amount: req.Deposit,
			PaymentIntentID: pi, ClientSecret: pi + "_secret_" + randomHex(8), Status: "requires_payment"}
		p.answered[req.BookingID] = a
	}
	_ = httpkit.WriteJSON(w, http.StatusCreated, a)
}

func (p *fakePayment) callsFor(bookingID string) []depositRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []depositRequest
	for _, c := range p.calls {
		if c.BookingID == bookingID {
			out = append(out, c)
		}
	}
	return out
}

func (p *fakePayment) intent(bookingID string) depositAnswer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answered[bookingID]
}

func (p *fakePayment) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- the booking stream, as a downstream service sees it ----

type bookingEvent struct {
	ID      string
	Subject string
	Message proto.Message
	Booking *bookingv1.Booking
}

// name is the event's last subject token: created, confirmed, ...
func (e bookingEvent) name() string { return e.Subject[strings.LastIndex(e.Subject, ".")+1:] }

// bookingStream collects every message stored on the BOOKING stream, by
// booking: what JetStream kept is what every consumer will see.
type bookingStream struct {
	mu          sync.Mutex
	byBooking   map[string][]bookingEvent
	undecodable []string
	read        uint64 // stream sequence of the last message read
}

func followBookingStream(t *testing.T, js jetstream.JetStream) *bookingStream {
	t.Helper()
	s := &bookingStream{byBooking: map[string][]bookingEvent{}}
	cons, err := js.OrderedConsumer(context.Background(), bus.StreamBooking, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev := bookingEvent{ID: m.Headers().Get(bus.HeaderEventID), Subject: m.Subject()}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(m.Headers().Get(bus.HeaderEventType)))
		if err == nil {
			ev.Message = mt.New().Interface()
			err = proto.Unmarshal(m.Data(), ev.Message)
		}
		carrier, ok := ev.Message.(interface{ GetBooking() *bookingv1.Booking })
		s.mu.Lock()
		defer s.mu.Unlock()
		if md, err := m.Metadata(); err == nil {
			s.read = md.Sequence.Stream
		}
		if err != nil || !ok {
			s.undecodable = append(s.undecodable, fmt.Sprintf("%s %s: %v", m.Subject(), ev.ID, err))
			return
		}
		ev.Booking = carrier.GetBooking()
		s.byBooking[ev.Booking.GetId()] = append(s.byBooking[ev.Booking.GetId()], ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Stop()
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.undecodable) > 0 {
			t.Errorf("undecodable booking events: %v", s.undecodable)
		}
	})
	return s
}

func (s *bookingStream) of(bookingID string) []bookingEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byBooking[bookingID])
}

func (s *bookingStream) readUpTo() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read
}

func names(evs []bookingEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.name()
	}
	return out
}

// ---- the running service ----

// The callers the rig speaks as unless a test says otherwise: the patient
// every offered quote is issued to, and staff of the standard quote's clinic.
var (
	kim        = identity.Principal{Subject: "patient-kim", Role: identity.Patient}
	ginzaStaff = identity.Principal{Subject: "staff-ginza-1", Role: identity.Clinic, ClinicID: clinicID}
	// lee is another patient, who must never reach Kim's bookings.
	lee = identity.Principal{Subject: "patient-lee", Role: identity.Patient}
	// bookingItself is how booking calls quoting and payment.
	bookingItself = identity.Principal{Subject: "booking", Role: identity.Service}
)

type rig struct {
	base    string
	issuer  *devtest.Issuer
	quoting *fakeQuoting
	payment *fakePayment
	js      jetstream.JetStream
	db      *pgxpool.Pool
	stream  *bookingStream
}

func startBooking(t *testing.T) *rig {
	t.Helper()
	dsn := devtest.ServiceDSN(t, devtest.NewDatabase(t), "booking")
	natsURL, natsTrust := devtest.SecureNATS(t)
	r := &rig{
		issuer:  devtest.NewIssuer(t, "booking"),
		quoting: &fakeQuoting{offers: map[string]*offer{}},
		payment: &fakePayment{answered: map[string]depositAnswer{}, plans: map[string]depositRequest{}},
	}
	// The fakes admit only services, as quoting's and payment's internal
	// routes do, so booking must call them with its own token.
	verifier, err := identity.NewVerifier(context.Background(), r.issuer.Config("booking"), nil)
	if err != nil {
		t.Fatal(err)
	}
	services := identity.NewGuard(verifier, slog.New(slog.DiscardHandler)).Require(identity.Service)
	quoting, payment := httptest.NewServer(services(r.quoting)), httptest.NewServer(services(r.payment))
	t.Cleanup(quoting.Close)
	t.Cleanup(payment.Close)

	addr, base := devtest.Addr(t)
	r.base = base
	cfg := server.Config{Config: servicehost.Config{Name: "booking", Identity: r.issuer.Config("booking"), HTTPAddr: addr, DatabaseURL: dsn, NATSURL: natsURL, NATSCreds: devtest.ServiceCreds(t, natsTrust, "booking"), StreamReplicas: 1},
		QuotingURL: quoting.URL, PaymentURL: payment.URL}
	deps := devtest.Deps(t, "booking", nil)
	devtest.RunService(t, base, func(ctx context.Context) error { return server.Run(ctx, cfg, deps) })

	nc, js, err := bus.Connect(natsURL, "test", devtest.Observer(t, natsTrust))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.js = js
	if r.db, err = pgxpool.New(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.db.Close)
	r.stream = followBookingStream(t, js)
	return r
}

type reply struct {
	status int
	header http.Header
	raw    []byte
}

// as is the Authorization header of p's bearer token.
func (r *rig) as(t *testing.T, p identity.Principal) map[string]string {
	t.Helper()
	return map[string]string{"Authorization": "Bearer " + r.issuer.Token(t, p)}
}

// nobody sends no Authorization header at all.
var nobody = map[string]string{"Authorization": ""}

// with is header plus one more field.
func with(header map[string]string, k, v string) map[string]string {
	out := maps.Clone(header)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

// call sends a request as the caller header's Authorization names (an empty
// value: none) or, without one, as the path's usual caller: patient-kim for
// the patient's API, the standard quote's clinic for its reports.
func (r *rig) call(t *testing.T, method, path string, body any, header map[string]string) reply {
	t.Helper()
	if _, chosen := header["Authorization"]; !chosen {
		who := kim
		if strings.HasPrefix(path, "/v1/clinic/") {
			who = ginzaStaff
		}
		header = with(header, "Authorization", r.as(t, who)["Authorization"])
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, r.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, raw: raw}
}

type bookingView struct {
	ID              string      `json:"id"`
	Status          string      `json:"status"`
	QuoteID         string      `json:"quote_id"`
	ClinicID        string      `json:"clinic_id"`
	ClinicName      string      `json:"clinic_name"`
	TreatmentID     string      `json:"treatment_id"`
	TreatmentName   string      `json:"treatment_name"`
	DoseCells       int64       `json:"dose_cells"`
	RequiresHarvest bool        `json:"requires_harvest"`
	Patient         patientJSON `json:"patient"`
	Total           money.Money `json:"total"`
	DepositDue      money.Money `json:"deposit_due"`
	BalanceDue      money.Money `json:"balance_due"`
	BalanceFailure  string      `json:"balance_failure"`
	HarvestedAt     *time.Time  `json:"harvested_at"`
	AdministeredAt  *time.Time  `json:"administered_at"`
	QualityReport   *struct {
		CellCount    int64  `json:"cell_count"`
		ViabilityPct string `json:"viability_pct"`
		Sterility    string `json:"sterility"`
		Endotoxin    string `json:"endotoxin"`
		Passed       bool   `json:"passed"`
	} `json:"quality_report"`
	History []struct {
		From  string    `json:"from"`
		To    string    `json:"to"`
		Cause string    `json:"cause"`
		At    time.Time `json:"at"`
	} `json:"history"`
	Deposit *struct {
		PaymentID       string      `json:"payment_id"`
		Amount          money.Money `json:"amount"`
		PaymentIntentID string      `json:"payment_intent_id"`
		ClientSecret    string      `json:"client_secret"`
	} `json:"deposit"`
}

// path is the booking's history as "from>to" steps.
func (b bookingView) path() []string {
	out := make([]string, len(b.History))
	for i, h := range b.History {
		out[i] = h.From + ">" + h.To
	}
	return out
}

type problemView struct {
	Type   string                  `json:"type"`
	Title  string                  `json:"title"`
	Status int                     `json:"status"`
	Detail string                  `json:"detail"`
	Errors []validation.FieldError `json:"errors"`
}

func (p problemView) fields() []string {
	out := make([]string, len(p.Errors))
	for i, e := range p.Errors {
		out[i] = e.Field
	}
	return out
}

func (rep reply) booking(t *testing.T) bookingView {
	t.Helper()
	var b bookingView
	if err := json.Unmarshal(rep.raw, &b); err != nil {
		t.Fatalf("booking %s: %v", rep.raw, err)
	}
	return b
}

// problem decodes a problem+json answer of the given status and slug.
func (rep reply) problem(t *testing.T, status int, slug string) problemView {
	t.Helper()
	var p problemView
	if err := json.Unmarshal(rep.raw, &p); err != nil {
		t.Fatalf("problem %s: %v", rep.raw, err)
	}
	if rep.status != status || p.Status != status || p.Type != httpkit.ProblemBase+slug ||
		rep.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %s %s, want %d problem %s", rep.status, rep.header.Get("Content-Type"), rep.raw, status, slug)
	}
	return p
}

func (r *rig) create(t *testing.T, quoteID, key string) reply {
	t.Helper()
	return r.createAs(t, kim, quoteID, key)
}

// createAs books quoteID as patient p.
func (r *rig) createAs(t *testing.T, p identity.Principal, quoteID, key string) reply {
	t.Helper()
	h := r.as(t, p)
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return r.call(t, "POST", "/v1/bookings", map[string]any{"quote_id": quoteID}, h)
}

func (r *rig) book(t *testing.T, quote quoteJSON) bookingView {
	t.Helper()
	id := r.quoting.offer(quote, nil)
	rep := r.create(t, id, newKey())
	if rep.status != http.StatusCreated {
		t.Fatalf("booking quote %s: %d %s", id, rep.status, rep.raw)
	}
	return rep.booking(t)
}

func newKey() string { return "book-" + uuid.NewString() }

func (r *rig) get(t *testing.T, id string) bookingView {
	t.Helper()
	rep := r.call(t, "GET", "/v1/bookings/"+id, nil, nil)
	if rep.status != http.StatusOK {
		t.Fatalf("GET booking %s: %d %s", id, rep.status, rep.raw)
	}
	return rep.booking(t)
}

func (r *rig) waitForStatus(t *testing.T, id, status string) bookingView {
	t.Helper()
	var b bookingView
	devtest.Eventually(t, "booking "+id+" to be "+status, func() bool {
		b = r.get(t, id)
		return b.Status == status
	})
	return b
}

// report files a clinic report (harvest, cells-ready, administered).
func (r *rig) report(t *testing.T, id, what string, body any) reply {
	t.Helper()
	return r.call(t, "POST", "/v1/clinic/bookings/"+id+"/"+what, body, nil)
}

func (r *rig) mustReport(t *testing.T, id, what string, body any) bookingView {
	t.Helper()
	rep := r.report(t, id, what, body)
	if rep.status != http.StatusOK {
		t.Fatalf("%s of %s: %d %s", what, id, rep.status, rep.raw)
	}
	return rep.booking(t)
}

// certificate is a cells-ready report. viability goes out as given: a
// json.Number is a JSON number literal (70.00 keeps its two decimals), a
// string a JSON string.
func certificate(cells int64, viability any, sterility, endotoxin string) map[string]any {
	return map[string]any{"cell_count": cells, "viability_pct": viability, "sterility": sterility, "endotoxin": endotoxin}
}

type pct = json.Number

func (r *rig) bookingRows(t *testing.T, quoteID string) int {
	t.Helper()
	var n int
	if err := r.db.QueryRow(context.Background(), `SELECT count(*) FROM booking.bookings WHERE quote_id = $1`, quoteID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// events returns every event booking has announced for bookingID: it waits
// until booking's outbox is drained and the stream read to its end, so an
// event that is missing, or one too many, shows.
func (r *rig) events(t *testing.T, bookingID string) []bookingEvent {
	t.Helper()
	ctx := context.Background()
	devtest.OutboxDrained(t, r.db, "booking")
	stream, err := r.js.Stream(ctx, bus.StreamBooking)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the booking stream to be read", func() bool { return r.stream.readUpTo() >= info.State.LastSeq })
	return r.stream.of(bookingID)
}

// ---- payment events, published as payment's outbox relay does ----

func (r *rig) publishEvent(t *testing.T, id, subj string, msg proto.Message) {
	t.Helper()
	devtest.Publish(t, r.js, bus.Event{ID: id, Subject: subj, Message: msg}, time.Now())
}

// redeliver sends an event again under its own event id but a fresh
// Nats-Msg-Id, as bus.Replay does: JetStream's duplicate window would
// otherwise drop it before booking's inbox is ever asked.
func (r *rig) redeliver(t *testing.T, id, subj string, msg proto.Message) {
	t.Helper()
	devtest.Redeliver(t, r.js, bus.Event{ID: id, Subject: subj, Message: msg}, time.Now())
}

// payment is a succeeded payment as payment's contract announces it.
type payment struct {
	id      string
	eventID string
	subject string
	msg     *paymentv1.PaymentSucceeded
}

func succeeded(b bookingView, stage paymentv1.Stage, amount money.Money) payment {
	p := payment{id: uuid.NewString()}
	token := subject.Deposit
	if stage == paymentv1.Stage_STAGE_BALANCE {
		token = subject.Balance
	}
	p.eventID, p.subject = "payment:"+p.id+":succeeded", subject.Payment(b.ClinicID, token, subject.Succeeded)
	p.msg = &paymentv1.PaymentSucceeded{PaymentId: p.id, BookingId: b.ID, ClinicId: b.ClinicID, Stage: stage,
		Amount: wire.Money(amount), PaymentIntentId: "pi_" + randomHex(12), PaymentMethodId: "pm_card_visa",
		SucceededAt: timestamppb.Now()}
	return p
}

func (r *rig) pay(t *testing.T, p payment) {
	t.Helper()
	r.publishEvent(t, p.eventID, p.subject, p.msg)
}

// succeededConsumer is booking's durable consumer of succeeded payments.
const succeededConsumer = "booking-payments-succeeded"

// settled waits until booking's consumer durable holds nothing published
// so far: none waiting, none in hand, none awaiting a retry.
func (r *rig) settled(t *testing.T, durable string) {
	t.Helper()
	ctx := context.Background()
	devtest.Eventually(t, durable+" to settle", func() bool {
		c, err := r.js.Consumer(ctx, bus.StreamPayment, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// deadLetter waits for the dead letter of eventID.
func (r *rig) deadLetter(t *testing.T, eventID string) bus.DeadLetter {
	t.Helper()
	var found bus.DeadLetter
	devtest.Eventually(t, "dead letter "+eventID, func() bool {
		dls, err := bus.DeadLetters(context.Background(), r.js)
		for _, d := range dls {
			if d.EventID == eventID {
				found = d
			}
		}
		return err == nil && found.EventID != ""
	})
	return found
}

func (r *rig) isDeadLettered(t *testing.T, eventID string) bool {
	t.Helper()
	dls, err := bus.DeadLetters(context.Background(), r.js)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(dls, func(d bus.DeadLetter) bool { return d.EventID == eventID })
}

// confirmed books quote and pays its deposit.
func (r *rig) confirmed(t *testing.T, quote quoteJSON) bookingView {
	t.Helper()
	b := r.book(t, quote)
	r.pay(t, succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, b.DepositDue))
	return r.waitForStatus(t, b.ID, "confirmed")
}

// culturing books the standard quote, pays its deposit and harvests.
func (r *rig) culturing(t *testing.T) bookingView {
	t.Helper()
	b := r.confirmed(t, standardQuote())
	return r.mustReport(t, b.ID, "harvest", nil)
}

// ---- the tests ----

func TestTakingAQuoteIsIdempotentAndPassesQuotingsVerdictOn(t *testing.T) {
	r := startBooking(t)

	t.Run("a quote becomes a booking awaiting its deposit, priced as quoted", func(t *testing.T) {
		quote := standardQuote()
		id := r.quoting.offer(quote, nil)
		key := newKey()
		rep := r.create(t, id, key)
		if rep.status != http.StatusCreated || rep.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("create: %d replayed=%q %s", rep.status, rep.header.Get("Idempotent-Replayed"), rep.raw)
		}
		b := rep.booking(t)

		calls := r.quoting.callsFor(id)
		if len(calls) != 1 || calls[0].IdempotencyKey != key || calls[0].BookingID != b.ID {
			t.Fatalf("quoting was asked %+v; want one acceptance under key %s for booking %s", calls, key, b.ID)
		}
		// The booking is the token's patient's, and booking asks as itself.
		if calls[0].PatientSubject != kim.Subject || calls[0].Caller != bookingItself {
			t.Fatalf("quoting was asked for patient %q by %+v; want %q by booking", calls[0].PatientSubject, calls[0].Caller, kim.Subject)
		}
		if b.Status != "awaiting_deposit" || b.QuoteID != id || b.ClinicID != clinicID || b.TreatmentID != quote.TreatmentID ||
			b.TreatmentName != quote.TreatmentName || b.ClinicName != quote.ClinicName || b.DoseCells != 100_000_000 ||
			!b.RequiresHarvest || b.Patient != quote.Patient {
			t.Fatalf("booking does not copy the quote: %s", rep.raw)
		}
		if b.Total != standardTotal || b.DepositDue != standardDeposit || b.BalanceDue != standardBalance {
			t.Fatalf("booking owes total %v, deposit %v, balance %v; quoted %v = %v + %v",
				b.Total, b.DepositDue, b.BalanceDue, standardTotal, standardDeposit, standardBalance)
		}
		if sum, _ := b.DepositDue.Add(b.BalanceDue); sum != b.Total || b.Total.Currency != money.JPY {
			t.Fatalf("deposit + balance = %v, total %v", sum, b.Total)
		}

		deposits := r.payment.callsFor(b.ID)
		if len(deposits) != 1 {
			t.Fatalf("payment was asked %d times for the deposit, want 1", len(deposits))
		}
		if d := deposits[0]; d.ClinicID != clinicID || d.Deposit != standardDeposit || d.Balance != standardBalance || d.Patient != quote.Patient {
			t.Fatalf("deposit request %+v does not carry the quote's amounts and patient", d)
		}
		if c := deposits[0].caller; c != bookingItself {
			t.Fatalf("payment was asked by %+v, not by booking", c)
		}
		intent := r.payment.intent(b.ID)
		if b.Deposit == nil || b.Deposit.PaymentID != intent.PaymentID || b.Deposit.Amount != standardDeposit ||
			b.Deposit.PaymentIntentID != intent.PaymentIntentID || b.Deposit.ClientSecret != intent.ClientSecret {
			t.Fatalf("deposit handed to the patient %+v, payment created %+v", b.Deposit, intent)
		}

		stored := r.get(t, b.ID)
		if stored.Status != "awaiting_deposit" || stored.Total != standardTotal || stored.Deposit != nil ||
			!slices.Equal(stored.path(), []string{">awaiting_deposit"}) || stored.History[0].Cause != "booked" {
			t.Fatalf("stored booking: %+v", stored)
		}
		if n := r.bookingRows(t, id); n != 1 {
			t.Fatalf("%d bookings stored for the quote", n)
		}
		evs := r.events(t, b.ID)
		if len(evs) != 1 || evs[0].Subject != "booking.v1."+clinicID+".created" || evs[0].ID != "booking:"+b.ID+":created" {
			t.Fatalf("events %v", names(evs))
		}
		snap := evs[0].Booking
		if snap.GetStatus() != "awaiting_deposit" || snap.GetQuoteId() != id || snap.GetPatient().GetEmail() != quote.Patient.Email ||
			snap.GetTotal().GetAmount() != 3_300_000 || snap.GetDeposit().GetAmount() != 1_320_000 ||
			snap.GetBalance().GetAmount() != 1_980_000 || snap.GetTotal().GetCurrency() != "JPY" {
			t.Fatalf("created event carries %v", snap)
		}

		t.Run("the same key answers with the same booking and intent", func(t *testing.T) {
			again := r.create(t, id, key)
			if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay: %d replayed=%q %s", again.status, again.header.Get("Idempotent-Replayed"), again.raw)
			}
			if a := again.booking(t); a.ID != b.ID || a.Deposit == nil || *a.Deposit != *b.Deposit || a.Total != b.Total {
				t.Fatalf("replay answered %s, first answer %s", again.raw, rep.raw)
			}
			if n := len(r.quoting.callsFor(id)); n != 1 {
				t.Fatalf("quoting asked %d times, want once: a replay needs no acceptance", n)
			}
			if n := r.bookingRows(t, id); n != 1 {
				t.Fatalf("%d bookings stored for the quote", n)
			}
		})

		t.Run("the same key for another quote is refused", func(t *testing.T) {
			other := r.quoting.offer(standardQuote(), nil)
			p := r.create(t, other, key).problem(t, 422, "idempotency-key-reused")
			if !strings.Contains(p.Detail, id) {
				t.Fatalf("detail %q does not name the quote the key booked", p.Detail)
			}
			if n := len(r.quoting.callsFor(other)); n != 0 || r.bookingRows(t, other) != 0 {
				t.Fatalf("the other quote was accepted (%d calls) or booked", n)
			}
		})

		t.Run("another key for the booked quote gets quoting's refusal", func(t *testing.T) {
			p := r.create(t, id, newKey()).problem(t, 409, "quote-already-booked")
			if !strings.Contains(p.Detail, b.ID) {
				t.Fatalf("detail %q does not name the booking", p.Detail)
			}
			if n := r.bookingRows(t, id); n != 1 {
				t.Fatalf("%d bookings stored for the quote", n)
			}
		})
	})

	t.Run("a missing or overlong Idempotency-Key is refused before quoting is asked", func(t *testing.T) {
		id := r.quoting.offer(standardQuote(), nil)
		before := r.quoting.callCount()
		p := r.create(t, id, "").problem(t, 400, "idempotency-key-required")
		if !slices.Equal(p.fields(), []string{"Idempotency-Key"}) {
			t.Fatalf("missing key names %v", p.fields())
		}
		p = r.create(t, id, strings.Repeat("k", 256)).problem(t, 422, "validation")
		if !slices.Equal(p.fields(), []string{"Idempotency-Key"}) {
			t.Fatalf("overlong key names %v", p.fields())
		}
		if r.quoting.callCount() != before || r.bookingRows(t, id) != 0 {
			t.Fatal("quoting was asked, or a booking stored, without a usable key")
		}
		// 255 characters is the longest key accepted.
		if rep := r.create(t, id, strings.Repeat("k", 255)); rep.status != http.StatusCreated {
			t.Fatalf("255-character key: %d %s", rep.status, rep.raw)
		}
	})

	t.Run("a quote_id that names no quote is a 422 on quote_id", func(t *testing.T) {
		before := r.quoting.callCount()
		for _, quoteID := range []string{"", "Q-123"} {
			p := r.create(t, quoteID, newKey()).problem(t, 422, "validation")
			if !slices.Equal(p.fields(), []string{"quote_id"}) {
				t.Fatalf("quote_id %q: fields %v", quoteID, p.fields())
			}
		}
		if r.quoting.callCount() != before {
			t.Fatal("quoting was asked about a malformed quote id")
		}
		unknown := uuid.NewString()
		p := r.create(t, unknown, newKey()).problem(t, 422, "validation")
		if !slices.Equal(p.fields(), []string{"quote_id"}) || !strings.Contains(p.Errors[0].Message, unknown) {
			t.Fatalf("unknown quote: %+v", p)
		}
		if len(r.quoting.callsFor(unknown)) != 1 || r.bookingRows(t, unknown) != 0 {
			t.Fatal("the unknown quote was not asked about once, or was booked")
		}
	})

	t.Run("quoting's refusal is passed on unchanged", func(t *testing.T) {
		ineligible := problem(422, "quote-ineligible", "Patient is not eligible for this treatment", "eligibility: age 17 is below 18")
		ineligible.Errors = []validation.FieldError{{Field: "screening.age", Message: "must be at least 18"}}
		for _, refusal := range []*httpkit.Problem{
			problem(409, "quote-expired", "Quote has expired", "quote expired at 2026-11-20T03:00:00Z"),
			problem(409, "quote-superseded", "Quote was superseded by a revision", "superseded by version 2"),
			problem(409, "quote-needs-review", "Quote awaits a clinician's review", "a clinician reviews the screening"),
			problem(409, "treatment-not-bookable", "Treatment is not bookable", "plan PB3240117 is suspended"),
			ineligible,
		} {
			t.Run(refusal.Slug(), func(t *testing.T) {
				id := r.quoting.offer(standardQuote(), refusal)
				rep := r.create(t, id, newKey())
				p := rep.problem(t, refusal.Status, refusal.Slug())
				if p.Title != refusal.Title || p.Detail != refusal.Detail || !slices.Equal(p.Errors, refusal.Errors) {
					t.Fatalf("booking answered %s, quoting said %+v", rep.raw, refusal)
				}
				if n := r.bookingRows(t, id); n != 0 {
					t.Fatalf("%d bookings stored for a refused quote", n)
				}
				if calls := r.quoting.callsFor(id); len(calls) != 1 || len(r.payment.callsFor(calls[0].BookingID)) != 0 {
					t.Fatal("payment was asked for the deposit of a refused quote")
				}
			})
		}
	})

	t.Run("quoting unavailable is a 503 and stores nothing; the retry books", func(t *testing.T) {
		id, key := r.quoting.offer(standardQuote(), nil), newKey()
		r.quoting.set(func(q *fakeQuoting) { q.unavailable = true })
		r.create(t, id, key).problem(t, 503, "dependency-unavailable")
		r.quoting.set(func(q *fakeQuoting) { q.unavailable = false })
		if n := r.bookingRows(t, id); n != 0 {
			t.Fatalf("%d bookings stored while quoting was down", n)
		}
		rep := r.create(t, id, key)
		if rep.status != http.StatusCreated || rep.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry: %d replayed=%q %s", rep.status, rep.header.Get("Idempotent-Replayed"), rep.raw)
		}
		calls := r.quoting.callsFor(id)
		if len(calls) != 2 || calls[1].IdempotencyKey != key || rep.booking(t).ID != calls[1].BookingID || r.bookingRows(t, id) != 1 {
			t.Fatalf("acceptances %+v for booking %s", calls, rep.raw)
		}
	})

	t.Run("an acceptance whose answer was lost is finished by the retry, under the booking id quoting recorded", func(t *testing.T) {
		id, key := r.quoting.offer(standardQuote(), nil), newKey()
		r.quoting.set(func(q *fakeQuoting) { q.loseNext = true })
		r.create(t, id, key).problem(t, 503, "dependency-unavailable")
		b := r.create(t, id, key)
		if b.status != http.StatusCreated {
			t.Fatalf("retry: %d %s", b.status, b.raw)
		}
		calls := r.quoting.callsFor(id)
		if len(calls) != 2 || calls[0].IdempotencyKey != key || calls[1].IdempotencyKey != key || calls[0].BookingID == calls[1].BookingID {
			t.Fatalf("acceptances %+v; want two under key %s offering different booking ids", calls, key)
		}
		if got := b.booking(t).ID; got != calls[0].BookingID {
			t.Fatalf("booking stored as %s; quoting recorded the quote for %s", got, calls[0].BookingID)
		}
	})

	t.Run("payment unavailable is a 503 naming the stored booking; the retry completes it", func(t *testing.T) {
		id, key := r.quoting.offer(standardQuote(), nil), newKey()
		r.payment.setDown(true)
		p := r.create(t, id, key).problem(t, 503, "dependency-unavailable")
		r.payment.setDown(false)
		calls := r.quoting.callsFor(id)
		if len(calls) != 1 {
			t.Fatalf("%d acceptances", len(calls))
		}
		bookingID := calls[0].BookingID
		if !strings.Contains(p.Detail, bookingID) {
			t.Fatalf("detail %q does not name booking %s", p.Detail, bookingID)
		}
		if stored := r.get(t, bookingID); stored.Status != "awaiting_deposit" || stored.QuoteID != id {
			t.Fatalf("stored booking: %+v", stored)
		}

		rep := r.create(t, id, key)
		if rep.status != http.StatusCreated {
			t.Fatalf("retry: %d %s", rep.status, rep.raw)
		}
		b := rep.booking(t)
		if b.ID != bookingID || b.Deposit == nil || b.Deposit.PaymentID != r.payment.intent(bookingID).PaymentID || b.Deposit.Amount != standardDeposit {
			t.Fatalf("retry answered %s for booking %s", rep.raw, bookingID)
		}
		if n := len(r.quoting.callsFor(id)); n != 1 {
			t.Fatalf("quoting asked %d times; the stored booking needs no second acceptance", n)
		}
		deposits := r.payment.callsFor(bookingID)
		if len(deposits) != 2 || deposits[0] != deposits[1] {
			t.Fatalf("deposit requests %+v; want the same request twice", deposits)
		}
		if n := r.bookingRows(t, id); n != 1 {
			t.Fatalf("%d bookings stored for the quote", n)
		}
		if evs := r.events(t, bookingID); !slices.Equal(names(evs), []string{"created"}) {
			t.Fatalf("events %v, want one created", names(evs))
		}
	})

	t.Run("a double-clicked Book answers both requests with one booking", func(t *testing.T) {
		id, key := r.quoting.offer(standardQuote(), nil), newKey()
		var together sync.WaitGroup
		together.Add(2)
		r.quoting.set(func(q *fakeQuoting) { q.together = &together })
		defer r.quoting.set(func(q *fakeQuoting) { q.together = nil })
		replies := make([]reply, 2)
		var wg sync.WaitGroup
		for i := range replies {
			wg.Go(func() { replies[i] = r.create(t, id, key) })
		}
		wg.Wait()
		for _, rep := range replies {
			if rep.status != http.StatusCreated {
				t.Fatalf("concurrent request: %d %s", rep.status, rep.raw)
			}
		}
		if a, b := replies[0].booking(t), replies[1].booking(t); a.ID != b.ID || *a.Deposit != *b.Deposit {
			t.Fatalf("two answers name bookings %s and %s", a.ID, b.ID)
		}
		if n := r.bookingRows(t, id); n != 1 {
			t.Fatalf("%d bookings stored for the quote", n)
		}
	})

	t.Run("an Idempotency-Key is the patient's own: another patient's same key finds nothing of theirs", func(t *testing.T) {
		kimsQuote, key := r.quoting.offer(standardQuote(), nil), newKey()
		first := r.create(t, kimsQuote, key)
		if first.status != http.StatusCreated {
			t.Fatalf("Kim books: %d %s", first.status, first.raw)
		}
		kims := first.booking(t)

		// Lee sending Kim's key for Kim's quote is a request of Lee's own,
		// and quoting knows no such quote of Lee's.
		rep := r.createAs(t, lee, kimsQuote, key)
		p := rep.problem(t, 422, "validation")
		if !slices.Equal(p.fields(), []string{"quote_id"}) || rep.header.Get("Idempotent-Replayed") != "" || strings.Contains(string(rep.raw), kims.ID) {
			t.Fatalf("Lee reusing Kim's key: replayed=%q %s; want a 422 on quote_id naming nothing of Kim's booking %s",
				rep.header.Get("Idempotent-Replayed"), rep.raw, kims.ID)
		}
		calls := r.quoting.callsFor(kimsQuote)
		if len(calls) != 2 || calls[1].PatientSubject != lee.Subject || calls[1].IdempotencyKey != key || calls[1].BookingID == kims.ID {
			t.Fatalf("acceptances %+v; want Lee's own second acceptance, under a new booking id", calls)
		}
		if n := r.bookingRows(t, kimsQuote); n != 1 {
			t.Fatalf("%d bookings stored for Kim's quote", n)
		}

		// The same key books Lee's own quote: the key was never Lee's before.
		leesQuote := r.quoting.offerTo(lee.Subject, standardQuote(), nil)
		rep = r.createAs(t, lee, leesQuote, key)
		if rep.status != http.StatusCreated || rep.header.Get("Idempotent-Replayed") != "" ||
			strings.Contains(string(rep.raw), kims.ID) || strings.Contains(string(rep.raw), kimsQuote) {
			t.Fatalf("Lee books their own quote under Kim's key: %d replayed=%q %s", rep.status, rep.header.Get("Idempotent-Replayed"), rep.raw)
		}
		lees := rep.booking(t)
		if lees.ID == kims.ID || lees.QuoteID != leesQuote {
			t.Fatalf("Lee's booking %s of quote %s; Kim's is %s", lees.ID, lees.QuoteID, kims.ID)
		}

		// Each patient's retry replays their own booking, and only theirs.
		for _, c := range []struct {
			who   identity.Principal
			quote string
			want  bookingView
		}{{kim, kimsQuote, kims}, {lee, leesQuote, lees}} {
			again := r.createAs(t, c.who, c.quote, key)
			if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("%s's retry: %d replayed=%q %s", c.who.Subject, again.status, again.header.Get("Idempotent-Replayed"), again.raw)
			}
			if got := again.booking(t); got.ID != c.want.ID || got.Deposit == nil || *got.Deposit != *c.want.Deposit {
				t.Fatalf("%s's retry answered %s; first answer %+v", c.who.Subject, again.raw, c.want)
			}
		}
		r.call(t, "GET", "/v1/bookings/"+lees.ID, nil, r.as(t, kim)).problem(t, 404, "not-found")
		r.call(t, "GET", "/v1/bookings/"+kims.ID, nil, r.as(t, lee)).problem(t, 404, "not-found")
	})

	t.Run("an unknown booking is a 404", func(t *testing.T) {
		for _, id := range []string{uuid.NewString(), "not-a-booking"} {
			r.call(t, "GET", "/v1/bookings/"+id, nil, nil).problem(t, 404, "not-found")
			r.report(t, id, "harvest", nil).problem(t, 404, "not-found")
		}
	})
}

func TestEachCallerReachesOnlyWhatItsRoleAndTenancyAllow(t *testing.T) {
	r := startBooking(t)
	forged := map[string]string{"Authorization": "Bearer " + devtest.NewIssuer(t).Token(t, kim)}
	asKim, asLee, asGinza := r.as(t, kim), r.as(t, lee), r.as(t, ginzaStaff)
	asOsaka := r.as(t, identity.Principal{Subject: "staff-osaka-1", Role: identity.Clinic, ClinicID: "osaka-umeda-clinic"})
	asFinance := r.as(t, identity.Principal{Subject: "finance-1", Role: identity.Finance})
	asAdmin := r.as(t, identity.Principal{Subject: "operator-1", Role: identity.Admin})
	asService := r.as(t, identity.Principal{Subject: "payment", Role: identity.Service})

	// Kim's quote and bookings, each where its route succeeds for the right
	// caller: a refusal then shows as a refusal, not as a state conflict.
	open := r.quoting.offer(standardQuote(), nil)
	confirmed := r.confirmed(t, standardQuote())
	culturing := r.culturing(t)
	ready := r.culturing(t)
	r.mustReport(t, ready.ID, "cells-ready", certificate(100_000_000, pct("90"), "pass", "pass"))
	r.pay(t, succeeded(ready, paymentv1.Stage_STAGE_BALANCE, standardBalance))
	r.waitForStatus(t, ready.ID, "ready_for_administration")

	type route struct {
		method string
		// at is the request about target (a quote or booking id).
		at     func(target string) (path string, body any)
		target string
		header map[string]string // beside the caller's token
		// after is the booking's status once the right caller succeeded.
		after string
	}
	bookingAt := func(target string) (string, any) { return "/v1/bookings/" + target, nil }
	reportAt := func(what string, body any) func(string) (string, any) {
		return func(target string) (string, any) { return "/v1/clinic/bookings/" + target + "/" + what, body }
	}
	type caller struct {
		name   string
		header map[string]string
		want   int
	}
	for _, c := range []struct {
		name    string
		route   route
		callers []caller
	}{
		{"POST /v1/bookings", route{method: "POST", target: open, after: "awaiting_deposit",
			at:     func(target string) (string, any) { return "/v1/bookings", map[string]any{"quote_id": target} },
			header: map[string]string{"Idempotency-Key": newKey()}}, []caller{
			{"no token", nobody, 401}, {"a forged token", forged, 401},
			{"a clinic", asGinza, 403}, {"finance", asFinance, 403}, {"an admin", asAdmin, 403}, {"a service", asService, 403},
			{"another patient, with their own key", with(asLee, "Idempotency-Key", newKey()), 422},
			{"the quote's patient", asKim, 201},
		}},
		{"GET /v1/bookings/{id}", route{method: "GET", at: bookingAt, target: confirmed.ID, after: "confirmed"}, []caller{
			{"no token", nobody, 401}, {"a forged token", forged, 401},
			{"finance", asFinance, 403}, {"an admin", asAdmin, 403}, {"a service", asService, 403},
			{"another patient", asLee, 404}, {"another clinic", asOsaka, 404},
			{"its patient", asKim, 200}, {"its clinic", asGinza, 200},
		}},
		{"harvest", route{method: "POST", at: reportAt("harvest", nil), target: confirmed.ID, after: "culturing"}, []caller{
			{"no token", nobody, 401}, {"a forged token", forged, 401},
			{"its patient", asKim, 403}, {"finance", asFinance, 403}, {"a service", asService, 403},
			{"another clinic", asOsaka, 404}, {"its clinic", asGinza, 200},
		}},
		{"cells-ready", route{method: "POST", at: reportAt("cells-ready", certificate(100_000_000, pct("90"), "pass", "pass")),
			target: culturing.ID, after: "awaiting_balance"}, []caller{
			{"no token", nobody, 401}, {"its patient", asKim, 403}, {"an admin", asAdmin, 403},
			{"another clinic", asOsaka, 404}, {"its clinic", asGinza, 200},
		}},
		{"administered", route{method: "POST", at: reportAt("administered", nil), target: ready.ID, after: "administered"}, []caller{
			{"no token", nobody, 401}, {"its patient", asKim, 403}, {"finance", asFinance, 403},
			{"another clinic", asOsaka, 404}, {"its clinic", asGinza, 200},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := c.route
			isBooking := rt.target != open
			for _, who := range c.callers {
				t.Run(who.name, func(t *testing.T) {
					header := map[string]string{}
					maps.Copy(header, rt.header)
					maps.Copy(header, who.header)
					var before bookingView
					var announced []string
					if isBooking {
						before, announced = r.get(t, rt.target), names(r.events(t, rt.target))
					}
					asked := len(r.quoting.callsFor(open))
					path, body := rt.at(rt.target)
					rep := r.call(t, rt.method, path, body, header)

					switch who.want {
					case 401:
						rep.problem(t, 401, "unauthorized")
						if h := rep.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer ") {
							t.Fatalf("WWW-Authenticate %q", h)
						}
					case 403:
						rep.problem(t, 403, "forbidden")
					case 404, 422:
						slug := "not-found"
						if who.want == 422 {
							slug = "validation"
						}
						p := rep.problem(t, who.want, slug)
						if who.want == 422 && !slices.Equal(p.fields(), []string{"quote_id"}) {
							t.Fatalf("fields %v, want quote_id", p.fields())
						}
						// Another tenant's record is answered exactly as one
						// that does not exist.
						missing := uuid.NewString()
						path, body := rt.at(missing)
						none := r.call(t, rt.method, path, body, header)
						none.problem(t, who.want, slug)
						if strings.ReplaceAll(string(rep.raw), rt.target, "ID") != strings.ReplaceAll(string(none.raw), missing, "ID") {
							t.Fatalf("answered %s; for a record that does not exist %s", rep.raw, none.raw)
						}
					default:
						if rep.status != who.want {
							t.Fatalf("%d %s, want %d", rep.status, rep.raw, who.want)
						}
						got := rep.booking(t)
						if got.Status != rt.after || (isBooking && got.ID != rt.target) || (!isBooking && got.QuoteID != open) {
							t.Fatalf("answered %s; want booking of %s in state %s", rep.raw, rt.target, rt.after)
						}
					}

					switch {
					case who.want < 400:
					case isBooking:
						was, _ := json.Marshal(before)
						now, _ := json.Marshal(r.get(t, rt.target))
						if !bytes.Equal(now, was) {
							t.Fatalf("a refused request changed the booking: %s, was %s", now, was)
						}
						if evs := names(r.events(t, rt.target)); !slices.Equal(evs, announced) {
							t.Fatalf("a refused request announced %v, before %v", evs, announced)
						}
					default:
						if n := r.bookingRows(t, open); n != 0 {
							t.Fatalf("%d bookings stored for a refused caller", n)
						}
						calls := r.quoting.callsFor(open)
						if who.want != 422 && len(calls) != asked {
							t.Fatal("quoting was asked on behalf of a refused caller")
						}
						// Quoting was asked for the caller, and refused them.
						if who.want == 422 && (len(calls) != asked+1 || calls[asked].PatientSubject != lee.Subject) {
							t.Fatalf("acceptances %+v; want one for %s", calls, lee.Subject)
						}
					}
				})
			}
		})
	}
}

func TestABookingFollowsPaymentsAndClinicReports(t *testing.T) {
	r := startBooking(t)

	t.Run("through every state once, amounts intact, one event per state", func(t *testing.T) {
		quote := standardQuote()
		b := r.book(t, quote)
		deposit := succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, standardDeposit)
		r.pay(t, deposit)
		r.waitForStatus(t, b.ID, "confirmed")

		harvestedAt := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
		if h := r.mustReport(t, b.ID, "harvest", map[string]any{"harvested_at": harvestedAt}); h.Status != "culturing" ||
			h.HarvestedAt == nil || !h.HarvestedAt.Equal(harvestedAt) {
			t.Fatalf("harvest: %+v", h)
		}
		ready := r.mustReport(t, b.ID, "cells-ready", certificate(120_000_000, pct("92.5"), "pass", "pass"))
		if q := ready.QualityReport; ready.Status != "awaiting_balance" || q == nil || !q.Passed || q.CellCount != 120_000_000 ||
			q.ViabilityPct != "92.5" || q.Sterility != "pass" || q.Endotoxin != "pass" {
			t.Fatalf("cells ready: %+v", ready)
		}
		balance := succeeded(b, paymentv1.Stage_STAGE_BALANCE, standardBalance)
		r.pay(t, balance)
		r.waitForStatus(t, b.ID, "ready_for_administration")
		if done := r.mustReport(t, b.ID, "administered", nil); done.Status != "administered" || done.AdministeredAt == nil {
			t.Fatalf("administered: %+v", done)
		}

		final := r.get(t, b.ID)
		want := []string{">awaiting_deposit", "awaiting_deposit>confirmed", "confirmed>culturing", "culturing>awaiting_balance",
			"awaiting_balance>ready_for_administration", "ready_for_administration>administered"}
		if !slices.Equal(final.path(), want) {
			t.Fatalf("history %v, want %v", final.path(), want)
		}
		if final.Total != standardTotal || final.DepositDue != standardDeposit || final.BalanceDue != standardBalance {
			t.Fatalf("amounts changed along the way: %+v", final)
		}

		evs := r.events(t, b.ID)
		states := map[subject.BookingEvent]string{subject.Created: "awaiting_deposit", subject.Confirmed: "confirmed",
			subject.Harvested: "culturing", subject.CellsReady: "awaiting_balance",
			subject.ReadyForAdministration: "ready_for_administration", subject.Administered: "administered"}
		order := []subject.BookingEvent{subject.Created, subject.Confirmed, subject.Harvested, subject.CellsReady,
			subject.ReadyForAdministration, subject.Administered}
		if len(evs) != len(order) {
			t.Fatalf("events %v, want exactly %v", names(evs), order)
		}
		for i, e := range evs {
			name := order[i]
			s := e.Booking
			if e.Subject != subject.Booking(clinicID, name) || e.ID != "booking:"+b.ID+":"+string(name) || s.GetStatus() != states[name] ||
				s.GetTotal().GetAmount() != 3_300_000 || s.GetDeposit().GetAmount() != 1_320_000 || s.GetBalance().GetAmount() != 1_980_000 ||
				s.GetBalance().GetCurrency() != "JPY" || s.GetClinicId() != clinicID || s.GetPatient().GetName() != quote.Patient.Name {
				t.Fatalf("event %d is %s %s carrying %v; want %s in state %s", i, e.Subject, e.ID, s, name, states[name])
			}
		}
		if c, _ := evs[1].Message.(*bookingv1.BookingConfirmed); c.GetDepositPaymentId() != deposit.id {
			t.Fatalf("confirmed names deposit %q, paid %q", c.GetDepositPaymentId(), deposit.id)
		}
		if h, _ := evs[2].Message.(*bookingv1.HarvestRecorded); !h.GetHarvestedAt().AsTime().Equal(harvestedAt) {
			t.Fatalf("harvested at %v, reported %v", h.GetHarvestedAt().AsTime(), harvestedAt)
		}
		cells, _ := evs[3].Message.(*bookingv1.CellsReady)
		if c := cells.GetReport(); c.GetViabilityBp() != 9250 || c.GetCellCount() != 120_000_000 || !c.GetSterilityPassed() || !c.GetEndotoxinPassed() {
			t.Fatalf("cells_ready report %v", c)
		}
		if rd, _ := evs[4].Message.(*bookingv1.BookingReadyForAdministration); rd.GetBalancePaymentId() != balance.id {
			t.Fatalf("ready names balance %q, paid %q", rd.GetBalancePaymentId(), balance.id)
		}
	})

	t.Run("release criteria hold at their exact boundaries", func(t *testing.T) {
		for _, c := range []struct {
			name      string
			report    map[string]any
			status    string
			causeHint string
		}{
			{"viability 70.00 passes", certificate(100_000_000, pct("70.00"), "pass", "pass"), "awaiting_balance", "quality control passed"},
			{"viability 69.99 fails", certificate(100_000_000, pct("69.99"), "pass", "pass"), "qc_failed", "viability 69.99% is below 70%"},
			{"exactly the dose passes", certificate(100_000_000, pct("85"), "pass", "pass"), "awaiting_balance", "quality control passed"},
			{"one cell short of the dose fails", certificate(99_999_999, pct("85"), "pass", "pass"), "qc_failed", "99999999 cells cultured, 100000000 ordered"},
			{"failed sterility fails", certificate(150_000_000, pct("95"), "fail", "pass"), "qc_failed", "sterility test failed"},
			{"failed endotoxin fails", certificate(150_000_000, pct("95"), "pass", "fail"), "qc_failed", "endotoxin test failed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				b := r.culturing(t)
				got := r.mustReport(t, b.ID, "cells-ready", c.report)
				final := r.get(t, b.ID)
				last := final.History[len(final.History)-1]
				if got.Status != c.status || final.Status != c.status || last.To != c.status || !strings.Contains(last.Cause, c.causeHint) ||
					final.QualityReport == nil || final.QualityReport.Passed != (c.status == "awaiting_balance") {
					t.Fatalf("got %s; stored %+v; want %s because %q", got.Status, final, c.status, c.causeHint)
				}
				want := subject.CellsReady
				if c.status == "qc_failed" {
					want = subject.QCFailed
				}
				evs := r.events(t, b.ID)
				if !slices.Equal(names(evs), []string{"created", "confirmed", "harvested", string(want)}) {
					t.Fatalf("events %v", names(evs))
				}
			})
		}

		t.Run("a balance paid after failed cells is not applied", func(t *testing.T) {
			b := r.culturing(t)
			r.mustReport(t, b.ID, "cells-ready", certificate(100_000_000, pct("60"), "pass", "pass"))
			balance := succeeded(b, paymentv1.Stage_STAGE_BALANCE, standardBalance)
			r.pay(t, balance)
			if dl := r.deadLetter(t, balance.eventID); dl.Consumer != succeededConsumer || dl.Reason != "terminated" {
				t.Fatalf("dead letter %+v", dl)
			}
			if got := r.get(t, b.ID); got.Status != "qc_failed" || len(got.History) != 4 {
				t.Fatalf("after a stray balance: %+v", got)
			}
		})
	})

	t.Run("a cells-ready report with bad fields is refused, naming each", func(t *testing.T) {
		b := r.culturing(t)
		for _, c := range []struct {
			name   string
			body   map[string]any
			fields []string
		}{
			{"three decimals", certificate(100_000_000, pct("94.555"), "pass", "pass"), []string{"viability_pct"}},
			{"three decimals, quoted", certificate(100_000_000, "94.555", "pass", "pass"), []string{"viability_pct"}},
			{"above 100", certificate(100_000_000, pct("101"), "pass", "pass"), []string{"viability_pct"}},
			{"negative", certificate(100_000_000, pct("-1"), "pass", "pass"), []string{"viability_pct"}},
			{"exponent", certificate(100_000_000, pct("7e1"), "pass", "pass"), []string{"viability_pct"}},
			{"not a number", certificate(100_000_000, "abc", "pass", "pass"), []string{"viability_pct"}},
			{"not a percentage at all", certificate(100_000_000, true, "pass", "pass"), []string{"viability_pct"}},
			{"an impossible cell count", certificate(100_000_000_001, pct("94.5"), "pass", "pass"), []string{"cell_count"}},
			{"everything", certificate(0, pct("101"), "passed", ""), []string{"cell_count", "viability_pct", "sterility", "endotoxin"}},
			{"nothing", map[string]any{}, []string{"cell_count", "viability_pct", "sterility", "endotoxin"}},
		} {
			p := r.report(t, b.ID, "cells-ready", c.body).problem(t, 422, "validation")
			if !slices.Equal(p.fields(), c.fields) {
				t.Errorf("%s: fields %v, want %v", c.name, p.fields(), c.fields)
			}
		}
		if got := r.get(t, b.ID); got.Status != "culturing" || got.QualityReport != nil {
			t.Fatalf("a refused report changed the booking: %+v", got)
		}
	})

	t.Run("reports that do not fit the booking's state are refused", func(t *testing.T) {
		b := r.book(t, standardQuote())
		for _, what := range []string{"harvest", "administered"} {
			r.report(t, b.ID, what, nil).problem(t, 409, "invalid-transition")
		}
		r.report(t, b.ID, "cells-ready", certificate(100_000_000, pct("90"), "pass", "pass")).problem(t, 409, "invalid-transition")

		r.pay(t, succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, standardDeposit))
		r.waitForStatus(t, b.ID, "confirmed")
		// The protocol harvests: cells cannot be ready before the harvest.
		r.report(t, b.ID, "cells-ready", certificate(100_000_000, pct("90"), "pass", "pass")).problem(t, 409, "invalid-transition")
		p := r.report(t, b.ID, "harvest", map[string]any{"harvested_at": time.Now().Add(time.Hour)}).problem(t, 422, "validation")
		if !slices.Equal(p.fields(), []string{"harvested_at"}) {
			t.Fatalf("future harvest names %v", p.fields())
		}
		r.mustReport(t, b.ID, "harvest", nil)
		r.report(t, b.ID, "harvest", nil).problem(t, 409, "invalid-transition")
		r.mustReport(t, b.ID, "cells-ready", certificate(100_000_000, pct("90"), "pass", "pass"))
		// The balance is unpaid.
		r.report(t, b.ID, "administered", nil).problem(t, 409, "invalid-transition")
		if got := r.get(t, b.ID); got.Status != "awaiting_balance" || len(got.History) != 4 {
			t.Fatalf("refused reports changed the booking: %v", got.path())
		}
	})

	t.Run("a payment delivered twice is applied once", func(t *testing.T) {
		b := r.book(t, standardQuote())
		deposit := succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, standardDeposit)
		r.pay(t, deposit)
		first := r.waitForStatus(t, b.ID, "confirmed")
		r.redeliver(t, deposit.eventID, deposit.subject, deposit.msg)
		// Payment announcing the same payment again under a new event id.
		r.publishEvent(t, deposit.eventID+":again", deposit.subject, deposit.msg)
		r.settled(t, succeededConsumer)

		got := r.get(t, b.ID)
		if !slices.Equal(got.path(), []string{">awaiting_deposit", "awaiting_deposit>confirmed"}) || !got.History[1].At.Equal(first.History[1].At) {
			t.Fatalf("history after the repeats: %v", got.path())
		}
		if r.isDeadLettered(t, deposit.eventID) || r.isDeadLettered(t, deposit.eventID+":again") {
			t.Fatal("a repeat of an applied payment was dead-lettered")
		}
		if evs := r.events(t, b.ID); !slices.Equal(names(evs), []string{"created", "confirmed"}) {
			t.Fatalf("events %v", names(evs))
		}
	})

	t.Run("a payment of the wrong amount is dead-lettered, not applied", func(t *testing.T) {
		b := r.book(t, standardQuote())
		short := succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, money.Yen(standardDeposit.Amount-1))
		r.pay(t, short)
		if dl := r.deadLetter(t, short.eventID); dl.Consumer != succeededConsumer || dl.Reason != "terminated" || dl.Subject != short.subject {
			t.Fatalf("dead letter %+v", dl)
		}
		if got := r.get(t, b.ID); got.Status != "awaiting_deposit" || len(got.History) != 1 {
			t.Fatalf("a short deposit moved the booking: %v", got.path())
		}
		// The right amount still confirms it.
		r.pay(t, succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, standardDeposit))
		r.waitForStatus(t, b.ID, "confirmed")
	})

	t.Run("a failed balance charge waits for the patient until the balance is paid", func(t *testing.T) {
		b := r.culturing(t)
		// Viability may come as a string holding the number.
		r.mustReport(t, b.ID, "cells-ready", certificate(100_000_000, "88.25", "pass", "pass"))
		paymentID := uuid.NewString()
		failed := &paymentv1.PaymentFailed{PaymentId: paymentID, BookingId: b.ID, ClinicId: clinicID, Stage: paymentv1.Stage_STAGE_BALANCE,
			Amount: wire.Money(standardBalance), PaymentIntentId: "pi_" + randomHex(12), FailureCode: "card_declined",
			FailureMessage: "Your card was declined.", FailedAt: timestamppb.Now()}
		r.publishEvent(t, "payment:"+paymentID+":failed:1", subject.Payment(clinicID, subject.Balance, subject.Failed), failed)
		devtest.Eventually(t, "the balance failure", func() bool { return r.get(t, b.ID).BalanceFailure != "" })
		got := r.get(t, b.ID)
		if got.Status != "balance_action_required" || got.BalanceFailure != "card_declined: Your card was declined." || len(got.History) != 5 ||
			got.History[4].From != "awaiting_balance" || got.History[4].To != "balance_action_required" {
			t.Fatalf("after a declined balance: %+v", got)
		}
		// The same failure delivered again is the same cause: one event.
		r.redeliver(t, "payment:"+paymentID+":failed:1", subject.Payment(clinicID, subject.Balance, subject.Failed), failed)
		// Not a state change, but the patient must hear of it: one
		// balance_failed per failed charge, with the booking and the cause.
		evs := r.events(t, b.ID)
		if !slices.Equal(names(evs), []string{"created", "confirmed", "harvested", "cells_ready", "balance_failed"}) {
			t.Fatalf("events after a failed charge: %v", names(evs))
		}
		bf, ok := evs[4].Message.(*bookingv1.BalanceChargeFailed)
		if !ok || bf.GetPaymentId() != paymentID || bf.GetFailureCode() != "card_declined" || bf.GetRequiresAction() ||
			bf.GetBooking().GetStatus() != "balance_action_required" || bf.GetBooking().GetPatient().GetSubject() == "" ||
			bf.GetPayBy().AsTime().Sub(bf.GetFailedAt().AsTime()) != 72*time.Hour ||
			evs[4].ID != "booking:"+b.ID+":balance_failed:payment:"+paymentID+":failed:1" {
			t.Fatalf("balance_failed %s: %v", evs[4].ID, evs[4].Message)
		}

		r.pay(t, succeeded(b, paymentv1.Stage_STAGE_BALANCE, standardBalance))
		if paid := r.waitForStatus(t, b.ID, "ready_for_administration"); paid.BalanceFailure != "" {
			t.Fatalf("the failure outlived the payment: %q", paid.BalanceFailure)
		}
		// A decline of an earlier attempt reported after the payment is
		// stale: recorded nowhere, announced to no one.
		r.publishEvent(t, "payment:"+paymentID+":failed:2", subject.Payment(clinicID, subject.Balance, subject.Failed), failed)
		devtest.Eventually(t, "the stale decline to be handled", func() bool {
			var seen bool
			_ = r.db.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM booking.inbox WHERE consumer = 'booking-payments-failed'
				AND event_id = $1)`, "payment:"+paymentID+":failed:2").Scan(&seen)
			return seen
		})
		if evs := r.events(t, b.ID); len(evs) != 6 || evs[5].name() != "ready_for_administration" {
			t.Fatalf("events after a stale decline: %v", names(evs))
		}
	})

	t.Run("paid in full with the deposit, passing cells are ready for administration", func(t *testing.T) {
		quote := standardQuote()
		full, none := money.Yen(1_650_000), money.Yen(0)
		quote.TreatmentID, quote.TreatmentName = "ginza-exosome-parkinsons", "Exosome therapy for Parkinson's disease (IV and intranasal)"
		quote.DoseCells, quote.RequiresHarvest = 30_000_000_000, false
		quote.Total, quote.Deposit, quote.Balance = full, &full, &none
		b := r.book(t, quote)
		if b.DepositDue != full || b.BalanceDue != none {
			t.Fatalf("owes deposit %v and balance %v", b.DepositDue, b.BalanceDue)
		}
		if d := r.payment.callsFor(b.ID); len(d) != 1 || d[0].Deposit != full || d[0].Balance != none {
			t.Fatalf("deposit requests %+v", d)
		}
		r.pay(t, succeeded(b, paymentv1.Stage_STAGE_DEPOSIT, full))
		r.waitForStatus(t, b.ID, "confirmed")
		// Nothing to harvest: exosomes are ready after the deposit.
		r.report(t, b.ID, "harvest", nil).problem(t, 409, "invalid-transition")
		if got := r.mustReport(t, b.ID, "cells-ready", certificate(30_000_000_000, pct("100"), "pass", "pass")); got.Status != "ready_for_administration" {
			t.Fatalf("passing cells, paid in full: %s", got.Status)
		}
		r.mustReport(t, b.ID, "administered", nil)
		evs := r.events(t, b.ID)
		if !slices.Equal(names(evs), []string{"created", "confirmed", "ready_for_administration", "administered"}) {
			t.Fatalf("events %v", names(evs))
		}
		if s := evs[2].Booking; s.GetBalance().GetAmount() != 0 || s.GetDeposit().GetAmount() != 1_650_000 || s.GetTotal().GetAmount() != 1_650_000 {
			t.Fatalf("ready event carries %v", s)
		}
	})
}
