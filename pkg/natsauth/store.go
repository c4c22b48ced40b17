package natsauth

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
)

// storedTrust is the trust chain on disk: the seeds are secrets (whoever
// holds the account seed can issue users), so the file is 0600.
type storedTrust struct {
	Operator       string `json:"operator_seed"`
	OperatorSigner string `json:"operator_signing_seed"`
	System         string `json:"system_account_seed"`
	App            string `json:"app_account_seed"`
	ClinicSigner   string `json:"clinic_signing_seed"`
}

// LoadOrCreate reads the trust chain kept at path, or creates one and keeps
// it there. It must survive restarts: JetStream keeps an account's streams
// under the account's key, and issued credentials stay valid.
func LoadOrCreate(path string) (*Trust, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t, err := New()
		if err != nil {
			return nil, err
		}
		t.path = path
		return t, t.save()
	}
	if err != nil {
		return nil, err
	}
	var st storedTrust
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	// A chain kept before the signing keys existed gets them now.
	added := false
	for seed, create := range map[*string]func() (nkeys.KeyPair, error){
		&st.OperatorSigner: nkeys.CreateOperator, &st.ClinicSigner: nkeys.CreateAccount} {
		if *seed != "" {
			continue
		}
		kp, err := create()
		if err != nil {
			return nil, err
		}
		s, _ := kp.Seed()
		*seed, added = string(s), true
	}
	keys := make([]nkeys.KeyPair, 5)
	for i, seed := range []string{st.Operator, st.OperatorSigner, st.System, st.App, st.ClinicSigner} {
		if keys[i], err = nkeys.FromSeed([]byte(seed)); err != nil {
			return nil, err
		}
	}
	t, err := fromKeys(keys[0], keys[1], keys[2], keys[3], keys[4])
	if err != nil {
		return nil, err
	}
	t.path = path
	if added {
		return t, t.save()
	}
	return t, nil
}

// save writes the chain to its path, if it has one.
func (t *Trust) save() error {
	if t.path == "" {
		return nil
	}
	seed := func(kp nkeys.KeyPair) string { s, _ := kp.Seed(); return string(s) }
	raw, err := json.MarshalIndent(storedTrust{Operator: seed(t.operator), OperatorSigner: seed(t.opSigner),
		System: seed(t.system), App: seed(t.app), ClinicSigner: seed(t.clinicSigner)}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return err
	}
	tmp := t.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, t.path)
}

// WriteCreds writes a user's credentials to path, readable by its owner only.
func WriteCreds(path string, creds []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, creds, 0o600)
}
