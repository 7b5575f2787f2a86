package shred

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/strata-events/strata"
)

// ErrWrongKEK is wrapped by the error for a data key that the configured key-encryption keys
// cannot unwrap: the key file or variable is missing, wrong, or from another installation.
var ErrWrongKEK = errors.New("the key-encryption key cannot unwrap this data key")

// KeyProvider wraps and unwraps subjects' data keys with key-encryption keys (KEKs). The default
// is a local AES-256 key from a file or an environment variable (LocalKEK); a KMS implements the
// same three methods. Wrapping binds the data key to its subject.
type KeyProvider interface {
	// KEK names the key that Wrap uses now; it is stored with every data key it wraps.
	KEK() string
	// Wrap encrypts a data key of subject under the current KEK.
	Wrap(ctx context.Context, subject string, dek []byte) ([]byte, error)
	// Unwrap decrypts a data key of subject that the KEK named kek wrapped. It returns an error
	// wrapping ErrWrongKEK when it does not hold that KEK or the key does not open.
	Unwrap(ctx context.Context, kek, subject string, wrapped []byte) ([]byte, error)
}

// LocalKEK is a key-encryption key held by the process: 32 random bytes, from a file or an
// environment variable. Its name is derived from the key ("local:" and 16 hex digits of its
// SHA-256), so that a wrong key is told apart from a right one at once.
type LocalKEK struct {
	name string
	aead cipher.AEAD
}

// NewLocalKEK returns a KEK for a 32-byte key.
func NewLocalKEK(key []byte) (*LocalKEK, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "shred kek", "%w", err)
	}
	sum := sha256.Sum256(append([]byte("strata:kek-name:v1\x00"), key...))
	return &LocalKEK{name: "local:" + hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// GenerateKEK returns a new random key, hex-encoded, for a key file or STRATA_KEK.
func GenerateKEK() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return hex.EncodeToString(key), nil
}

// ParseKEK reads a key written by GenerateKEK: 64 hex digits, surrounding space ignored.
func ParseKEK(text string) (*LocalKEK, error) {
	key, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != 32 {
		return nil, strata.Errorf(strata.Invalid, "shred kek", "a key-encryption key is 64 hex digits (32 bytes); generate one with strata keys generate-kek")
	}
	return NewLocalKEK(key)
}

// KEKFromFile reads a key file written by GenerateKEK.
func KEKFromFile(path string) (*LocalKEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "shred kek", "read key-encryption key: %w", err)
	}
	return ParseKEK(string(b))
}

// KEK implements KeyProvider.
func (k *LocalKEK) KEK() string { return k.name }

func wrapAD(subject string) []byte { return append([]byte("strata:dek:v1\x00"), subject...) }

// Wrap implements KeyProvider.
func (k *LocalKEK) Wrap(_ context.Context, subject string, dek []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, dek, wrapAD(subject)), nil
}

// Unwrap implements KeyProvider.
func (k *LocalKEK) Unwrap(_ context.Context, kek, subject string, wrapped []byte) ([]byte, error) {
	if kek != k.name {
		return nil, fmt.Errorf("%w: it was wrapped by %s, this process holds %s", ErrWrongKEK, kek, k.name)
	}
	n := k.aead.NonceSize()
	if len(wrapped) < n {
		return nil, fmt.Errorf("%w: the wrapped key is %d bytes", ErrWrongKEK, len(wrapped))
	}
	dek, err := k.aead.Open(nil, wrapped[:n], wrapped[n:], wrapAD(subject))
	if err != nil {
		return nil, fmt.Errorf("%w: it does not authenticate under %s", ErrWrongKEK, k.name)
	}
	return dek, nil
}

// Keyring is a KeyProvider with one current KEK and older ones that still unwrap: the state
// during a rotation, until RotateKEK has re-wrapped every data key.
type Keyring struct {
	current KeyProvider
	older   []KeyProvider
}

// NewKeyring returns a keyring that wraps with current and unwraps with current or any older.
func NewKeyring(current KeyProvider, older ...KeyProvider) *Keyring {
	return &Keyring{current: current, older: older}
}

// KEK implements KeyProvider.
func (r *Keyring) KEK() string { return r.current.KEK() }

// Wrap implements KeyProvider.
func (r *Keyring) Wrap(ctx context.Context, subject string, dek []byte) ([]byte, error) {
	return r.current.Wrap(ctx, subject, dek)
}

// Unwrap implements KeyProvider.
func (r *Keyring) Unwrap(ctx context.Context, kek, subject string, wrapped []byte) ([]byte, error) {
	var names []string
	for _, p := range append([]KeyProvider{r.current}, r.older...) {
		if p.KEK() == kek {
			return p.Unwrap(ctx, kek, subject, wrapped)
		}
		names = append(names, p.KEK())
	}
	return nil, fmt.Errorf("%w: it was wrapped by %s, this process holds %s", ErrWrongKEK, kek, strings.Join(names, ", "))
}

// zero overwrites a key in memory once it is not needed.
func zero(b []byte) { clear(b) }
