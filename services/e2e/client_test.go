package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/identity"
)

// response is an HTTP answer as it came: status, headers and body.
type response struct {
	Request string // "METHOD /path", for messages
	Status  int
	Header  http.Header
	Raw     []byte
}

// call sends one request to the gateway. body is sent as JSON, or as it is
// when it is a []byte (the tests that send malformed bodies on purpose).
func (p *platform) call(t *testing.T, method, path string, body any, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("%s %s: encoding the body: %v", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, p.gateway+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if _, given := header["Authorization"]; !given {
		if token := p.tokenFor(t, method, path); token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
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
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return response{Request: method + " " + path, Status: resp.StatusCode, Header: resp.Header, Raw: raw}
}

// The callers the journeys act as, unless a test names another with an
// Authorization header (an empty one sends none).
var (
	thePatient = identity.Principal{Subject: "patient-kim", Role: identity.Patient}
	finance    = identity.Principal{Subject: "finance-1", Role: identity.Finance}
	operator   = identity.Principal{Subject: "operator-1", Role: identity.Admin}
)

// token mints (once) a bearer token for p, as the issuer's login would.
func (p *platform) token(t *testing.T, who identity.Principal) string {
	t.Helper()
	p.tokensMu.Lock()
	defer p.tokensMu.Unlock()
	if tok, ok := p.tokens[who]; ok {
		return tok
	}
	tok := p.issuer.Token(t, who)
	p.tokens[who] = tok
	return tok
}

// tokenFor is who a journey's request is made by: nobody for the catalog's
// reads and Stripe's webhook, the operator for the catalog's administration,
// finance for the finance API, the staff of the booking's or quote's own
// clinic for clinic requests, and the patient for everything else.
func (p *platform) tokenFor(t *testing.T, method, path string) string {
	t.Helper()
	switch {
	case strings.HasPrefix(path, "/v1/treatments"), strings.HasPrefix(path, "/v1/conditions"),
		strings.HasPrefix(path, "/v1/webhooks/"), strings.HasPrefix(path, "/v1/dev/"):
		return ""
	case strings.HasPrefix(path, "/v1/admin/"):
		return p.token(t, operator)
	case strings.HasPrefix(path, "/v1/finance/"):
		return p.token(t, finance)
	case strings.HasPrefix(path, "/v1/clinic/bookings/"), strings.HasPrefix(path, "/v1/clinic/quotes/"):
		kind, rest, _ := strings.Cut(strings.TrimPrefix(path, "/v1/clinic/"), "/")
		id, _, _ := strings.Cut(rest, "/")
		return p.token(t, p.clinicStaffOf(t, kind, id))
	}
	return p.token(t, thePatient)
}

// clinicStaffOf is a member of staff of the clinic a booking or quote
// belongs to, found as the patient sees it.
func (p *platform) clinicStaffOf(t *testing.T, kind, id string) identity.Principal {
	t.Helper()
	r := p.call(t, "GET", "/v1/"+kind+"/"+url.PathEscape(id), nil, map[string]string{"Authorization": "Bearer " + p.token(t, thePatient)})
	var owner struct {
		ClinicID string `json:"clinic_id"`
	}
	_ = json.Unmarshal(r.Raw, &owner)
	if owner.ClinicID == "" {
		owner.ClinicID = "unknown-clinic" // an id that is nobody's: the request answers 404
	}
	return identity.Principal{Subject: "staff-of-" + owner.ClinicID, Role: identity.Clinic, ClinicID: owner.ClinicID}
}

// Result is a decoded answer: Value when the status is a success, Problem
// when it is an error. A member the answer lacks reads as its zero value.
type Result[T any] struct {
	response
	Value   T
	Problem Problem
}

// decode reads r's body as T, or as a problem for an error status. A body
// that is not that JSON fails the test: every answer of the API is JSON.
func decode[T any](t *testing.T, r response) Result[T] {
	t.Helper()
	out := Result[T]{response: r}
	var err error
	if r.Status >= 400 {
		err = json.Unmarshal(r.Raw, &out.Problem)
	} else {
		err = json.Unmarshal(r.Raw, &out.Value)
	}
	if err != nil {
		t.Fatalf("%s = %d, a body that does not decode (%v): %q", r.Request, r.Status, err, r.Raw)
	}
	return out
}

func send[T any](p *platform, t *testing.T, method, path string, body any, header map[string]string) Result[T] {
	t.Helper()
	return decode[T](t, p.call(t, method, path, body, header))
}

// Expect fails the test unless the answer has the status.
func (r Result[T]) Expect(t *testing.T, status int) Result[T] {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s = %d, want %d: %s", r.Request, r.Status, status, r.Raw)
	}
	return r
}

// Has reports whether the answer has the member at path, to tell a member
// that is false or zero from one that is missing.
func (r response) Has(path ...string) bool {
	var doc any
	if json.Unmarshal(r.Raw, &doc) != nil {
		return false
	}
	for _, key := range path {
		obj, ok := doc.(map[string]any)
		if !ok {
			return false
		}
		if doc, ok = obj[key]; !ok {
			return false
		}
	}
	return true
}

// Slug is the stable last part of the problem's type URI; a type outside
// https://saisei.health/problems/ has none.
func (p Problem) Slug() string {
	slug, ok := strings.CutPrefix(p.Type, "https://saisei.health/problems/")
	if !ok {
		return ""
	}
	return slug
}

// Names reports whether the problem names field among its errors.
func (p Problem) Names(field string) bool {
	return slices.ContainsFunc(p.Errors, func(e FieldError) bool { return e.Field == field })
}

// Mentions reports whether s appears in what the problem tells a reader:
// its title, detail, or an error's field or message.
func (p Problem) Mentions(s string) bool {
	if strings.Contains(p.Title, s) || strings.Contains(p.Detail, s) {
		return true
	}
	return slices.ContainsFunc(p.Errors, func(e FieldError) bool {
		return strings.Contains(e.Field, s) || strings.Contains(e.Message, s)
	})
}

// The gateway's API. Each method sends one request and returns the typed
// answer, whatever its status: the caller asserts it (Expect, or a status
// check before it reads Value).

// SearchTreatments is GET /v1/treatments?query.
func (p *platform) SearchTreatments(t *testing.T, query string) Result[TreatmentPage] {
	t.Helper()
	return send[TreatmentPage](p, t, "GET", "/v1/treatments?"+query, nil, nil)
}

// Treatment is GET /v1/treatments/{id}.
func (p *platform) Treatment(t *testing.T, id string) Result[Treatment] {
	t.Helper()
	return send[Treatment](p, t, "GET", "/v1/treatments/"+url.PathEscape(id), nil, nil)
}

// TreatmentIn is GET /v1/treatments/{id} with an Accept-Language header.
func (p *platform) TreatmentIn(t *testing.T, id, acceptLanguage string) Result[Treatment] {
	t.Helper()
	return send[Treatment](p, t, "GET", "/v1/treatments/"+url.PathEscape(id), nil, map[string]string{"Accept-Language": acceptLanguage})
}

// PriceComparison is GET /v1/conditions/{code}/price-comparison?query.
func (p *platform) PriceComparison(t *testing.T, condition, query string) Result[PriceComparison] {
	t.Helper()
	return send[PriceComparison](p, t, "GET", "/v1/conditions/"+url.PathEscape(condition)+"/price-comparison?"+query, nil, nil)
}

// IssueQuote is POST /v1/quotes.
func (p *platform) IssueQuote(t *testing.T, req QuoteRequest) Result[Quote] {
	t.Helper()
	return send[Quote](p, t, "POST", "/v1/quotes", req, nil)
}

// Quote is GET /v1/quotes/{id}.
func (p *platform) Quote(t *testing.T, id string) Result[Quote] {
	t.Helper()
	return send[Quote](p, t, "GET", "/v1/quotes/"+url.PathEscape(id), nil, nil)
}

// ReviseQuote is the clinic's POST /v1/clinic/quotes/{id}/revisions.
func (p *platform) ReviseQuote(t *testing.T, id string, req RevisionRequest) Result[Quote] {
	t.Helper()
	return send[Quote](p, t, "POST", "/v1/clinic/quotes/"+url.PathEscape(id)+"/revisions", req, nil)
}

// Book is POST /v1/bookings with the Idempotency-Key key; an empty key
// sends no header.
func (p *platform) Book(t *testing.T, quoteID, key string) Result[CreatedBooking] {
	t.Helper()
	var header map[string]string
	if key != "" {
		header = map[string]string{"Idempotency-Key": key}
	}
	return send[CreatedBooking](p, t, "POST", "/v1/bookings", BookingRequest{QuoteID: quoteID}, header)
}

// Booking is GET /v1/bookings/{id}: booking's view with payment's payments.
func (p *platform) Booking(t *testing.T, id string) Result[BookingWithPayments] {
	t.Helper()
	return send[BookingWithPayments](p, t, "GET", "/v1/bookings/"+url.PathEscape(id), nil, nil)
}

// ReportHarvest is the clinic's POST /v1/clinic/bookings/{id}/harvest, for now.
func (p *platform) ReportHarvest(t *testing.T, bookingID string) Result[Booking] {
	t.Helper()
	return send[Booking](p, t, "POST", "/v1/clinic/bookings/"+url.PathEscape(bookingID)+"/harvest", nil, nil)
}

// ReportCellsReady is the clinic's POST /v1/clinic/bookings/{id}/cells-ready.
func (p *platform) ReportCellsReady(t *testing.T, bookingID string, report CellsReport) Result[Booking] {
	t.Helper()
	return send[Booking](p, t, "POST", "/v1/clinic/bookings/"+url.PathEscape(bookingID)+"/cells-ready", report, nil)
}

// ReportAdministered is the clinic's POST /v1/clinic/bookings/{id}/administered, for now.
func (p *platform) ReportAdministered(t *testing.T, bookingID string) Result[Booking] {
	t.Helper()
	return send[Booking](p, t, "POST", "/v1/clinic/bookings/"+url.PathEscape(bookingID)+"/administered", nil, nil)
}

// CancelBooking is POST /v1/bookings/{id}/cancel, as the booking's patient.
func (p *platform) CancelBooking(t *testing.T, bookingID string) Result[Booking] {
	t.Helper()
	return send[Booking](p, t, "POST", "/v1/bookings/"+url.PathEscape(bookingID)+"/cancel", nil, nil)
}

// FindIneligible is POST /v1/clinic/bookings/{id}/ineligible, as the booking's clinic.
func (p *platform) FindIneligible(t *testing.T, bookingID, reason string) Result[Booking] {
	t.Helper()
	return send[Booking](p, t, "POST", "/v1/clinic/bookings/"+url.PathEscape(bookingID)+"/ineligible", map[string]string{"reason": reason}, nil)
}

// Finance is GET /v1/finance/bookings/{id}.
func (p *platform) Finance(t *testing.T, bookingID string) Result[Finance] {
	t.Helper()
	return send[Finance](p, t, "GET", "/v1/finance/bookings/"+url.PathEscape(bookingID), nil, nil)
}

// StripeWebhook is Stripe's POST /v1/webhooks/stripe of a signed event.
func (p *platform) StripeWebhook(t *testing.T, payload []byte, signature string) Result[WebhookReceipt] {
	t.Helper()
	return send[WebhookReceipt](p, t, "POST", "/v1/webhooks/stripe", payload, map[string]string{"Stripe-Signature": signature})
}

// The catalog's administration API. admin() is the operator (the default
// caller of /v1/admin), anonymous is nobody.
func admin() map[string]string { return nil }

var anonymous = map[string]string{"Authorization": ""}

// CreateClinic is POST /v1/admin/clinics.
func (p *platform) CreateClinic(t *testing.T, doc ClinicDocument, header map[string]string) Result[ClinicDocument] {
	t.Helper()
	return send[ClinicDocument](p, t, "POST", "/v1/admin/clinics", doc, header)
}

// CreatePlan is POST /v1/admin/plans.
func (p *platform) CreatePlan(t *testing.T, doc PlanDocument, header map[string]string) Result[PlanDocument] {
	t.Helper()
	return send[PlanDocument](p, t, "POST", "/v1/admin/plans", doc, header)
}

// PatchPlan is PATCH /v1/admin/plans/{number}. A patch is a partial
// document, so a map: it must be able to carry zero values and, to be
// refused, members no document has.
func (p *platform) PatchPlan(t *testing.T, number string, patch map[string]any, header map[string]string) Result[PlanDocument] {
	t.Helper()
	return send[PlanDocument](p, t, "PATCH", "/v1/admin/plans/"+url.PathEscape(number), patch, header)
}

// NATSCredential is a clinic's NATS credential as operators see it; JWT
// and Creds only in the answer to its issue.
type NATSCredential struct {
	ID        string     `json:"id"`
	ClinicID  string     `json:"clinic_id"`
	PublicKey string     `json:"public_key"`
	Status    string     `json:"status"`
	IssuedAt  time.Time  `json:"issued_at"`
	IssuedBy  string     `json:"issued_by"`
	RevokedAt *time.Time `json:"revoked_at"`
	RevokedBy string     `json:"revoked_by"`
	JWT       string     `json:"jwt"`
	Creds     string     `json:"creds"`
}

// IssueClinicCredential is POST /v1/admin/clinics/{id}/nats-credentials,
// with the clinic's own public key or, empty, none (the platform makes it).
func (p *platform) IssueClinicCredential(t *testing.T, clinicID, publicKey string) Result[NATSCredential] {
	t.Helper()
	var body any
	if publicKey != "" {
		body = map[string]string{"public_key": publicKey}
	}
	return send[NATSCredential](p, t, "POST", "/v1/admin/clinics/"+url.PathEscape(clinicID)+"/nats-credentials", body, nil)
}

// ClinicCredentials is GET /v1/admin/clinics/{id}/nats-credentials.
func (p *platform) ClinicCredentials(t *testing.T, clinicID string) Result[struct{ Items []NATSCredential }] {
	t.Helper()
	return send[struct{ Items []NATSCredential }](p, t, "GET", "/v1/admin/clinics/"+url.PathEscape(clinicID)+"/nats-credentials", nil, nil)
}

// RevokeClinicCredential is POST /v1/admin/clinics/{id}/nats-credentials/{credential_id}/revoke.
func (p *platform) RevokeClinicCredential(t *testing.T, clinicID, id string) Result[NATSCredential] {
	t.Helper()
	return send[NATSCredential](p, t, "POST", "/v1/admin/clinics/"+url.PathEscape(clinicID)+"/nats-credentials/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// CreateTreatment is POST /v1/admin/treatments.
func (p *platform) CreateTreatment(t *testing.T, doc TreatmentDocument, header map[string]string) Result[Treatment] {
	t.Helper()
	return send[Treatment](p, t, "POST", "/v1/admin/treatments", doc, header)
}

// PatchTreatment is PATCH /v1/admin/treatments/{id}; see PatchPlan.
func (p *platform) PatchTreatment(t *testing.T, id string, patch map[string]any, header map[string]string) Result[Treatment] {
	t.Helper()
	return send[Treatment](p, t, "PATCH", "/v1/admin/treatments/"+url.PathEscape(id), patch, header)
}

func ptr[T any](v T) *T { return &v }
