package natsauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ClinicIssuer issues and revokes clinics' NATS credentials while the
// platform runs, holding no identity key:
//   - the application account's clinic-scoped signing key: what it signs
//     gets exactly ClinicScope's permissions for the clinic in the user's
//     tag, whatever the user JWT claims, so a leaked issuer cannot mint a
//     service user;
//   - an operator signing key, to re-sign the application account with a
//     longer revocation list;
//   - a system-account user allowed only to look the account up and push
//     its update ($SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP,
//     $SYS.REQ.CLAIMS.UPDATE), which every server with a full resolver
//     applies at once, closing the revoked user's connections.
type ClinicIssuer struct {
	account  string
	signer   nkeys.KeyPair
	opSigner nkeys.KeyPair
	sysCreds []byte
}

// storedIssuer is a ClinicIssuer on disk (0600: it holds seeds).
type storedIssuer struct {
	Account             string `json:"account"`
	ClinicSigningSeed   string `json:"clinic_signing_seed"`
	OperatorSigningSeed string `json:"operator_signing_seed"`
	SystemCreds         string `json:"system_creds"`
}

// ClinicIssuer returns the issuer of this chain's clinic users, with a
// fresh system-account user of its own.
func (t *Trust) ClinicIssuer() (*ClinicIssuer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	appPub, _ := t.app.PublicKey()
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, _ := kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "clinic-credentials"
	uc.Pub.Allow.Add(claimsUpdateSubject, fmt.Sprintf(claimsLookupSubject, appPub))
	uc.Sub.Allow.Add("_INBOX.>")
	encoded, err := uc.Encode(t.system)
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	creds, err := jwt.FormatUserConfig(encoded, seed)
	if err != nil {
		return nil, err
	}
	return &ClinicIssuer{account: appPub, signer: t.clinicSigner, opSigner: t.opSigner, sysCreds: creds}, nil
}

const (
	claimsUpdateSubject = "$SYS.REQ.CLAIMS.UPDATE"
	claimsLookupSubject = "$SYS.REQ.ACCOUNT.%s.CLAIMS.LOOKUP"
)

// Save writes the issuer to path, readable by its owner only.
func (ci *ClinicIssuer) Save(path string) error {
	seed := func(kp nkeys.KeyPair) string { s, _ := kp.Seed(); return string(s) }
	raw, err := json.MarshalIndent(storedIssuer{Account: ci.account, ClinicSigningSeed: seed(ci.signer),
		OperatorSigningSeed: seed(ci.opSigner), SystemCreds: string(ci.sysCreds)}, "", "  ")
	if err != nil {
		return err
	}
	return WriteCreds(path, raw)
}

// LoadClinicIssuer reads an issuer written by Save.
func LoadClinicIssuer(path string) (*ClinicIssuer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st storedIssuer
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("natsauth: %s: %w", path, err)
	}
	if !nkeys.IsValidPublicAccountKey(st.Account) || st.SystemCreds == "" {
		return nil, fmt.Errorf("natsauth: %s: not a clinic issuer", path)
	}
	ci := &ClinicIssuer{account: st.Account, sysCreds: []byte(st.SystemCreds)}
	if ci.signer, err = nkeys.FromSeed([]byte(st.ClinicSigningSeed)); err != nil {
		return nil, fmt.Errorf("natsauth: %s: clinic signing key: %w", path, err)
	}
	if ci.opSigner, err = nkeys.FromSeed([]byte(st.OperatorSigningSeed)); err != nil {
		return nil, fmt.Errorf("natsauth: %s: operator signing key: %w", path, err)
	}
	return ci, nil
}

// clinicID is what a clinic id must be to name NATS subjects and a tag
// (tags are lower-cased): a slug.
var clinicID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ErrNotAUserKey means a public key given for a user is not an nkey user
// public key ("U…").
var ErrNotAUserKey = errors.New("natsauth: not a user public key")

// IssueClinic signs a user JWT for the user key userPub as clinic
// clinicID's system. The clinic keeps the seed: combined with this JWT
// (jwt.FormatUserConfig, `nsc generate creds`) it is a .creds file.
func (ci *ClinicIssuer) IssueClinic(clinicID, userPub string) (string, error) {
	if !clinicIDValid(clinicID) {
		return "", fmt.Errorf("natsauth: clinic id %q is not a slug", clinicID)
	}
	if !nkeys.IsValidPublicUserKey(userPub) {
		return "", ErrNotAUserKey
	}
	uc := jwt.NewUserClaims(userPub)
	// The scope's template is the user's whole permission set: a scoped
	// user JWT must carry none of its own, not even NewUserClaims's
	// default "no limit" limits.
	uc.UserPermissionLimits = jwt.UserPermissionLimits{}
	uc.Name = "clinic " + clinicID
	uc.Tags.Add(ClinicTag + ":" + clinicID)
	uc.IssuerAccount = ci.account
	return uc.Encode(ci.signer)
}

func clinicIDValid(id string) bool { return clinicID.MatchString(id) }

// NewClinicUser creates a user key for clinic clinicID and returns its
// credentials file and public key. The seed is in the file only: keep
// nothing else of it.
func (ci *ClinicIssuer) NewClinicUser(clinicID string) (creds []byte, pub string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	pub, _ = kp.PublicKey()
	encoded, err := ci.IssueClinic(clinicID, pub)
	if err != nil {
		return nil, "", err
	}
	seed, _ := kp.Seed()
	creds, err = jwt.FormatUserConfig(encoded, seed)
	return creds, pub, err
}

// Connect opens the system-account connection that revocations travel on.
func (ci *ClinicIssuer) Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	userJWT, err := jwt.ParseDecoratedJWT(ci.sysCreds)
	if err != nil {
		return nil, err
	}
	kp, err := jwt.ParseDecoratedNKey(ci.sysCreds)
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	opts = append([]nats.Option{nats.Name("clinic-credentials"), nats.UserJWTAndSeed(userJWT, string(seed)),
		nats.MaxReconnects(-1)}, opts...)
	return nats.Connect(url, opts...)
}

// Revoke makes the application account revoke each user in revoked
// (public key → revoked when: the user's JWTs issued up to then are
// refused). It reads the account's current JWT from the servers, adds what
// is missing, re-signs it with the operator signing key and pushes it;
// servers close the revoked users' connections at once. Revocations are
// only ever added, so a caller may pass all it knows each time. It
// reports whether the account changed. Callers serialize calls: two
// concurrent updates may each miss the other's revocations.
func (ci *ClinicIssuer) Revoke(ctx context.Context, nc *nats.Conn, revoked map[string]time.Time) (bool, error) {
	msg, err := nc.RequestWithContext(ctx, fmt.Sprintf(claimsLookupSubject, ci.account), nil)
	if err != nil {
		return false, fmt.Errorf("natsauth: look up the account: %w", err)
	}
	ac, err := jwt.DecodeAccountClaims(string(msg.Data))
	if err != nil {
		return false, fmt.Errorf("natsauth: the account's JWT: %w", err)
	}
	if ac.Subject != ci.account {
		return false, fmt.Errorf("natsauth: the lookup answered account %s", ac.Subject)
	}
	changed := false
	for user, at := range revoked {
		if ac.Revocations[user] < at.Unix() {
			ac.RevokeAt(user, at)
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	encoded, err := ac.Encode(ci.opSigner)
	if err != nil {
		return false, err
	}
	reply, err := nc.RequestWithContext(ctx, claimsUpdateSubject, []byte(encoded))
	if err != nil {
		return false, fmt.Errorf("natsauth: push the account: %w", err)
	}
	var answer struct {
		Data *struct {
			Code int `json:"code"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &answer); err != nil {
		return false, fmt.Errorf("natsauth: the update's answer: %w", err)
	}
	if answer.Error != nil {
		return false, fmt.Errorf("natsauth: the server refused the account update: %d %s", answer.Error.Code, answer.Error.Description)
	}
	if answer.Data == nil || answer.Data.Code != 200 {
		return false, fmt.Errorf("natsauth: unexpected answer to the account update: %s", reply.Data)
	}
	return true, nil
}
