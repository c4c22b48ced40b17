package devtest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/identity/devissuer"
	"github.com/saisei-health/platform/pkg/sealed"
)

// Audience is the API the tests' tokens are issued for.
const Audience = "https://api.saisei.test"

// Issuer is a dev OpenID Connect issuer served over HTTP for one test, with
// a client id and secret for each service named (secret: "<name>-secret").
type Issuer struct {
	*devissuer.Issuer
	URL string
}

// NewIssuer starts an issuer for this test.
func NewIssuer(t testing.TB, services ...string) *Issuer {
	t.Helper()
	var iss *devissuer.Issuer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { iss.Handler().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	clients := map[string]string{}
	for _, s := range services {
		clients[s] = s + "-secret"
	}
	var err error
	if iss, err = devissuer.New(srv.URL, Audience, clients); err != nil {
		t.Fatal(err)
	}
	return &Issuer{Issuer: iss, URL: srv.URL}
}

// Config is what service name needs to verify tokens and call others.
func (i *Issuer) Config(service string) identity.Config {
	return identity.Config{IssuerURL: i.URL, Audience: Audience, ClientID: service, ClientSecret: service + "-secret"}
}

// Token mints a bearer token for p, valid for an hour.
func (i *Issuer) Token(t testing.TB, p identity.Principal) string {
	t.Helper()
	tok, _, err := i.Mint(p, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Keyset is a fresh Tink keyset (JSON) for sealing health information.
func Keyset(t testing.TB) string {
	t.Helper()
	ks, err := sealed.NewKeysetJSON()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
