package natsauth

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nkeys"
)

// storedTrust is the trust chain on disk: the seeds are secrets (whoever
// holds the account seed can issue users), so the file is 0600.
type storedTrust struct {
	Operator string               `json:"operator_seed"`
	System   string               `json:"system_account_seed"`
	App      string               `json:"app_account_seed"`
	Revoked  map[string]time.Time `json:"revoked,omitempty"`
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
	keys := make([]nkeys.KeyPair, 3)
	for i, seed := range []string{st.Operator, st.System, st.App} {
		if keys[i], err = nkeys.FromSeed([]byte(seed)); err != nil {
			return nil, err
		}
	}
	t, err := fromKeys(keys[0], keys[1], keys[2], st.Revoked)
	if err != nil {
		return nil, err
	}
	t.path = path
	return t, nil
}

// save writes the chain to its path, if it has one.
func (t *Trust) save() error {
	if t.path == "" {
		return nil
	}
	seed := func(kp nkeys.KeyPair) string { s, _ := kp.Seed(); return string(s) }
	raw, err := json.MarshalIndent(storedTrust{Operator: seed(t.operator), System: seed(t.system), App: seed(t.app),
		Revoked: t.revoked}, "", "  ")
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
