package strata

import (
	"fmt"
	"strings"
	"time"
)

// Limits of [KeyStore] and [SchemaStore], the same on every backend.
const (
	// MaxSubjectLen is the longest subject ID, in bytes of UTF-8.
	MaxSubjectLen = 255
	// MaxKEKNameLen is the longest name of a key-encryption key, in bytes of UTF-8.
	MaxKEKNameLen = 255
	// MaxWrappedKeyLen is the largest wrapped data key, in bytes.
	MaxWrappedKeyLen = 4096
	// DefaultSubjectKeyLimit is the page size of [KeyStore.ListSubjectKeys] for a limit of 0
	// or less.
	DefaultSubjectKeyLimit = 1000
	// MaxSchemaPaths is the most sensitive paths of one [EventSchema].
	MaxSchemaPaths = 64
	// MaxSchemaPathLen is the longest JSON path of an [EventSchema], in bytes of UTF-8.
	MaxSchemaPathLen = 255
)

// ValidateSubject returns an Invalid error unless subject is non-empty, valid UTF-8, at most
// MaxSubjectLen bytes, and free of control characters. Backends call it in every [KeyStore]
// method that takes a subject.
func ValidateSubject(op, subject string) error {
	if err := validateName("subject", subject, MaxSubjectLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateKEKName returns an Invalid error unless name is non-empty, valid UTF-8, at most
// MaxKEKNameLen bytes, and free of control characters.
func ValidateKEKName(op, name string) error {
	if err := validateName("KEK name", name, MaxKEKNameLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateSubjectCursor returns an Invalid error unless after, the cursor of
// [KeyStore.ListSubjectKeys], is empty (list from the start) or a valid subject.
func ValidateSubjectCursor(op, after string) error {
	if after == "" {
		return nil
	}
	return ValidateSubject(op, after)
}

// SubjectKeyLimit returns the page size that [KeyStore.ListSubjectKeys] uses for limit:
// DefaultSubjectKeyLimit for 0 or less, limit otherwise.
func SubjectKeyLimit(limit int) int {
	if limit <= 0 {
		return DefaultSubjectKeyLimit
	}
	return limit
}

// PrepareSubjectKey validates a key for [KeyStore.CreateSubjectKey] and returns a copy ready to
// store: Wrapped copied, CreatedAt and ErasedAt cleared for the store to set. Subject and KEK
// must be valid (see [ValidateSubject], [ValidateKEKName]); Wrapped must hold 1 to
// MaxWrappedKeyLen bytes. Every error is Invalid, so that nothing is written for bad input.
// Backends call it first in CreateSubjectKey.
func PrepareSubjectKey(op string, k SubjectKey) (SubjectKey, error) {
	if err := ValidateSubject(op, k.Subject); err != nil {
		return SubjectKey{}, err
	}
	if err := ValidateKEKName(op, k.KEK); err != nil {
		return SubjectKey{}, err
	}
	if err := validateWrapped(k.Wrapped); err != nil {
		return SubjectKey{}, Errorf(Invalid, op, "subject %q: %w", k.Subject, err)
	}
	k.Wrapped = cloneBytes(k.Wrapped)
	k.CreatedAt, k.ErasedAt = time.Time{}, time.Time{}
	return k, nil
}

// PrepareRewrap validates the arguments of [KeyStore.RewrapSubjectKey] by the rules of
// [PrepareSubjectKey] and returns a copy of wrapped. Every error is Invalid. Backends call it
// first in RewrapSubjectKey.
func PrepareRewrap(op, subject, oldKEK, newKEK string, wrapped []byte) ([]byte, error) {
	if err := ValidateSubject(op, subject); err != nil {
		return nil, err
	}
	if err := ValidateKEKName(op, oldKEK); err != nil {
		return nil, err
	}
	if err := ValidateKEKName(op, newKEK); err != nil {
		return nil, err
	}
	if err := validateWrapped(wrapped); err != nil {
		return nil, Errorf(Invalid, op, "subject %q: %w", subject, err)
	}
	return cloneBytes(wrapped), nil
}

func validateWrapped(b []byte) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("empty wrapped key")
	case len(b) > MaxWrappedKeyLen:
		return fmt.Errorf("wrapped key is %d bytes, more than %d", len(b), MaxWrappedKeyLen)
	}
	return nil
}

// SubjectKeyNotFound returns the NotFound error of [KeyStore.SubjectKey] for a subject that has
// neither a key nor a tombstone.
func SubjectKeyNotFound(op, subject string) error {
	return Errorf(NotFound, op, "subject %q has no key", subject)
}

// PrepareEventSchema validates a schema for [SchemaStore.SetEventSchema] and returns a copy
// ready to store. Type must be a valid event type (see [ValidateEventType]); Sensitive must
// hold 1 to MaxSchemaPaths distinct paths; Subject may be empty. Each path is at most
// MaxSchemaPathLen bytes of UTF-8 without control characters, made of non-empty dot-separated
// field names. Every error is Invalid, so that nothing is written for bad input. Backends call
// it first in SetEventSchema.
func PrepareEventSchema(op string, s EventSchema) (EventSchema, error) {
	if err := ValidateEventType(op, s.Type); err != nil {
		return EventSchema{}, err
	}
	switch {
	case len(s.Sensitive) == 0:
		return EventSchema{}, Errorf(Invalid, op, "event type %q: schema lists no sensitive paths", s.Type)
	case len(s.Sensitive) > MaxSchemaPaths:
		return EventSchema{}, Errorf(Invalid, op, "event type %q: schema lists %d sensitive paths, more than %d", s.Type, len(s.Sensitive), MaxSchemaPaths)
	}
	seen := make(map[string]bool, len(s.Sensitive))
	for _, p := range s.Sensitive {
		if err := validatePath("sensitive path", p); err != nil {
			return EventSchema{}, Errorf(Invalid, op, "event type %q: %w", s.Type, err)
		}
		if seen[p] {
			return EventSchema{}, Errorf(Invalid, op, "event type %q: sensitive path %q appears twice", s.Type, p)
		}
		seen[p] = true
	}
	if s.Subject != "" {
		if err := validatePath("subject path", s.Subject); err != nil {
			return EventSchema{}, Errorf(Invalid, op, "event type %q: %w", s.Type, err)
		}
	}
	s.Sensitive = append([]string(nil), s.Sensitive...)
	return s, nil
}

func validatePath(what, p string) error {
	if err := validateName(what, p, MaxSchemaPathLen); err != nil {
		return err
	}
	for _, f := range strings.Split(p, ".") {
		if f == "" {
			return fmt.Errorf("%s %q has an empty field name", what, p)
		}
	}
	return nil
}
