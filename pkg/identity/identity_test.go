package identity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/identity/devissuer"
)

const audience = "https://api.saisei.test"

// issuer serves a dev issuer over real HTTP, as make run does.
func issuer(t testing.TB) (*devissuer.Issuer, string) {
	t.Helper()
	var iss *devissuer.Issuer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { iss.Handler().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	if iss, err = devissuer.New(srv.URL, audience, map[string]string{"booking": "booking-secret"}); err != nil {
		t.Fatal(err)
	}
	return iss, srv.URL
}

func verifier(t testing.TB, url string, clientID, secret string) *identity.Verifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := identity.NewVerifier(ctx, identity.Config{IssuerURL: url, Audience: audience, ClientID: clientID, ClientSecret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mint(t *testing.T, iss *devissuer.Issuer, p identity.Principal, ttl time.Duration) string {
	t.Helper()
	tok, _, err := iss.Mint(p, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokensAreVerifiedAgainstTheIssuersDiscoveryAndKeys(t *testing.T) {
	iss, url := issuer(t)
	v := verifier(t, url, "", "")
	ctx := context.Background()

	clinic := identity.Principal{Subject: "staff-7", Role: identity.Clinic, ClinicID: "tokyo-ginza-namiki-clinic"}
	if got, err := v.Verify(ctx, mint(t, iss, clinic, time.Hour)); err != nil || got != clinic {
		t.Fatalf("clinic token: %+v, %v", got, err)
	}

	// Keys rotate: a token signed with a new key verifies (the JWKS is
	// fetched again for the unknown key id), and one signed before still does.
	before := mint(t, iss, identity.Principal{Subject: "p-1", Role: identity.Patient}, time.Hour)
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := mint(t, iss, identity.Principal{Subject: "p-2", Role: identity.Patient}, time.Hour)
	for _, tok := range []string{before, after} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("across a key rotation: %v", err)
		}
	}

	// Everything else is refused.
	other, _ := issuer(t) // another issuer's key, claiming to be ours
	forged, _, _ := other.Mint(identity.Principal{Subject: "p-1", Role: identity.Admin}, time.Hour)
	valid := mint(t, iss, identity.Principal{Subject: "p-1", Role: identity.Patient}, time.Hour)
	parts := strings.Split(valid, ".")
	claims := `{"iss":"` + url + `","sub":"p-1","aud":["` + audience + `"],"exp":9999999999,"https://saisei.health/role":"admin"}`
	tampered := parts[0] + "." + b64(claims) + "." + parts[2]
	// A token of this issuer for another API is not ours to accept.
	ctxT, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	otherAPI, err := identity.NewVerifier(ctxT, identity.Config{IssuerURL: url, Audience: "https://another.api"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := otherAPI.Verify(ctx, before); err == nil {
		t.Errorf("a token for %s accepted by another API as %+v", audience, p)
	}
	for name, tok := range map[string]string{
		"expired":                 mint(t, iss, identity.Principal{Subject: "p-1", Role: identity.Patient}, -2*time.Minute),
		"another issuer's key":    forged,
		"tampered claims":         tampered,
		"not a JWT":               "hello",
		"no role":                 mint(t, iss, identity.Principal{Subject: "p-1", Role: "superuser"}, time.Hour),
		"clinic without a clinic": mint(t, iss, identity.Principal{Subject: "s-1", Role: identity.Clinic}, time.Hour),
		"no subject":              mint(t, iss, identity.Principal{Role: identity.Patient}, time.Hour),
	} {
		if p, err := v.Verify(ctx, tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
}

func TestAGuardedRouteAnswers401And403AndHandsThePrincipalOn(t *testing.T) {
	iss, url := issuer(t)
	guard := identity.NewGuard(verifier(t, url, "", ""), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var seen identity.Principal
	h := guard.Require(identity.Patient, identity.Clinic)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = identity.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	call := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/quotes/q1", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	problem := func(w *httptest.ResponseRecorder) string {
		var p struct{ Type string }
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		return strings.TrimPrefix(p.Type, "https://saisei.health/problems/")
	}
	if w := call(""); w.Code != 401 || problem(w) != "unauthorized" || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %s %v", w.Code, w.Body, w.Header())
	}
	if w := call("Basic dXNlcjpwYXNz"); w.Code != 401 {
		t.Fatalf("basic auth: %d", w.Code)
	}
	if w := call("Bearer not-a-token"); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("bad token: %d %v", w.Code, w.Header())
	}
	finance := mint(t, iss, identity.Principal{Subject: "f-1", Role: identity.Finance}, time.Hour)
	if w := call("Bearer " + finance); w.Code != 403 || problem(w) != "forbidden" {
		t.Fatalf("finance on a patient route: %d %s", w.Code, w.Body)
	}
	patient := identity.Principal{Subject: "p-9", Role: identity.Patient}
	if w := call("bearer " + mint(t, iss, patient, time.Hour)); w.Code != 204 || seen != patient {
		t.Fatalf("patient: %d, principal %+v", w.Code, seen)
	}
}

func TestServicesCallEachOtherWithClientCredentials(t *testing.T) {
	iss, url := issuer(t)
	_ = iss
	guard := identity.NewGuard(verifier(t, url, "", ""), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var caller identity.Principal
	internal := httptest.NewServer(guard.Require(identity.Service)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ = identity.FromContext(r.Context())
		w.WriteHeader(http.StatusOK)
	})))
	t.Cleanup(internal.Close)

	client, err := identity.ServiceClient(verifier(t, url, "booking", "booking-secret"), &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the token is fetched once and reused
		resp, err := client.Get(internal.URL + "/internal/v1/deposits")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || caller.Role != identity.Service || caller.Subject != "booking" {
			t.Fatalf("service call: %d as %+v", resp.StatusCode, caller)
		}
	}
	wrong, _ := identity.ServiceClient(verifier(t, url, "booking", "guessed"), &http.Client{Timeout: 5 * time.Second})
	if _, err := wrong.Get(internal.URL + "/internal/v1/deposits"); err == nil {
		t.Fatal("a wrong client secret got a token")
	}
}

func TestDevTokensAreMintedOnlyForKnownRolesWithTheirClinic(t *testing.T) {
	iss, url := issuer(t)
	_ = iss
	v := verifier(t, url, "", "")
	post := func(body string) (*http.Response, map[string]any) {
		resp, err := http.Post(url+"/v1/dev/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, out := post(`{"role": "clinic", "subject": "staff-1", "clinic_id": "osaka-umeda-clinic"}`)
	if resp.StatusCode != 201 || out["expires_at"] == nil {
		t.Fatalf("clinic token: %d %v", resp.StatusCode, out)
	}
	p, err := v.Verify(context.Background(), out["token"].(string))
	if err != nil || p.Role != identity.Clinic || p.ClinicID != "osaka-umeda-clinic" || p.Subject != "staff-1" {
		t.Fatalf("minted token: %+v %v", p, err)
	}
	for body, field := range map[string]string{
		`{"role": "service", "subject": "booking"}`:                          "role",
		`{"role": "clinic", "subject": "staff-1"}`:                           "clinic_id",
		`{"role": "patient", "subject": "p", "clinic_id": "x"}`:              "clinic_id",
		`{"role": "patient", "subject": ""}`:                                 "subject",
		`{"role": "patient", "subject": "` + strings.Repeat("s", 201) + `"}`: "subject",
	} {
		resp, out := post(body)
		errs, _ := out["errors"].([]any)
		if resp.StatusCode != 422 || len(errs) == 0 || errs[0].(map[string]any)["field"] != field {
			t.Errorf("%s: %d %v, want 422 naming %s", body, resp.StatusCode, out, field)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestAVerifiedTokenIsRememberedButNeverPastItsExpiry(t *testing.T) {
	iss, url := issuer(t)
	v := verifier(t, url, "", "")
	ctx := context.Background()
	now := time.Now()
	identity.SetClock(v, func() time.Time { return now })

	patient := identity.Principal{Subject: "p-1", Role: identity.Patient}
	tok := mint(t, iss, patient, time.Minute)
	for i := range 3 {
		if got, err := v.Verify(ctx, tok); err != nil || got != patient {
			t.Fatalf("verification %d: %+v, %v", i, got, err)
		}
	}
	// The same token, once its exp has passed, is refused even though it
	// verified a moment ago.
	now = now.Add(61 * time.Second)
	if p, err := v.Verify(ctx, tok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("an expired token answered from memory: %+v, %v", p, err)
	}
	// A token that failed is not remembered as good, nor a good one as
	// another's: each token is its own entry.
	other := mint(t, iss, identity.Principal{Subject: "p-2", Role: identity.Patient}, time.Hour)
	if got, err := v.Verify(ctx, other); err != nil || got.Subject != "p-2" {
		t.Fatalf("another token: %+v, %v", got, err)
	}
	if _, err := v.Verify(ctx, other[:len(other)-2]+"AA"); err == nil {
		t.Fatal("a token with another signature accepted")
	}
}

// BenchmarkVerify is one service's check of a patient's token on each of
// their requests: the first verifies the signature, the rest are recalled.
func BenchmarkVerify(b *testing.B) {
	iss, url := issuer(b)
	v := verifier(b, url, "", "")
	tok, _, err := iss.Mint(identity.Principal{Subject: "p-1", Role: identity.Patient}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
