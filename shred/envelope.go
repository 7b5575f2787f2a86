package shred

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
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
func parseEnvelope(raw []byte) (envelope, error) { return parseEnvelopeInto(nil, raw) }

// parseEnvelopeInto is parseEnvelope decoding the nonce and the sealed box into dst's spare
// capacity when it has room (else into a new buffer).
func parseEnvelopeInto(dst, raw []byte) (envelope, error) {
	if !isEnvelope(raw) || raw[len(raw)-1] != '"' {
		return envelope{}, ErrEnvelope
	}
	body := raw[1+len(envelopePrefix) : len(raw)-1]
	if len(body) < 3 || body[1] != ':' || (body[0] != 's' && body[0] != 'j') {
		return envelope{}, fmt.Errorf("%w: unknown kind", ErrEnvelope)
	}
	need := base64.RawURLEncoding.DecodedLen(len(body) - 2)
	var b []byte
	if cap(dst)-len(dst) >= need {
		b = dst[len(dst) : len(dst)+need]
	} else {
		b = make([]byte, need)
	}
	n, err := base64.RawURLEncoding.Decode(b, body[2:])
	if err != nil {
		return envelope{}, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	b = b[:n]
	if len(b) < nonceSize+tagSize {
		return envelope{}, fmt.Errorf("%w: too short", ErrEnvelope)
	}
	return envelope{kind: body[0], nonce: b[:nonceSize:nonceSize], box: b[nonceSize:]}, nil
}

// The sizes of an AES-GCM nonce and tag.
const nonceSize, tagSize = 12, 16

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

// fieldAD appends the associated data of a field's ciphertext to dst.
// keys is the field's path as the walker passes it.
func fieldAD(dst []byte, id uuid.UUID, typ string, keys [][]byte, subject string) []byte {
	ad := append(dst, "strata:field:v1\x00"...)
	ad = append(ad, id[:]...)
	ad = append(ad, typ...)
	ad = append(ad, 0)
	ad = appendPath(ad, keys)
	ad = append(ad, 0)
	return append(ad, subject...)
}

// fieldADLen is the length of fieldAD's result.
func fieldADLen(typ string, keys [][]byte, subject string) int {
	n := len("strata:field:v1\x00") + 16 + len(typ) + 1 + len(subject) + 1 + max(len(keys)-1, 0)
	for _, k := range keys {
		n += len(k)
	}
	return n
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
