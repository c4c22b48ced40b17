// Package sealed encrypts health information at rest (screening answers,
// eligibility reasons) with envelope encryption through Tink: every value
// gets a fresh AES-256-GCM data key, which is wrapped by the configured key
// encryption keyset and stored beside the ciphertext. Tink prefixes every
// wrapped key with the id of the keyset key that wrapped it, so adding a
// new primary key to the keyset rotates keys without rewriting old rows:
// they still open with the old key, kept in the keyset until no row uses
// it (docs/identity.md has the procedure).
package sealed

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Box seals and opens values.
type Box struct{ envelope tink.AEAD }

// ErrNoKeyset means no key was configured: a service that stores health
// information does not start without one.
var ErrNoKeyset = errors.New("sealed: no keyset configured (DATA_KEYSET)")

// FromJSON reads a Tink keyset in its JSON form: the key encryption keys.
// In production the keyset comes from a secret manager; docs/identity.md
// says how to make and rotate one.
func FromJSON(keysetJSON string) (*Box, error) {
	if keysetJSON == "" {
		return nil, ErrNoKeyset
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewBufferString(keysetJSON)))
	if err != nil {
		return nil, fmt.Errorf("sealed: read keyset: %w", err)
	}
	kek, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("sealed: keyset is not an AEAD keyset: %w", err)
	}
	return &Box{envelope: aead.NewKMSEnvelopeAEAD2(aead.AES256GCMKeyTemplate(), kek)}, nil
}

// NewKeysetJSON makes a keyset with one AES-256-GCM key, for make run and
// the tests (and as the first keyset of a deployment).
func NewKeysetJSON() (string, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", err
	}
	return write(h)
}

// RotateJSON adds a new key to a keyset and makes it the primary: new values
// are sealed with it, old ones still open.
func RotateJSON(keysetJSON string) (string, error) {
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewBufferString(keysetJSON)))
	if err != nil {
		return "", err
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", err
	}
	if err := m.SetPrimary(id); err != nil {
		return "", err
	}
	rotated, err := m.Handle()
	if err != nil {
		return "", err
	}
	return write(rotated)
}

func write(h *keyset.Handle) (string, error) {
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Seal encrypts plaintext, bound to context (e.g. the record's id and
// field): a sealed value moved to another record does not open.
func (b *Box) Seal(plaintext []byte, context string) ([]byte, error) {
	return b.envelope.Encrypt(plaintext, []byte(context))
}

// Open decrypts what Seal sealed for the same context.
func (b *Box) Open(ciphertext []byte, context string) ([]byte, error) {
	p, err := b.envelope.Decrypt(ciphertext, []byte(context))
	if err != nil {
		return nil, fmt.Errorf("sealed: open: %w", err)
	}
	return p, nil
}
