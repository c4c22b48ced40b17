// Package devissuer is a small OpenID Connect issuer for `make run` and the
// tests: it serves a real discovery document and JWKS over HTTP and signs
// tokens with an asymmetric key (ES256), so the services verify them with
// the same code as tokens from Auth0, Cognito, Keycloak or Entra ID. It
// mints tokens for any role on request (POST /v1/dev/tokens) and client
// credentials tokens for the services it knows; it must never run in
// production, and the gateway routes to it only when told where it is.
package devissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/validation"
)

// TokenTTL is how long a minted token is valid.
const TokenTTL = time.Hour

// Issuer mints and publishes.
type Issuer struct {
	url      string
	audience string
	clients  map[string]string // client id → secret, for role service

	mu   sync.Mutex
	keys []*ecdsa.PrivateKey // the last one signs; all are published
	kids []string
}

// New returns an issuer whose iss is url (where its Handler is served) and
// whose tokens are for audience. clients are the services' client
// credentials (id → secret).
func New(url, audience string, clients map[string]string) (*Issuer, error) {
	i := &Issuer{url: url, audience: audience, clients: clients}
	return i, i.Rotate()
}

// Rotate starts signing with a new key; tokens signed with the old ones
// stay valid, their keys still in the JWKS.
func (i *Issuer) Rotate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	kid := make([]byte, 8)
	if _, err := rand.Read(kid); err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys, i.kids = append(i.keys, key), append(i.kids, hex.EncodeToString(kid))
	return nil
}

// Mint signs a token for p, valid for ttl.
func (i *Issuer) Mint(p identity.Principal, ttl time.Duration) (string, time.Time, error) {
	i.mu.Lock()
	key, kid := i.keys[len(i.keys)-1], i.kids[len(i.kids)-1]
	i.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	exp := now.Add(ttl)
	custom := map[string]any{identity.DefaultRoleClaim: string(p.Role)}
	if p.ClinicID != "" {
		custom[identity.DefaultClinicClaim] = p.ClinicID
	}
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: i.url, Subject: p.Subject, Audience: jwt.Audience{i.audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), Expiry: jwt.NewNumericDate(exp),
	}).Claims(custom).Serialize()
	return raw, exp, err
}

// Handler serves the discovery document, the JWKS, the token endpoint
// (client credentials) and POST /v1/dev/tokens.
func (i *Issuer) Handler() http.Handler {
	r := httpkit.NewRouter()
	r.Handle("GET /.well-known/openid-configuration", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = httpkit.WriteJSON(w, http.StatusOK, map[string]any{
			"issuer": i.url, "jwks_uri": i.url + "/jwks", "token_endpoint": i.url + "/oauth/token",
			"id_token_signing_alg_values_supported": []string{"ES256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
			"grant_types_supported":                 []string{"client_credentials"},
			"response_types_supported":              []string{"token"},
			"subject_types_supported":               []string{"public"},
			"claims_supported":                      []string{"sub", "aud", identity.DefaultRoleClaim, identity.DefaultClinicClaim},
		})
	}))
	r.Handle("GET /jwks", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i.mu.Lock()
		set := jose.JSONWebKeySet{}
		for n, k := range i.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: i.kids[n], Algorithm: string(jose.ES256), Use: "sig"})
		}
		i.mu.Unlock()
		_ = httpkit.WriteJSON(w, http.StatusOK, set)
	}))
	r.Handle("POST /oauth/token", http.HandlerFunc(i.clientCredentials))
	r.Handle("POST /v1/dev/tokens", http.HandlerFunc(i.devToken))
	return r
}

// clientCredentials is the OAuth 2.0 token endpoint (RFC 6749 §4.4) for
// the services: HTTP Basic or form credentials, a token of role service.
func (i *Issuer) clientCredentials(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	want, known := i.clients[id]
	if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	token, exp, err := i.Mint(identity.Principal{Subject: id, Role: identity.Service}, TokenTTL)
	if err != nil {
		fail(http.StatusInternalServerError, "server_error")
		return
	}
	_ = httpkit.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": token, "token_type": "Bearer", "expires_in": int(time.Until(exp).Seconds())})
}

type devTokenRequest struct {
	Role     identity.Role `json:"role"`
	Subject  string        `json:"subject"`
	ClinicID string        `json:"clinic_id"`
}

type devTokenView struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// devToken mints a token for any role but service (services use their
// client credentials): the local stand-in for a login.
func (i *Issuer) devToken(w http.ResponseWriter, r *http.Request) {
	var req devTokenRequest
	if err := httpkit.DecodeJSON(r, &req); err != nil {
		httpkit.WriteProblem(w, err.(*httpkit.Problem))
		return
	}
	var v validation.Validator
	v.Check(slices.Contains([]identity.Role{identity.Patient, identity.Clinic, identity.Finance, identity.Admin}, req.Role),
		"role", "must be patient, clinic, finance or admin")
	v.Check(req.Subject != "", "subject", "is required")
	v.Text("subject", req.Subject, 200, false)
	v.Check(req.Role != identity.Clinic || req.ClinicID != "", "clinic_id", "is required for role clinic")
	v.Check(req.Role == identity.Clinic || req.ClinicID == "", "clinic_id", "is only for role clinic")
	v.Text("clinic_id", req.ClinicID, 100, false)
	if err := v.Err(); err != nil {
		httpkit.WriteProblem(w, httpkit.Invalid(validation.Fields(err)...))
		return
	}
	token, exp, err := i.Mint(identity.Principal{Subject: req.Subject, Role: req.Role, ClinicID: req.ClinicID}, TokenTTL)
	if err != nil {
		httpkit.WriteProblem(w, httpkit.ProblemInternal.New(""))
		return
	}
	_ = httpkit.WriteJSON(w, http.StatusCreated, devTokenView{Token: token, ExpiresAt: exp.UTC()})
}

// String names the issuer, for logs.
func (i *Issuer) String() string {
	return fmt.Sprintf("dev issuer %s (audience %s)", i.url, i.audience)
}
