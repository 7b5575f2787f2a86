package shred

import (
	"context"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"

	"github.com/google/uuid"
)

// fields encrypts or decrypts the fields of one record in a single walk of its JSON (see
// walker): each sealed or opened value is written straight into the walker's output, and the
// output's spare capacity holds the nonce, the sealed box and the associated data on the way,
// so that a record costs one allocation, whatever the number of its fields.
type fields struct {
	plan    *plan // walkSeal: which paths are sensitive
	aead    cipher.AEAD
	id      uuid.UUID
	typ     string
	subject string
	// tenant is the tenant of the record (walkOpen): with subject, it names the key.
	tenant string

	// redact (walkSeal) writes the redaction markers instead of envelopes: the subject is
	// erased (snapshots only; events of an erased subject are refused).
	redact bool
	// lookalikes (walkSeal) makes the walk refuse a value in clear that starts like an
	// envelope, as checkLookalikes does, for a caller that has not checked the document.
	lookalikes bool

	// walkOpen loads the subject's key at the first envelope, through p.
	p      *Protector
	ctx    context.Context
	loaded bool
	erased bool
	// dropErased makes an erased subject's envelope an errSnapshotErased, not a marker.
	dropErased bool

	// direct (walkOpen, DecodeInto) are the fields of dst, a struct, that the walk sets
	// itself for top-level members (see openDirect); seen has a bit for each that a member
	// walked so far names without regard to case (see candidate).
	direct []directField
	dst    reflect.Value
	seen   uint64
	// goType (walkOpen, DecodeInto) is the Go type the record decodes into: it chooses the
	// marker of an erased value (see goKindAt).
	goType reflect.Type
}

// sealFields returns data with the values f.plan marks sensitive replaced by their envelopes.
func sealFields(data []byte, f fields) ([]byte, error) {
	w := walker{data: data, mode: walkSeal, f: f, outCap: len(data) + len(data)/2 + (96+len(f.typ)+len(f.subject))*f.plan.paths()}
	return w.run()
}

// openFields returns data with every envelope replaced by the value it holds, or by its
// redaction marker when the subject is erased.
func openFields(data []byte, f fields) ([]byte, error) { return openFieldsInto(nil, data, f) }

// openFieldsInto is openFields writing into out's spare capacity, when it has room, rather than a
// new buffer; the result is then always a copy.
func openFieldsInto(out, data []byte, f fields) ([]byte, error) {
	w := walker{data: data, mode: walkOpen, f: f, out: out, outCap: len(data) + 64 + len(f.typ) + len(f.subject)}
	return w.run()
}

// seal appends the envelope of the JSON value raw, at path keys, to w.out. kind is 's' or 'j'
// (see envelope), or 0 to take 's' for a JSON string and 'j' for anything else.
func (f *fields) seal(w *walker, keys [][]byte, kind byte, raw []byte) error {
	if kind == 0 {
		kind = 'j'
		if len(raw) > 0 && raw[0] == '"' {
			kind = 's'
		}
	}
	if f.redact {
		w.out = append(w.out, envelope{kind: kind}.redaction()...)
		return nil
	}
	boxLen := nonceSize + len(raw) + f.aead.Overhead()
	head := 1 + len(envelopePrefix) + 2 // quote, prefix, kind, colon
	encLen := base64.RawURLEncoding.EncodedLen(boxLen)
	envLen := head + encLen + 1
	adLen := fieldADLen(f.typ, keys, f.subject)
	// Past the envelope, the spare capacity holds the box, then the associated data.
	out := slices.Grow(w.out, envLen+boxLen+adLen)
	l := len(out)
	full := out[:l+envLen+boxLen+adLen]
	ad := fieldAD(full[l+envLen+boxLen:l+envLen+boxLen], f.id, f.typ, keys, f.subject)
	nonce := full[l+envLen : l+envLen+nonceSize]
	if err := nonces.read(nonce); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	box := f.aead.Seal(nonce, nonce, raw, ad)
	env := full[l : l+envLen]
	env[0] = '"'
	copy(env[1:], envelopePrefix)
	env[head-2], env[head-1] = kind, ':'
	base64.RawURLEncoding.Encode(env[head:head+encLen], box)
	env[head+encLen] = '"'
	w.out = out[:l+envLen]
	return nil
}

// open appends the JSON value that the envelope raw, at path keys, holds to w.out, or its
// redaction marker when the subject is erased. Tampered or moved ciphertext is ErrTampered.
func (f *fields) open(w *walker, keys [][]byte, raw []byte) error {
	// The box is decoded where the clear text goes, decrypted in place after its nonce and moved
	// back over it; past the box, the spare capacity holds the associated data.
	body := len(raw) - len(envelopePrefix) - 4
	boxMax := base64.RawURLEncoding.DecodedLen(max(body, 0))
	adLen := fieldADLen(f.typ, keys, f.subject)
	out := slices.Grow(w.out, boxMax+adLen)
	l := len(out)
	env, err := parseEnvelopeInto(out[:l], raw)
	if err != nil {
		return err
	}
	if f.subject == "" {
		return fmt.Errorf("%w: no %q in the metadata", ErrEnvelope, MetaSubject)
	}
	if !f.loaded {
		if f.aead, f.erased, err = f.p.dataKey(f.ctx, f.tenant, f.subject, false); err != nil {
			return err
		}
		f.loaded = true
	}
	if f.erased {
		if f.dropErased {
			return errSnapshotErased
		}
		if env.kind == 's' && f.goType != nil && goKindAt(f.goType, keys) == 'j' {
			env.kind = 'j'
		}
		w.out = append(out, env.redaction()...)
		return nil
	}
	ad := fieldAD(out[l+boxMax:l+boxMax], f.id, f.typ, keys, f.subject)
	clear, err := f.aead.Open(env.box[:0], env.nonce, env.box, ad)
	if err != nil {
		return ErrTampered
	}
	w.out = out[:l+copy(out[l:l+len(clear)], clear)]
	return nil
}
