package identity

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ServiceClient returns an HTTP client that calls other services as this
// one: every request carries a client credentials token from the issuer's
// token endpoint (cfg.ClientID and ClientSecret, for cfg.Audience), fetched
// once and renewed before it expires. base carries the trace (otelhttp)
// and the timeout.
func ServiceClient(v *Verifier, base *http.Client) (*http.Client, error) {
	cfg := v.Config()
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("identity: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed to call other services")
	}
	cc := clientcredentials.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: v.TokenURL(),
		// Auth0 and Entra ID ask for the API this way; others ignore it.
		EndpointParams: url.Values{"audience": {cfg.Audience}},
		AuthStyle:      oauth2.AuthStyleInHeader,
	}
	// Token requests use base's transport too, so they are traced and bounded.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, base)
	return &http.Client{
		Timeout:   base.Timeout,
		Transport: &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, cc.TokenSource(ctx)), Base: base.Transport},
	}, nil
}
