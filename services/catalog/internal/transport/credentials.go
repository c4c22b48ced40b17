package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/saisei-health/platform/pkg/httpkit"
	"github.com/saisei-health/platform/services/catalog/internal/service"
	"github.com/saisei-health/platform/services/catalog/internal/store"
)

// CredentialEndpoints are the operators' administration of clinics' NATS
// credentials.
type CredentialEndpoints struct {
	Issue, List, Revoke endpoint.Endpoint
}

// MakeCredentialEndpoints wires n into endpoints.
func MakeCredentialEndpoints(n *service.NATSCredentials) CredentialEndpoints {
	return CredentialEndpoints{
		Issue: func(ctx context.Context, r any) (any, error) {
			req := r.(credentialRequest)
			c, err := n.Issue(ctx, req.clinicID, req.body.PublicKey)
			if err != nil {
				return nil, err
			}
			return created{issuedView{credentialView: viewOfCredential(c.NATSCredential), JWT: c.JWT, Creds: string(c.Creds)}}, nil
		},
		List: func(ctx context.Context, r any) (any, error) {
			list, err := n.List(ctx, r.(credentialRequest).clinicID)
			if err != nil {
				return nil, err
			}
			out := credentialList{Items: make([]credentialView, 0, len(list))}
			for _, c := range list {
				out.Items = append(out.Items, viewOfCredential(c))
			}
			return out, nil
		},
		Revoke: func(ctx context.Context, r any) (any, error) {
			req := r.(credentialRequest)
			c, err := n.Revoke(ctx, req.clinicID, req.id)
			if err != nil {
				return nil, err
			}
			return viewOfCredential(c), nil
		},
	}
}

// credentialView is a credential as operators see it: never a seed.
type credentialView struct {
	ID        string     `json:"id"`
	ClinicID  string     `json:"clinic_id"`
	PublicKey string     `json:"public_key"`
	Status    string     `json:"status"`
	IssuedAt  time.Time  `json:"issued_at"`
	IssuedBy  string     `json:"issued_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

func viewOfCredential(c store.NATSCredential) credentialView {
	status := "active"
	if c.RevokedAt != nil {
		status = "revoked"
	}
	return credentialView{ID: c.ID, ClinicID: c.ClinicID, PublicKey: c.PublicKey, Status: status, IssuedAt: c.IssuedAt,
		IssuedBy: c.IssuedBy, RevokedAt: c.RevokedAt, RevokedBy: c.RevokedBy}
}

// issuedView adds what is shown once, at issue: the user JWT and, when
// the platform made the key, the whole credentials file.
type issuedView struct {
	credentialView
	JWT   string `json:"jwt"`
	Creds string `json:"creds,omitempty"`
}

type credentialList struct {
	Items []credentialView `json:"items"`
}

type credentialRequest struct {
	clinicID, id string
	body         struct {
		PublicKey string `json:"public_key"`
	}
}

func decodeCredential(_ context.Context, r *http.Request) (any, error) {
	req := credentialRequest{clinicID: r.PathValue("id"), id: r.PathValue("credential_id")}
	// The body is optional: none asks the platform to make the key.
	if r.Method == http.MethodPost && r.PathValue("credential_id") == "" && r.ContentLength != 0 {
		if err := httpkit.DecodeJSON(r, &req.body); err != nil {
			return nil, err
		}
	}
	return req, nil
}
