package shred

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// An encrypted field is stored as one JSON string, the envelope:
//
//	"strata:enc:v1:" KIND ":" base64url(nonce || AES-256-GCM ciphertext+tag)
//
// KIND is "s" for a string field and "j" for any other value (a time, a number, an object); it
// says which redaction marker replaces the value once the key is erased: Redacted or null. The clear text is the
// value's JSON encoding. The associated data binds the ciphertext to its place:
//
//	"strata:field:v1" 0x00 event-ID(16 bytes) event-type 0x00 field-path 0x00 subject
//
// so that a ciphertext copied into another event, field or subject fails to decrypt.
const envelopePrefix = "strata:enc:v1:"

// Redacted is the value a sensitive string field reads as once its subject is erased. Other
// erased values read as JSON null.
const Redacted = "[redacted]"

var (
	redactedString = []byte(`"` + Redacted + `"`)
	redactedOther  = []byte(`null`)
)

// ErrEnvelope is wrapped by errors for a stored value that looks like an envelope but is not a
// well-formed one.
var ErrEnvelope = errors.New("malformed encrypted field")

// ErrTampered is wrapped by the error for ciphertext that fails authentication: it was changed,
// or moved to another event, field or subject.
var ErrTampered = errors.New("encrypted field fails authentication (tampered or moved)")

// envelope is a parsed envelope.
type envelope struct {
	kind  byte // 's' or 'j'
	nonce []byte
	box   []byte // ciphertext and tag
}

// isEnvelope reports whether raw is a JSON string token that starts like an envelope.
func isEnvelope(raw []byte) bool {
	return len(raw) > len(envelopePrefix)+1 && raw[0] == '"' && bytes.HasPrefix(raw[1:], []byte(envelopePrefix))
}

// parseEnvelope parses a JSON string token holding an envelope.
func parseEnvelope(raw []byte) (envelope, error) {
	if !isEnvelope(raw) || raw[len(raw)-1] != '"' {
		return envelope{}, ErrEnvelope
	}
	body := raw[1+len(envelopePrefix) : len(raw)-1]
	if len(body) < 3 || body[1] != ':' || (body[0] != 's' && body[0] != 'j') {
		return envelope{}, fmt.Errorf("%w: unknown kind", ErrEnvelope)
	}
	b := make([]byte, base64.RawURLEncoding.DecodedLen(len(body)-2))
	n, err := base64.RawURLEncoding.Decode(b, body[2:])
	if err != nil {
		return envelope{}, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	b = b[:n]
	const nonceSize, tagSize = 12, 16
	if len(b) < nonceSize+tagSize {
		return envelope{}, fmt.Errorf("%w: too short", ErrEnvelope)
	}
	return envelope{kind: body[0], nonce: b[:nonceSize], box: b[nonceSize:]}, nil
}

// format returns the envelope as a JSON string token.
func (e envelope) format() []byte {
	b := make([]byte, 0, len(e.nonce)+len(e.box))
	b = append(append(b, e.nonce...), e.box...)
	enc := base64.RawURLEncoding.EncodeToString(b)
	out := make([]byte, 0, len(envelopePrefix)+len(enc)+5)
	out = append(out, '"')
	out = append(out, envelopePrefix...)
	out = append(out, e.kind, ':')
	out = append(out, enc...)
	return append(out, '"')
}

// fieldAD is the associated data of a field's ciphertext.
// keys is the field's path as rewrite passes it; dst, if it has room, is reused.
func fieldAD(dst []byte, id uuid.UUID, typ string, keys [][]byte, subject string) []byte {
	ad := append(dst[:0], "strata:field:v1\x00"...)
	ad = append(ad, id[:]...)
	ad = append(ad, typ...)
	ad = append(ad, 0)
	for i, k := range keys {
		if i > 0 {
			ad = append(ad, '.')
		}
		ad = append(ad, k...)
	}
	ad = append(ad, 0)
	return append(ad, subject...)
}

// seal encrypts the JSON value raw. kind is 's' or 'j' (see envelope), or 0 to take 's' for a
// JSON string and 'j' for anything else. It builds the envelope in one allocation.
func seal(aead cipher.AEAD, kind byte, raw, ad []byte) ([]byte, error) {
	if kind == 0 {
		kind = 'j'
		if len(raw) > 0 && raw[0] == '"' {
			kind = 's'
		}
	}
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	boxLen := len(nonce) + len(raw) + aead.Overhead()
	head := len(envelopePrefix) + 3 // quote, prefix, kind, colon
	out := make([]byte, head+base64.RawURLEncoding.EncodedLen(boxLen)+1+boxLen)
	// The sealed box goes at the end of out, is encoded into the middle, and is cut off.
	box := append(append(out[len(out)-boxLen:len(out)-boxLen], nonce[:]...), raw...)
	box = aead.Seal(box[:len(nonce)], nonce[:], box[len(nonce):], ad)
	out[0] = '"'
	copy(out[1:], envelopePrefix)
	out[head-2], out[head-1] = kind, ':'
	n := base64.RawURLEncoding.EncodedLen(boxLen)
	base64.RawURLEncoding.Encode(out[head:head+n], box)
	out[head+n] = '"'
	return out[:head+n+1], nil
}

// open decrypts an envelope into the JSON value it holds, in place.
func open(aead cipher.AEAD, e envelope, ad []byte) ([]byte, error) {
	clear, err := aead.Open(e.box[:0], e.nonce, e.box, ad)
	if err != nil {
		return nil, ErrTampered
	}
	return clear, nil
}

// redaction returns the marker for an erased envelope.
func (e envelope) redaction() []byte {
	if e.kind == 's' {
		return redactedString
	}
	return redactedOther
}

// newAEAD returns AES-256-GCM under key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("a key of %d bytes; AES-256 needs 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
