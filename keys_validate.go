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
	// MaxKeyTenantLen is the longest tenant of a [SubjectKey], in bytes of UTF-8.
	MaxKeyTenantLen = 255
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
		return &Error{Code: Invalid, Op: op, Msg: err.Error()}
	}
	return nil
}

// ValidateKEKName returns an Invalid error unless name is non-empty, valid UTF-8, at most
// MaxKEKNameLen bytes, and free of control characters.
func ValidateKEKName(op, name string) error {
	if err := validateName("KEK name", name, MaxKEKNameLen); err != nil {
		return &Error{Code: Invalid, Op: op, Msg: err.Error()}
	}
	return nil
}

// ValidateKeyTenant returns an Invalid error unless tenant, the tenant of a [SubjectKey], is
// "" (events without a tenant) or non-empty, valid UTF-8, at most MaxKeyTenantLen bytes, and
// free of control characters. Backends call it in every [KeyStore] method that takes a tenant.
func ValidateKeyTenant(op, tenant string) error {
	if tenant == "" {
		return nil
	}
	if err := validateName("tenant", tenant, MaxKeyTenantLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateKeyRef validates the tenant and the subject that name a key (see [ValidateKeyTenant]
// and [ValidateSubject]).
func ValidateKeyRef(op, tenant, subject string) error {
	if err := ValidateKeyTenant(op, tenant); err != nil {
		return err
	}
	return ValidateSubject(op, subject)
}

// ValidateSubjectCursor returns an Invalid error unless after, the cursor of
// [KeyStore.ListSubjectKeys], has an empty or valid Subject and an empty or valid Tenant. The
// zero SubjectKey lists from the start.
func ValidateSubjectCursor(op string, after SubjectKey) error {
	if err := ValidateKeyTenant(op, after.Tenant); err != nil {
		return err
	}
	if after.Subject == "" {
		return nil
	}
	return ValidateSubject(op, after.Subject)
}

// SubjectKeyAfter reports whether k comes after the cursor after in the order of
// [KeyStore.ListSubjectKeys]: (Subject, Tenant), byte order.
func SubjectKeyAfter(k, after SubjectKey) bool {
	if k.Subject != after.Subject {
		return k.Subject > after.Subject
	}
	return k.Tenant > after.Tenant
}

// CompareSubjectKeys orders keys as [KeyStore.ListSubjectKeys] lists them: by Subject, then by
// Tenant, in byte order.
func CompareSubjectKeys(a, b SubjectKey) int {
	if c := strings.Compare(a.Subject, b.Subject); c != 0 {
		return c
	}
	return strings.Compare(a.Tenant, b.Tenant)
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
// MaxWrappedKeyLen bytes; Tenant must be "" or valid (see [ValidateKeyTenant]). Every error is
// Invalid, so that nothing is written for bad input. Backends call it first in CreateSubjectKey.
func PrepareSubjectKey(op string, k SubjectKey) (SubjectKey, error) {
	if err := ValidateKeyRef(op, k.Tenant, k.Subject); err != nil {
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
func PrepareRewrap(op, tenant, subject, oldKEK, newKEK string, wrapped []byte) ([]byte, error) {
	if err := ValidateKeyRef(op, tenant, subject); err != nil {
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

// SubjectKeyNotFound returns the NotFound error of [KeyStore.SubjectKey] for a tenant's subject
// that has neither a key nor a tombstone.
func SubjectKeyNotFound(op, tenant, subject string) error {
	if tenant == "" {
		return Errorf(NotFound, op, "subject %q has no key", subject)
	}
	return Errorf(NotFound, op, "subject %q of tenant %q has no key", subject, tenant)
}

// PrepareEventSchema validates a schema for [SchemaStore.SetEventSchema] and returns a copy
// ready to store. Type must be a valid event type (see [ValidateEventType]); Sensitive must
// hold 1 to MaxSchemaPaths distinct paths; Subject may be empty. Each path is at most
// MaxSchemaPathLen bytes of UTF-8 without control characters, in the syntax of
// [ParseFieldPath]. The subject path names one field: it has no "[]" or "*" step (one event has
// one data subject), and no sensitive path covers it (the subject stays in clear, to find the
// key). Every error is Invalid, so that nothing is written for bad input. Backends call it first
// in SetEventSchema.
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
	seen := make(map[string]string, len(s.Sensitive))
	sensitive := make([][]string, 0, len(s.Sensitive))
	for _, p := range s.Sensitive {
		steps, err := fieldPath("sensitive path", p)
		if err != nil {
			return EventSchema{}, Errorf(Invalid, op, "event type %q: %w", s.Type, err)
		}
		key := strings.Join(steps, ".")
		if first, ok := seen[key]; ok {
			if first == p {
				return EventSchema{}, Errorf(Invalid, op, "event type %q: sensitive path %q appears twice", s.Type, p)
			}
			return EventSchema{}, Errorf(Invalid, op, "event type %q: sensitive paths %q and %q are the same path", s.Type, first, p)
		}
		seen[key] = p
		sensitive = append(sensitive, steps)
	}
	if s.Subject != "" {
		steps, err := fieldPath("subject path", s.Subject)
		if err != nil {
			return EventSchema{}, Errorf(Invalid, op, "event type %q: %w", s.Type, err)
		}
		for _, st := range steps {
			if st == "[]" || st == "*" {
				return EventSchema{}, Errorf(Invalid, op, "event type %q: subject path %q has a %q step: it must name one field, not the elements of an array or the members of an object, since one event has one data subject", s.Type, s.Subject, st)
			}
		}
		for i, sp := range sensitive {
			if covers(sp, steps) {
				return EventSchema{}, Errorf(Invalid, op, "event type %q: subject path %q lies in the sensitive path %q: the subject is stored in clear, to find its key", s.Type, s.Subject, s.Sensitive[i])
			}
		}
	}
	s.Sensitive = append([]string(nil), s.Sensitive...)
	return s, nil
}

// ParseFieldPath returns the steps of a JSON path of an [EventSchema], or an Invalid error. A
// step is the name of an object member, "[]" for every element of an array, or "*" for every
// member of an object whatever its name (the values of a map; it also matches every element
// of an array). Steps are separated by "."; a "[]" may also follow the step before it directly:
//
//	subjectDN                   a member of the payload
//	holder.email                a member of a member
//	approvers[].email           the member email of every element of the array approvers
//	contacts.*.email            the member email of every member of the object contacts
//	teams[].members[].email     arrays in arrays
//	holders.[].email            the same path as holders[].email
//
// A name is not empty and holds none of ".", "[", "]" and "*"; an array index ("[0]") is
// refused: a path names every element of an array, or none.
func ParseFieldPath(op, path string) ([]string, error) {
	steps, err := fieldPath("path", path)
	if err != nil {
		return nil, &Error{Code: Invalid, Op: op, Msg: err.Error()}
	}
	return steps, nil
}

// FormatFieldPath joins the steps of a path in the syntax of [ParseFieldPath], with each "[]"
// right after the step before it ("approvers[].email").
func FormatFieldPath(steps []string) string {
	var b strings.Builder
	for i, st := range steps {
		if i > 0 && st != "[]" {
			b.WriteByte('.')
		}
		b.WriteString(st)
	}
	return b.String()
}

func fieldPath(what, p string) ([]string, error) {
	if err := validateName(what, p, MaxSchemaPathLen); err != nil {
		return nil, err
	}
	steps := make([]string, 0, strings.Count(p, ".")+strings.Count(p, "[")+1)
	for seg := range strings.SplitSeq(p, ".") {
		name, brackets := seg, ""
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name, brackets = seg[:i], seg[i:]
		}
		switch {
		case seg == "":
			return nil, fmt.Errorf("%s %q has an empty field name", what, p)
		case name == "*":
			steps = append(steps, "*")
		case strings.Contains(name, "*"):
			return nil, fmt.Errorf("%s %q: in %q, a \"*\" must stand alone between dots, for every member of an object (\"contacts.*.email\")", what, p, seg)
		case strings.Contains(name, "]"):
			return nil, fmt.Errorf("%s %q: in %q, a \"]\" only closes \"[]\"", what, p, seg)
		case name != "":
			steps = append(steps, name)
		}
		for brackets != "" {
			if !strings.HasPrefix(brackets, "[]") {
				if end := strings.IndexByte(brackets, ']'); end > 1 {
					return nil, fmt.Errorf("%s %q: %q is an array index; write \"[]\" for every element of the array", what, p, brackets[:end+1])
				}
				return nil, fmt.Errorf("%s %q: in %q, a \"[\" must be followed by \"]\" and come after a field name, as in \"approvers[].email\"", what, p, seg)
			}
			steps = append(steps, "[]")
			brackets = brackets[2:]
		}
	}
	return steps, nil
}

// covers reports whether the values the path pattern names hold the value at path (a path of
// names): whether pattern is path or a prefix of it, a "*" matching any name.
func covers(pattern, path []string) bool {
	if len(pattern) > len(path) {
		return false
	}
	for i, st := range pattern {
		if st != "*" && st != path[i] {
			return false
		}
	}
	return true
}
