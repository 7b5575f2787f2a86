// Package eventsig signs events one by one as they are appended, so that each event carries
// proof of which key (a service, an HSM, a KMS) wrote it, independently of the ledger's signed
// checkpoints. Signing is a codec.Transform: install it after any encrypting transform, so
// that signatures cover the stored bytes (ciphertext where fields are encrypted) and survive
// erasure.
//
// The signature and its key ID travel in the event's metadata (keys sig.kid, sig.alg and sig).
// The signed message is the SHA-256 digest of
//
//	"strata:event-sig:v1" 0x00 ‖ event ID (16 bytes) ‖ u32 len(type) ‖ type ‖ u32 schema ‖
//	u64 len(data) ‖ data ‖ u32 len(meta) ‖ meta
//
// where meta is the canonical JSON of the metadata without the sig key (sig.kid and sig.alg are
// signed) and all integers are big-endian. Stream, version and times are assigned by the store
// after signing and are covered by the ledger's leaves instead.
package eventsig

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// The metadata keys of a signature.
const (
	MetaKeyID     = "sig.kid"
	MetaAlgorithm = "sig.alg"
	MetaSignature = "sig"
)

// Algorithms.
const (
	Ed25519 = "Ed25519"
	ES256   = "ES256"
)

// Errors of Verify.
var (
	ErrUnsigned   = errors.New("event is not signed")
	ErrUnknownKey = errors.New("event is signed by an unknown key")
	ErrBadSig     = errors.New("event signature does not verify")
)

// Signer signs event digests. A KMS or HSM implements it; NewEd25519 and NewES256 are built in.
type Signer interface {
	// KeyID names the key; verifiers look it up by this name.
	KeyID() string
	// Algorithm is Ed25519 or ES256.
	Algorithm() string
	// Sign signs a SHA-256 digest.
	Sign(ctx context.Context, digest []byte) ([]byte, error)
}

// Verifier checks signatures of one key.
type Verifier interface {
	KeyID() string
	Algorithm() string
	Verify(digest, sig []byte) bool
}

type ed25519Key struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// NewEd25519 returns a Signer for an Ed25519 private key.
func NewEd25519(kid string, priv ed25519.PrivateKey) Signer {
	return ed25519Key{kid: kid, priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

// Ed25519Verifier returns a Verifier for an Ed25519 public key.
func Ed25519Verifier(kid string, pub ed25519.PublicKey) Verifier {
	return ed25519Key{kid: kid, pub: pub}
}

func (k ed25519Key) KeyID() string     { return k.kid }
func (k ed25519Key) Algorithm() string { return Ed25519 }
func (k ed25519Key) Sign(_ context.Context, digest []byte) ([]byte, error) {
	return ed25519.Sign(k.priv, digest), nil
}
func (k ed25519Key) Verify(digest, sig []byte) bool { return ed25519.Verify(k.pub, digest, sig) }

type es256Key struct {
	kid  string
	priv *ecdsa.PrivateKey
	pub  *ecdsa.PublicKey
}

// NewES256 returns a Signer for an ECDSA P-256 private key (signatures in ASN.1 DER).
func NewES256(kid string, priv *ecdsa.PrivateKey) Signer {
	return es256Key{kid: kid, priv: priv, pub: &priv.PublicKey}
}

// ES256Verifier returns a Verifier for an ECDSA P-256 public key.
func ES256Verifier(kid string, pub *ecdsa.PublicKey) Verifier { return es256Key{kid: kid, pub: pub} }

func (k es256Key) KeyID() string     { return k.kid }
func (k es256Key) Algorithm() string { return ES256 }
func (k es256Key) Sign(_ context.Context, digest []byte) ([]byte, error) {
	return k.priv.Sign(rand.Reader, digest, crypto.SHA256)
}
func (k es256Key) Verify(digest, sig []byte) bool { return ecdsa.VerifyASN1(k.pub, digest, sig) }

// Transform returns the codec transform that signs every event it encodes with s. Decoding
// passes events through unchanged; use Verify to check them.
func Transform(s Signer) codec.Transform { return transform{s} }

type transform struct{ s Signer }

func (t transform) Encode(ctx context.Context, _ any, rec *codec.Record) error {
	meta := rec.Meta
	meta.Extra = maps.Clone(meta.Extra)
	if meta.Extra == nil {
		meta.Extra = map[string]string{}
	}
	delete(meta.Extra, MetaSignature)
	meta.Extra[MetaKeyID] = t.s.KeyID()
	meta.Extra[MetaAlgorithm] = t.s.Algorithm()
	d, err := digest(rec.ID, rec.Type, rec.Schema, rec.Data, meta)
	if err != nil {
		return err
	}
	sig, err := t.s.Sign(ctx, d)
	if err != nil {
		return strata.Errorf(strata.Unavailable, "sign event", "key %s: %w", t.s.KeyID(), err)
	}
	meta.Extra[MetaSignature] = base64.RawStdEncoding.EncodeToString(sig)
	rec.Meta = meta
	return nil
}

func (transform) Decode(context.Context, *codec.Record) error { return nil }

// digest computes the signed message of an event.
func digest(id uuid.UUID, typ string, schema int, data []byte, meta strata.Metadata) ([]byte, error) {
	if meta.Extra != nil {
		meta.Extra = maps.Clone(meta.Extra)
		delete(meta.Extra, MetaSignature)
	}
	m, err := meta.MarshalJSON()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte("strata:event-sig:v1\x00"))
	h.Write(id[:])
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], uint32(len(typ)))
	h.Write(n[:4])
	h.Write([]byte(typ))
	binary.BigEndian.PutUint32(n[:4], strata.Schema32(schema))
	h.Write(n[:4])
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	h.Write(n[:])
	h.Write(data)
	binary.BigEndian.PutUint32(n[:4], uint32(len(m)))
	h.Write(n[:4])
	h.Write(m)
	return h.Sum(nil), nil
}

// Verify checks the signature of a stored event against the verifiers, by key ID and
// algorithm (any of several with both may verify it). It returns the signing key's ID, or an
// error wrapping ErrUnsigned, ErrUnknownKey or ErrBadSig.
func Verify(e strata.Event, verifiers ...Verifier) (string, error) {
	kid, alg, sig64 := e.Meta.Extra[MetaKeyID], e.Meta.Extra[MetaAlgorithm], e.Meta.Extra[MetaSignature]
	if kid == "" || sig64 == "" {
		return "", fmt.Errorf("%w: %s (%s v%d)", ErrUnsigned, e.ID, e.Stream, e.Version)
	}
	// A key is named by its ID and algorithm: verifiers may share an ID across algorithms.
	var vs []Verifier
	for _, c := range verifiers {
		if c.KeyID() == kid && c.Algorithm() == alg {
			vs = append(vs, c)
		}
	}
	if len(vs) == 0 {
		return kid, fmt.Errorf("%w %q (%s): event %s (%s v%d)", ErrUnknownKey, kid, alg, e.ID, e.Stream, e.Version)
	}
	sig, err := base64.RawStdEncoding.DecodeString(sig64)
	if err != nil {
		return kid, fmt.Errorf("%w: event %s (%s v%d): %v", ErrBadSig, e.ID, e.Stream, e.Version, err)
	}
	d, err := digest(e.ID, e.Type, e.Schema, e.Data, e.Meta)
	if err != nil {
		return kid, err
	}
	for _, v := range vs {
		if v.Verify(d, sig) {
			return kid, nil
		}
	}
	return kid, fmt.Errorf("%w: event %s (%s v%d) by key %q", ErrBadSig, e.ID, e.Stream, e.Version, kid)
}
