package aggregate

import (
	"context"
	"reflect"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// SnapshotProtector keeps the personal data in a state out of its snapshots' clear text: the
// fields of the state tagged strata:"sensitive" are sealed like the fields of events, under the
// key of the data subject the state's strata:"subject" field names, so that erasing the subject
// makes its snapshots unreadable too. *shred.Protector implements it. A repository uses the
// first transform of its codec registry that implements it, for every snapshot it saves and
// loads; a repository whose state has sensitive fields and whose registry has none saves no
// snapshots at all (see WithSnapshots).
type SnapshotProtector interface {
	// SealSnapshot protects s.Data, the JSON encoding of state, in place, before s is saved.
	SealSnapshot(ctx context.Context, state any, s *strata.Snapshot) error
	// OpenSnapshot reverses SealSnapshot in place, after s was loaded. state is a value (or a
	// nil pointer) of the state's type. It returns false, and no error, when s holds personal
	// data whose subject was erased: the repository then drops the snapshot and folds the
	// stream from its first event, which yields the redaction markers event replay yields.
	OpenSnapshot(ctx context.Context, state any, s *strata.Snapshot) (bool, error)
}

// snapshotProtector returns the registry's SnapshotProtector, or nil.
func snapshotProtector(reg *codec.Registry) SnapshotProtector {
	for _, t := range reg.Transforms() {
		if p, ok := t.(SnapshotProtector); ok {
			return p
		}
	}
	return nil
}

// hasSensitive reports whether t, or a type inside it (struct fields, elements of pointers,
// slices, arrays and maps), has a field tagged strata:"sensitive".
func hasSensitive(t reflect.Type) bool { return sensitiveIn(t, map[reflect.Type]bool{}) }

func sensitiveIn(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return sensitiveIn(t.Elem(), seen)
	case reflect.Map:
		return sensitiveIn(t.Key(), seen) || sensitiveIn(t.Elem(), seen)
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return false
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Tag.Get("strata") == "sensitive" || sensitiveIn(f.Type, seen) {
				return true
			}
		}
	}
	return false
}
