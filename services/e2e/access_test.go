package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saisei-health/platform/pkg/devstack/devtest"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/tokyo"
	gateway "github.com/saisei-health/platform/services/gateway/server"
)

// Every route of the public API, tried through the gateway with every kind
// of caller: nobody, each role that may not use it, the same role of
// another tenant (another patient, another clinic), and the right caller.
// Nobody is 401 with WWW-Authenticate, a wrong role 403, another tenant
// 404 exactly as an id that does not exist, and only the right caller
// changes anything.
func TestEveryRouteAnswersOnlyItsCallers(t *testing.T) {
	p := startPlatform(t)
	otherPatient := identity.Principal{Subject: "patient-ana", Role: identity.Patient}
	ginza := identity.Principal{Subject: "ginza-staff", Role: identity.Clinic, ClinicID: "tokyo-ginza-namiki-clinic"}
	otherClinic := identity.Principal{Subject: "osaka-staff", Role: identity.Clinic, ClinicID: "osaka-umeda-regenerative-clinic"}
	service := identity.Principal{Subject: "booking", Role: identity.Service}
	names := map[string]string{}
	as := func(who identity.Principal) map[string]string {
		auth := "Bearer " + p.token(t, who)
		names[auth] = string(who.Role) + " " + who.Subject
		return map[string]string{"Authorization": auth, "Idempotency-Key": uuid.NewString()}
	}
	nobody := map[string]string{"Authorization": "", "Idempotency-Key": uuid.NewString()}

	// The patient's quote and booking, at the Ginza clinic.
	quote := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
	spare := p.IssueQuote(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit}).Expect(t, 201)
	booking := p.Book(t, quote.Value.ID, "access-"+quote.Value.ID).Expect(t, 201)
	bookingID, quoteID := booking.Value.ID, quote.Value.ID
	quoteBody := QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit}
	// The Ginza clinic's webhook endpoint (an address literal: no DNS here).
	var hook struct{ ID string }
	registered := p.call(t, "POST", "/v1/clinic/webhook-endpoints", map[string]any{"url": "https://93.184.216.34/hooks",
		"events": []string{"booking.confirmed"}}, as(ginza))
	if err := json.Unmarshal(registered.Raw, &hook); err != nil || registered.Status != 201 {
		t.Fatalf("register a webhook endpoint: %d %s", registered.Status, registered.Raw)
	}
	hookID := hook.ID

	type attempt struct {
		who  map[string]string
		want int
	}
	routes := []struct {
		method, path string
		body         any
		attempts     []attempt
	}{
		{"GET", "/v1/treatments?condition=stroke", nil, []attempt{{nobody, 200}, {as(thePatient), 200}}},
		{"GET", "/v1/conditions/stroke/price-comparison", nil, []attempt{{nobody, 200}}},
		{"POST", "/v1/quotes", quoteBody, []attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403}, {as(operator), 403}, {as(service), 403}}},
		{"GET", "/v1/quotes/" + quoteID, nil, []attempt{{nobody, 401}, {as(finance), 403}, {as(operator), 403},
			{as(otherPatient), 404}, {as(otherClinic), 404}, {as(thePatient), 200}, {as(ginza), 200}}},
		{"POST", "/v1/clinic/quotes/" + spare.Value.ID + "/revisions", map[string]any{"note": "reviewed"}, []attempt{{nobody, 401},
			{as(thePatient), 403}, {as(finance), 403}, {as(otherClinic), 404}}},
		{"POST", "/v1/bookings", BookingRequest{QuoteID: spare.Value.ID}, []attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403},
			{as(otherPatient), 422}}}, // another patient's quote is, to them, no quote at all
		{"GET", "/v1/bookings/" + bookingID, nil, []attempt{{nobody, 401}, {as(finance), 403}, {as(operator), 403},
			{as(otherPatient), 404}, {as(otherClinic), 404}, {as(thePatient), 200}, {as(ginza), 200}}},
		{"POST", "/v1/clinic/bookings/" + bookingID + "/harvest", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(finance), 403},
			{as(otherClinic), 404}}},
		{"POST", "/v1/clinic/bookings/" + bookingID + "/cells-ready", map[string]any{"cell_count": 1, "viability_pct": 90, "sterility": "fail", "endotoxin": "fail"},
			[]attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}}},
		{"POST", "/v1/clinic/bookings/" + bookingID + "/administered", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}}},
		{"POST", "/v1/bookings/" + bookingID + "/cancel", nil, []attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403},
			{as(operator), 403}, {as(service), 403}, {as(otherPatient), 404}}},
		{"POST", "/v1/clinic/bookings/" + bookingID + "/ineligible", map[string]string{"reason": "not suitable"}, []attempt{{nobody, 401},
			{as(thePatient), 403}, {as(finance), 403}, {as(otherClinic), 404}}},
		{"GET", "/v1/finance/bookings/" + bookingID, nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403},
			{as(operator), 403}, {as(finance), 200}}},
		{"GET", "/v1/finance/reconciliation?from=2026-11-01&to=2026-11-30", nil, []attempt{{nobody, 401}, {as(thePatient), 403},
			{as(ginza), 403}, {as(operator), 403}, {as(finance), 200}}},
		{"POST", "/v1/finance/reconciliation/import", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403},
			{as(operator), 403}}},
		{"GET", "/v1/finance/settlements?clinic=tokyo-ginza-namiki-clinic&period=2026-11", nil, []attempt{{nobody, 401}, {as(thePatient), 403},
			{as(ginza), 403}, {as(operator), 403}, {as(finance), 200}}},
		{"POST", "/v1/finance/settlements/close", map[string]string{"clinic_id": "tokyo-ginza-namiki-clinic", "period": "2026-11"},
			[]attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403}, {as(operator), 403}}},
		{"GET", "/v1/admin/commissions/tokyo-ginza-namiki-clinic", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403},
			{as(finance), 403}, {as(operator), 200}}},
		{"PUT", "/v1/admin/commissions/tokyo-ginza-namiki-clinic", map[string]int{"rate_bp": 1000}, []attempt{{nobody, 401},
			{as(thePatient), 403}, {as(ginza), 403}, {as(finance), 403}}},
		{"GET", "/v1/finance/disputes?status=open", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403},
			{as(operator), 403}, {as(finance), 200}}},
		{"POST", "/v1/bookings/" + bookingID + "/reculture", nil, []attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403},
			{as(otherPatient), 404}, {as(thePatient), 409}}},
		{"POST", "/v1/bookings/" + bookingID + "/balance-payment", nil, []attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403},
			{as(otherPatient), 404}, {as(thePatient), 409}}},
		{"GET", "/v1/finance/ledger?account=booking:" + bookingID + ":", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403},
			{as(operator), 403}, {as(service), 403}, {as(finance), 200}}},
		{"PATCH", "/v1/admin/plans/PB3240117", map[string]any{"status": "suspended"}, []attempt{{nobody, 401}, {as(thePatient), 403},
			{as(ginza), 403}, {as(finance), 403}, {as(service), 403}}},
		{"GET", "/v1/admin/audit?record=quote:" + quoteID, nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 403},
			{as(finance), 403}, {as(operator), 200}}},
		{"GET", "/v1/me/notification-preferences", nil, []attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403},
			{as(operator), 403}, {as(service), 403}, {as(thePatient), 200}}},
		{"PUT", "/v1/me/notification-preferences", map[string]any{"language": "ko", "emails": map[string]bool{"quote_issued": false}},
			[]attempt{{nobody, 401}, {as(ginza), 403}, {as(finance), 403}, {as(thePatient), 200}}},
		{"POST", "/v1/clinic/webhook-endpoints", map[string]any{"url": "https://93.184.216.34/hooks", "events": []string{"booking.confirmed"}},
			[]attempt{{nobody, 401}, {as(thePatient), 403}, {as(finance), 403}, {as(operator), 403}, {as(service), 403}}},
		{"GET", "/v1/clinic/webhook-endpoints", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(ginza), 200}}},
		{"GET", "/v1/clinic/webhook-endpoints/" + hookID, nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}, {as(ginza), 200}}},
		{"PATCH", "/v1/clinic/webhook-endpoints/" + hookID, map[string]any{"enabled": false}, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}}},
		{"POST", "/v1/clinic/webhook-endpoints/" + hookID + "/rotate-secret", nil, []attempt{{nobody, 401}, {as(finance), 403}, {as(otherClinic), 404}}},
		{"GET", "/v1/clinic/webhook-endpoints/" + hookID + "/deliveries", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}, {as(ginza), 200}}},
		{"POST", "/v1/clinic/webhook-endpoints/" + hookID + "/deliveries/" + uuid.NewString() + "/replay", nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}}},
		{"DELETE", "/v1/clinic/webhook-endpoints/" + hookID, nil, []attempt{{nobody, 401}, {as(thePatient), 403}, {as(otherClinic), 404}}},
		{"POST", "/v1/admin/clinics/tokyo-ginza-namiki-clinic/nats-credentials", nil, []attempt{{nobody, 401}, {as(thePatient), 403},
			{as(ginza), 403}, {as(finance), 403}, {as(service), 403}}},
		{"GET", "/v1/admin/clinics/tokyo-ginza-namiki-clinic/nats-credentials", nil, []attempt{{nobody, 401}, {as(thePatient), 403},
			{as(ginza), 403}, {as(finance), 403}, {as(service), 403}, {as(operator), 200}}},
		{"POST", "/v1/admin/clinics/tokyo-ginza-namiki-clinic/nats-credentials/" + uuid.NewString() + "/revoke", nil, []attempt{{nobody, 401},
			{as(thePatient), 403}, {as(ginza), 403}, {as(finance), 403}, {as(service), 403}, {as(operator), 404}}},
		// Internal routes are never routed by the gateway, whoever asks.
		{"POST", "/internal/v1/deposits", map[string]any{}, []attempt{{nobody, 404}, {as(service), 404}}},
		{"GET", "/internal/v1/emails?booking_id=" + bookingID, nil, []attempt{{as(operator), 404}}},
	}
	for _, r := range routes {
		for _, a := range r.attempts {
			got := p.call(t, r.method, r.path, r.body, a.who)
			if got.Status != a.want {
				t.Errorf("%s %s as %s: %d, want %d: %s", r.method, r.path, callerOf(names, a.who), got.Status, a.want, got.Raw)
				continue
			}
			var problem Problem
			_ = json.Unmarshal(got.Raw, &problem)
			switch a.want {
			case 401:
				if !strings.HasPrefix(got.Header.Get("WWW-Authenticate"), "Bearer") || problem.Slug() != "unauthorized" {
					t.Errorf("%s %s: a 401 without WWW-Authenticate or of type %s", r.method, r.path, problem.Type)
				}
			case 403:
				if problem.Slug() != "forbidden" {
					t.Errorf("%s %s: a 403 of type %s", r.method, r.path, problem.Type)
				}
			case 404:
				// Indistinguishable from an id that does not exist.
				if slug := problem.Slug(); slug != "not-found" && slug != "no-route" {
					t.Errorf("%s %s: a 404 of type %s", r.method, r.path, problem.Type)
				}
				if strings.Contains(string(got.Raw), "patient") || strings.Contains(string(got.Raw), patient.Email) {
					t.Errorf("%s %s: a 404 that says something about the record: %s", r.method, r.path, got.Raw)
				}
			}
		}
	}

	// Preferences are the caller's own: the patient's setting is not another's.
	var mine, theirs struct {
		Language string          `json:"language"`
		Emails   map[string]bool `json:"emails"`
	}
	_ = json.Unmarshal(p.call(t, "GET", "/v1/me/notification-preferences", nil, as(thePatient)).Raw, &mine)
	_ = json.Unmarshal(p.call(t, "GET", "/v1/me/notification-preferences", nil, as(otherPatient)).Raw, &theirs)
	if mine.Language != "ko" || mine.Emails["quote_issued"] || theirs.Language != "" || !theirs.Emails["quote_issued"] {
		t.Fatalf("preferences: mine %+v, another patient's %+v", mine, theirs)
	}

	// Nor the webhook endpoint.
	var hookAfter struct{ Enabled bool }
	_ = json.Unmarshal(p.call(t, "GET", "/v1/clinic/webhook-endpoints/"+hookID, nil, as(ginza)).Raw, &hookAfter)
	if !hookAfter.Enabled {
		t.Fatalf("refused callers changed the clinic's webhook endpoint")
	}

	// Nothing any refused caller sent changed the booking, the quote or the plan.
	after := p.Booking(t, bookingID).Expect(t, 200)
	if after.Value.Status != "awaiting_deposit" || len(after.Value.History) != 1 {
		t.Fatalf("refused callers moved the booking: %s, %d transitions", after.Value.Status, len(after.Value.History))
	}
	if q := p.Quote(t, spare.Value.ID).Expect(t, 200); q.Value.Status != "issued" {
		t.Fatalf("refused callers moved the spare quote: %s", q.Value.Status)
	}
	if tr := p.Treatment(t, treatmentID).Expect(t, 200); !tr.Value.Bookable {
		t.Fatal("a refused caller suspended the plan")
	}

	// An Idempotency-Key is the caller's own: another patient sending the
	// same key (with the same quote id) never gets the first booking back.
	replay := p.call(t, "POST", "/v1/bookings", BookingRequest{QuoteID: quoteID},
		map[string]string{"Authorization": "Bearer " + p.token(t, otherPatient), "Idempotency-Key": "access-" + quoteID})
	if replay.Status == 201 || replay.Header.Get("Idempotent-Replayed") != "" || strings.Contains(string(replay.Raw), bookingID) {
		t.Fatalf("another patient's reuse of the key: %d %v %s", replay.Status, replay.Header, replay.Raw)
	}
	if again := p.Book(t, quoteID, "access-"+quoteID).Expect(t, 201); again.Value.ID != bookingID || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the patient's own replay: %s %v", again.Value.ID, again.Header)
	}
}

// POST /v1/dev/tokens exists only while the dev issuer is on: a gateway
// told where it is mints through it, any other gateway has no such route.
func TestDevTokensExistOnlyWithTheDevIssuer(t *testing.T) {
	p := startPlatform(t)
	start := func(devIssuer string) string {
		addr, base := devtest.Addr(t)
		deps := devtest.Deps(t, "gateway", nil)
		cfg := gateway.Config{HTTPAddr: addr, CatalogURL: "http://127.0.0.1:1", QuotingURL: "http://127.0.0.1:1",
			BookingURL: "http://127.0.0.1:1", PaymentURL: "http://127.0.0.1:1", DevIssuerURL: devIssuer, Identity: p.issuer.Config("gateway")}
		devtest.RunService(t, base, func(ctx context.Context) error { return gateway.Run(ctx, cfg, deps) })
		return base
	}
	body := `{"role": "clinic", "subject": "ginza-staff", "clinic_id": "tokyo-ginza-namiki-clinic"}`
	for _, c := range []struct {
		gateway string
		want    int
	}{{start(p.issuer.URL), 201}, {start(""), 404}} {
		resp := postJSON(t, c.gateway+"/v1/dev/tokens", body)
		if resp.Status != c.want {
			t.Fatalf("POST /v1/dev/tokens: %d, want %d: %s", resp.Status, c.want, resp.Raw)
		}
		if c.want == 201 {
			var minted struct{ Token string }
			_ = json.Unmarshal(resp.Raw, &minted)
			r := p.call(t, "GET", "/v1/bookings/"+uuid.NewString(), nil, map[string]string{"Authorization": "Bearer " + minted.Token})
			if r.Status != 404 { // a valid clinic token: the unknown booking is simply not found
				t.Fatalf("the minted token: %d %s", r.Status, r.Raw)
			}
		}
	}
}

// callerOf names who a header set speaks for, for messages.
func callerOf(names map[string]string, h map[string]string) string {
	if h["Authorization"] == "" {
		return "nobody"
	}
	return names[h["Authorization"]]
}

func postJSON(t *testing.T, url, body string) response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{Request: "POST " + url, Status: resp.StatusCode, Header: resp.Header, Raw: raw}
}

// A clinic lists its own bookings only, filtered and paged on its own
// calendar, and reads one with the patient's screening, which quoting
// records in the audit log.
func TestAClinicSeesItsOwnBookingsWithTheScreeningAudited(t *testing.T) {
	p := startPlatform(t)
	ginza := identity.Principal{Subject: "ginza-staff", Role: identity.Clinic, ClinicID: "tokyo-ginza-namiki-clinic"}
	osaka := identity.Principal{Subject: "osaka-staff", Role: identity.Clinic, ClinicID: "osaka-umeda-regenerative-clinic"}
	var ids []string
	for i := range 3 {
		q := p.issueWhenKnown(t, QuoteRequest{TreatmentID: treatmentID, DoseCells: dose, Currency: "JPY", Patient: patient, Screening: &fit})
		ids = append(ids, p.Book(t, q.Value.ID, fmt.Sprintf("clinic-list-%d-%s", i, q.Value.ID)).Expect(t, 201).Value.ID)
	}
	as := func(who identity.Principal) map[string]string {
		return map[string]string{"Authorization": "Bearer " + p.token(t, who)}
	}
	type page struct {
		Items []struct {
			ID       string `json:"id"`
			ClinicID string `json:"clinic_id"`
			Status   string `json:"status"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	list := func(who identity.Principal, query string) (int, page) {
		r := p.call(t, "GET", "/v1/clinic/bookings"+query, nil, as(who))
		var pg page
		_ = json.Unmarshal(r.Raw, &pg)
		return r.Status, pg
	}
	today := time.Now().In(tokyo.Location).Format(time.DateOnly)
	var seen []string
	cursor := ""
	for {
		status, pg := list(ginza, "?status=awaiting_deposit&from="+today+"&to="+today+"&limit=2"+cursor)
		if status != 200 {
			t.Fatalf("list: %d", status)
		}
		for _, it := range pg.Items {
			if it.ClinicID != ginza.ClinicID || it.Status != "awaiting_deposit" {
				t.Fatalf("listed %+v", it)
			}
			seen = append(seen, it.ID)
		}
		if pg.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + pg.NextCursor
	}
	for _, id := range ids {
		if !slices.Contains(seen, id) {
			t.Fatalf("booking %s missing from the clinic's pages %v", id, seen)
		}
	}
	if status, pg := list(osaka, ""); status != 200 || len(pg.Items) != 0 {
		t.Fatalf("another clinic lists %d bookings (%d)", len(pg.Items), status)
	}
	if status, _ := list(ginza, "?status=paid"); status != 422 {
		t.Fatalf("a bad status: %d", status)
	}
	if r := p.call(t, "GET", "/v1/clinic/bookings", nil, as(thePatient)); r.Status != 403 {
		t.Fatalf("a patient lists clinic bookings: %d", r.Status)
	}

	// One booking, with the screening, read as the clinic: audited.
	r := p.call(t, "GET", "/v1/clinic/bookings/"+ids[0], nil, as(ginza))
	var one struct {
		ID        string `json:"id"`
		Screening struct {
			DiagnosisConfirmed *bool `json:"diagnosis_confirmed"`
		} `json:"screening"`
		Eligibility struct {
			Status string `json:"status"`
		} `json:"eligibility"`
		History []struct{ To string } `json:"history"`
	}
	if r.Status != 200 || json.Unmarshal(r.Raw, &one) != nil || one.ID != ids[0] || one.Screening.DiagnosisConfirmed == nil ||
		one.Eligibility.Status != "eligible" || len(one.History) != 1 {
		t.Fatalf("the clinic's booking: %d %s", r.Status, r.Raw)
	}
	if r := p.call(t, "GET", "/v1/clinic/bookings/"+ids[0], nil, as(osaka)); r.Status != 404 {
		t.Fatalf("another clinic's booking: %d", r.Status)
	}
	booked := p.Booking(t, ids[0]).Expect(t, 200)
	audit := p.call(t, "GET", "/v1/admin/audit?record=quote:"+booked.Value.QuoteID, nil, as(operator))
	if audit.Status != 200 || !strings.Contains(string(audit.Raw), `"subject":"ginza-staff"`) || !strings.Contains(string(audit.Raw), `"action":"read"`) {
		t.Fatalf("the clinic's read is not in the audit log: %d %s", audit.Status, audit.Raw)
	}
}
