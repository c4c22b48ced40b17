package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/saisei-health/platform/pkg/identity"
	"github.com/saisei-health/platform/pkg/identity/devissuer"
	"github.com/saisei-health/platform/pkg/natsauth"
)

// issueClinicCreds gets NATS credentials for every seeded clinic that has
// no usable file in dir yet from the admin API, as an operator would
// (POST /v1/admin/clinics/{id}/nats-credentials), and writes
// <clinic_id>.creds: a clinic developer's file stays valid across runs,
// and is listed and revocable through the API like any other.
func issueClinicCreds(ctx context.Context, dev *devissuer.Issuer, dir string) error {
	raw, err := os.ReadFile(filepath.Join("services", "catalog", "internal", "seed", "catalog.json"))
	if err != nil {
		return fmt.Errorf("the seeded clinics: %w", err)
	}
	var seed struct {
		Clinics []struct {
			ID string `json:"id"`
		} `json:"clinics"`
	}
	if err := json.Unmarshal(raw, &seed); err != nil {
		return err
	}
	var token string
	for _, c := range seed.Clinics {
		path := filepath.Join(dir, c.ID+".creds")
		if issuedOnLine(path) {
			continue
		}
		if token == "" {
			if token, _, err = dev.Mint(identity.Principal{Subject: "make-run", Role: identity.Admin}, time.Minute); err != nil {
				return err
			}
		}
		creds, err := requestClinicCreds(ctx, token, c.ID)
		if err != nil {
			return err
		}
		if err := natsauth.WriteCreds(path, creds); err != nil {
			return err
		}
	}
	return nil
}

// issuedOnLine reports whether path holds credentials the admin API
// issued: signed by the clinics' scoped key, which names the account it
// signs for. Files from before the API (signed by the account itself) are
// replaced.
func issuedOnLine(path string) bool {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	token, err := jwt.ParseDecoratedJWT(raw)
	if err != nil {
		return false
	}
	uc, err := jwt.DecodeUserClaims(token)
	return err == nil && uc.IssuerAccount != ""
}

func requestClinicCreds(ctx context.Context, token, clinicID string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
		gatewayURL()+"/v1/admin/clinics/"+url.PathEscape(clinicID)+"/nats-credentials", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Creds string `json:"creds"`
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("POST /v1/admin/clinics/%s/nats-credentials: %s", clinicID, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Creds == "" {
		return nil, fmt.Errorf("POST /v1/admin/clinics/%s/nats-credentials: no creds (%v)", clinicID, err)
	}
	return []byte(out.Creds), nil
}
