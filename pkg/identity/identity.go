// Package identity says who is calling: it verifies the OpenID Connect
// bearer tokens every request but the catalog's reads and Stripe's webhook
// carries (signature, issuer, audience and expiry, against the issuer's
// discovery document and JWKS, keys cached and rotated by go-oidc), reads
// the caller's role and clinic from configurable claims, and guards routes
// by role. Services also call each other as themselves, with client
// credentials tokens from the same issuer (ServiceClient).
//
// Any standard issuer fits: Auth0, Cognito, Keycloak or Entra ID in
// production, the dev issuer (package devissuer) in `make run` and tests,
// so the verifying code is always the production code.
package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Role is what a caller may do.
type Role string

// The roles. A token carries one.
const (
	// Patient creates quotes and books them, and reads its own.
	Patient Role = "patient"
	// Clinic acts on the quotes and bookings of its own clinic.
	Clinic Role = "clinic"
	// Finance reads the finance API.
	Finance Role = "finance"
	// Admin administers the catalog and reads the audit log.
	Admin Role = "admin"
	// Service is another of the platform's services.
	Service Role = "service"
)

// Roles lists every role.
var Roles = []Role{Patient, Clinic, Finance, Admin, Service}

// Principal is a verified caller.
type Principal struct {
	// Subject is the token's sub: the patient's or staff member's id at the
	// issuer, or the service's client id.
	Subject string
	Role    Role
	// ClinicID is set for role clinic: the only clinic it may act for.
	ClinicID string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext is the verified caller of the request ctx belongs to.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Default claims carrying the role and the clinic. Custom claims are
// namespaced with a URL, as Auth0 requires; see docs/identity.md for each
// provider's mapping.
const (
	DefaultRoleClaim   = "https://saisei.health/role"
	DefaultClinicClaim = "https://saisei.health/clinic_id"
)

// Config says which issuer to trust and where the role and clinic are.
type Config struct {
	// IssuerURL is the OpenID Connect issuer; its discovery document is
	// IssuerURL + "/.well-known/openid-configuration".
	IssuerURL string
	// Audience is what tokens must be issued for (the API's identifier).
	Audience string
	// RoleClaim and ClinicClaim name the claims carrying the role (a string,
	// or an array whose first known role counts) and the clinic id.
	RoleClaim   string
	ClinicClaim string
	// ClientID and ClientSecret are this service's own credentials, for
	// the client credentials tokens it calls other services with.
	ClientID     string
	ClientSecret string
}

// ConfigFromEnv reads OIDC_ISSUER_URL, OIDC_AUDIENCE, OIDC_ROLE_CLAIM,
// OIDC_CLINIC_CLAIM, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET.
func ConfigFromEnv() Config {
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	return Config{
		IssuerURL:    os.Getenv("OIDC_ISSUER_URL"),
		Audience:     env("OIDC_AUDIENCE", "https://api.saisei.health"),
		RoleClaim:    env("OIDC_ROLE_CLAIM", DefaultRoleClaim),
		ClinicClaim:  env("OIDC_CLINIC_CLAIM", DefaultClinicClaim),
		ClientID:     os.Getenv("OIDC_CLIENT_ID"),
		ClientSecret: os.Getenv("OIDC_CLIENT_SECRET"),
	}
}

func (c Config) withDefaults() Config {
	if c.RoleClaim == "" {
		c.RoleClaim = DefaultRoleClaim
	}
	if c.ClinicClaim == "" {
		c.ClinicClaim = DefaultClinicClaim
	}
	return c
}

// Verifier checks bearer tokens.
type Verifier struct {
	cfg      Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// verified remembers tokens that verified, by their SHA-256, so a
	// token presented again (a patient's next request, a service's token
	// on every call to another) is not checked against its signature
	// again: a P-256 verification was a tenth of a service's CPU under
	// load. An entry lasts verifiedFor at most, and never past the
	// token's own expiry; tokens that fail are not remembered.
	verified *expirable.LRU[[sha256.Size]byte, verifiedToken]
	now      func() time.Time
}

type verifiedToken struct {
	principal Principal
	expiry    time.Time
}

// verifiedFor bounds how long a verified token is taken on trust: a
// signing key the issuer withdraws stops being honoured within it.
const verifiedFor = time.Minute

// verifiedTokens bounds the cache: 4,096 entries of about 100 bytes.
const verifiedTokens = 4096

// ErrNotConfigured means no issuer was configured: the platform refuses to
// start rather than serve without identity.
var ErrNotConfigured = errors.New("identity: OIDC_ISSUER_URL is not set")

// NewVerifier reads the issuer's discovery document (retrying until ctx is
// done, since the issuer may start at the same moment) and returns a
// verifier for tokens issued to cfg.Audience. Signing keys are fetched from
// the JWKS and fetched again when a token names a key not seen yet, so the
// issuer can rotate them.
func NewVerifier(ctx context.Context, cfg Config, client *http.Client) (*Verifier, error) {
	cfg = cfg.withDefaults()
	if cfg.IssuerURL == "" {
		return nil, ErrNotConfigured
	}
	if cfg.Audience == "" {
		return nil, errors.New("identity: OIDC_AUDIENCE is not set")
	}
	if client != nil {
		ctx = oidc.ClientContext(ctx, client)
	}
	var provider *oidc.Provider
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		if provider, err = oidc.NewProvider(ctx, cfg.IssuerURL); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("identity: discovery at %s: %w", cfg.IssuerURL, err)
		case <-time.After(wait):
		}
	}
	// The key set must outlive ctx (it refetches keys on rotation), so it
	// gets a context of its own with the same HTTP client.
	keyCtx := context.Background()
	if client != nil {
		keyCtx = oidc.ClientContext(keyCtx, client)
	}
	v := &Verifier{cfg: cfg, provider: provider,
		verified: expirable.NewLRU[[sha256.Size]byte, verifiedToken](verifiedTokens, nil, verifiedFor),
		now:      time.Now,
	}
	v.verifier = provider.VerifierContext(keyCtx, &oidc.Config{ClientID: cfg.Audience,
		SupportedSigningAlgs: []string{oidc.ES256, oidc.RS256, oidc.PS256, oidc.ES384, oidc.EdDSA},
		Now:                  func() time.Time { return v.now() }})
	return v, nil
}

// Config is the verifier's configuration.
func (v *Verifier) Config() Config { return v.cfg }

// TokenURL is the issuer's token endpoint, from its discovery document.
func (v *Verifier) TokenURL() string { return v.provider.Endpoint().TokenURL }

// ErrInvalidToken means a token was presented but does not verify, or
// carries no usable role.
var ErrInvalidToken = errors.New("invalid token")

// Verify checks a raw bearer token and reads its caller. A token verified
// in the last minute and not yet expired is answered from memory.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	key := sha256.Sum256([]byte(raw))
	if hit, ok := v.verified.Get(key); ok {
		if v.now().Before(hit.expiry) {
			return hit.principal, nil
		}
		v.verified.Remove(key)
	}
	p, expiry, err := v.verify(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	v.verified.Add(key, verifiedToken{principal: p, expiry: expiry})
	return p, nil
}

// verify checks raw's signature, issuer, audience and expiry, and reads
// its caller and when it expires.
func (v *Verifier) verify(ctx context.Context, raw string) (Principal, time.Time, error) {
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	p := Principal{Subject: tok.Subject, Role: roleOf(claims[v.cfg.RoleClaim])}
	p.ClinicID, _ = claims[v.cfg.ClinicClaim].(string)
	switch {
	case p.Subject == "":
		return Principal{}, time.Time{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	case p.Role == "":
		return Principal{}, time.Time{}, fmt.Errorf("%w: no known role in claim %s", ErrInvalidToken, v.cfg.RoleClaim)
	case p.Role == Clinic && p.ClinicID == "":
		return Principal{}, time.Time{}, fmt.Errorf("%w: a clinic token without claim %s", ErrInvalidToken, v.cfg.ClinicClaim)
	}
	return p, tok.Expiry, nil
}

// roleOf reads a role claim: a string, or an array (Entra ID's roles, a
// Keycloak mapper) whose first known role counts.
func roleOf(claim any) Role {
	switch c := claim.(type) {
	case string:
		if slices.Contains(Roles, Role(c)) {
			return Role(c)
		}
	case []any:
		for _, x := range c {
			if s, ok := x.(string); ok && slices.Contains(Roles, Role(s)) {
				return Role(s)
			}
		}
	}
	return ""
}

// bearer reads the token of an Authorization header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}
