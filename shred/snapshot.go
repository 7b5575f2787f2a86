package shred

import (
	"bytes"
	"context"
	"errors"
	"strconv"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// Snapshots of aggregate states (package aggregate) pass the same pipeline as events: the
// Protector implements aggregate.SnapshotProtector, and a repository whose codec registry has
// it seals every snapshot it saves. A sealed snapshot is the state's JSON with each field tagged
// strata:"sensitive" replaced by its envelope, bound to the snapshot by the associated data
// (event ID: snapshotID, type: snapshotType), under the key of the subject that the state's
// strata:"subject" field names; that field stays in clear, so that loading finds the key.

// snapshotType stands for the event type in the associated data of a snapshot's fields.
const snapshotType = "strata:snapshot"

// snapshotNamespace derives the IDs of snapshots (see snapshotID).
var snapshotNamespace = uuid.NewSHA1(uuid.NameSpaceOID, []byte("strata:snapshot:v1"))

// snapshotID is the ID a snapshot's fields are bound to: a sealed field copied into another
// stream's snapshot, or into another version or schema, fails to open.
func snapshotID(s *strata.Snapshot) uuid.UUID {
	return uuid.NewSHA1(snapshotNamespace, []byte(s.Stream+"\x00"+strconv.FormatInt(s.Version, 10)+"\x00"+strconv.Itoa(s.Schema)))
}

// errSnapshotErased is returned by the walk of a snapshot that holds an erased subject's data.
var errSnapshotErased = errors.New("the snapshot holds personal data of an erased subject")

// SealSnapshot implements aggregate.SnapshotProtector: it encrypts the fields of s.Data, the
// JSON encoding of state, that state's type tags strata:"sensitive", under the key of the
// subject its strata:"subject" field names (creating the key for a new subject). A state
// without sensitive fields is left as it is. For an erased subject, the fields are written as
// their redaction markers: the snapshot of a state replayed after the erasure holds no personal
// data and needs no key.
func (p *Protector) SealSnapshot(ctx context.Context, state any, s *strata.Snapshot) error {
	const op = "shred seal snapshot"
	pl := p.typePlan(state)
	if pl != nil && pl.err != nil {
		return strata.Errorf(strata.Invalid, op, "the state %T: %w; no snapshot is saved in clear", state, pl.err)
	}
	if pl != nil && pl.dynamic {
		if err := checkValue(state); err != nil {
			return strata.Errorf(strata.Invalid, op, "the state %T: %w; no snapshot is saved in clear", state, err)
		}
	}
	if err := checkLookalikes(s.Data); err != nil {
		return strata.Errorf(strata.Invalid, op, "the state %T: %w", state, err)
	}
	if pl.empty() {
		return nil
	}
	subject := subjectOf(state, pl)
	if subject == "" {
		return strata.Errorf(strata.Invalid, op, "the state %T has sensitive fields but no data subject: tag a string field strata:\"subject\" and set it", state)
	}
	if got, ok := stringAt(s.Data, pl.subject); !ok || got != subject {
		return strata.Errorf(strata.Invalid, op, "the subject field %q of %T must be in its JSON encoding, to find the key when the snapshot is loaded", pl.subject, state)
	}
	if err := strata.ValidateStreamName(op, subject); err != nil {
		return strata.Errorf(strata.Invalid, op, "data subject %q: %w", subject, err)
	}
	tenant, err := p.streamTenant(ctx, s.Stream)
	if err != nil {
		return err
	}
	aead, erased, err := p.dataKey(ctx, tenant, subject, true)
	if err != nil {
		return err
	}
	data, err := sealFields(s.Data, fields{plan: pl, aead: aead, id: snapshotID(s), typ: snapshotType, subject: subject, redact: erased})
	if err != nil {
		return strata.Errorf(strata.Invalid, op, "state %T: %w", state, err)
	}
	s.Data = data
	return nil
}

// OpenSnapshot implements aggregate.SnapshotProtector: it decrypts the encrypted fields of s in
// place, state giving the type whose subject field names the key. It returns false when the
// subject was erased, so that the repository folds the events instead; a snapshot with no
// encrypted field (a state without personal data, or one sealed after the erasure) opens as it
// is. Tampered or moved ciphertext is an error wrapping ErrTampered.
func (p *Protector) OpenSnapshot(ctx context.Context, state any, s *strata.Snapshot) (bool, error) {
	const op = "shred open snapshot"
	if !bytes.Contains(s.Data, []byte(envelopePrefix)) {
		return true, nil
	}
	pl := p.typePlan(state)
	subject, ok := "", false
	if pl != nil && pl.subject != "" {
		subject, ok = stringAt(s.Data, pl.subject)
	}
	if !ok || subject == "" {
		return false, strata.Errorf(strata.Invalid, op, "the snapshot of %q holds encrypted fields, and the state %T names no data subject", s.Stream, state)
	}
	tenant, err := p.streamTenant(ctx, s.Stream)
	if err != nil {
		return false, err
	}
	data, err := openFields(s.Data, fields{id: snapshotID(s), typ: snapshotType, subject: subject, tenant: tenant, p: p, ctx: ctx, dropErased: true})
	switch {
	case errors.Is(err, errSnapshotErased):
		return false, nil
	case err != nil:
		var se *strata.Error
		if errors.As(err, &se) {
			return false, err
		}
		return false, strata.Errorf(strata.Invalid, op, "the snapshot of %q at version %d, subject %q: %w", s.Stream, s.Version, subject, err)
	}
	s.Data = data
	return true, nil
}
