package shred

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/strata-events/strata"
)

// plan says which JSON paths of an event type are sensitive and which names the subject. A
// path is a list of steps (see strata.ParseFieldPath): member names, "[]" for every element of
// an array, "*" for every member of an object. The walker's path of a value has the same form,
// with "[]" for an element of an array, so that a path without "*" is matched by its joined
// text alone; only the paths with a "*" are matched step by step.
//
// A plan is built once per Go type or declared schema and shared: it is never changed after.
type plan struct {
	// sensitive maps a path without "*", its steps joined with ".", to the redaction kind of
	// its value: 's' for a Go string, 'j' for any other Go type, 0 when the kind follows the
	// JSON value (declared schemas).
	sensitive map[string]byte
	// wild holds the paths with a "*" step.
	wild []pattern
	// leaves holds the last step of every sensitive path but those that end in "*": most values
	// are ruled out by their last key alone. anyLeaf is set when some path ends in "*".
	leaves  map[string]bool
	anyLeaf bool

	subject string
	// subjectIndex, for a Go type, is the field index path of the subject field.
	subjectIndex []int

	// dynamic, for a Go type, is set when it has fields of interface type: the values they hold
	// are checked for tags at every Encode (see checkDynamic).
	dynamic bool
	// err is set when the Go type or the declared schema cannot be protected: its events and
	// snapshots are refused rather than written with personal data in clear.
	err error
}

// pattern is a sensitive path with a "*" step.
type pattern struct {
	steps []string
	kind  byte
}

func newPlan() *plan { return &plan{sensitive: map[string]byte{}, leaves: map[string]bool{}} }

// add marks the path with the given steps sensitive. A path added twice with two kinds gets
// kind 0: the kind of its JSON value.
func (pl *plan) add(steps []string, kind byte) {
	if len(steps) == 0 {
		return
	}
	last := steps[len(steps)-1]
	if last == "*" {
		pl.anyLeaf = true
	} else {
		pl.leaves[last] = true
	}
	if !slices.Contains(steps, "*") {
		key := strings.Join(steps, ".")
		if have, ok := pl.sensitive[key]; ok && have != kind {
			kind = 0
		}
		pl.sensitive[key] = kind
		return
	}
	for i, w := range pl.wild {
		if slices.Equal(w.steps, steps) {
			if w.kind != kind {
				pl.wild[i].kind = 0
			}
			return
		}
	}
	pl.wild = append(pl.wild, pattern{steps: append([]string(nil), steps...), kind: kind})
}

// lookup reports whether the value at keys is sensitive, and its kind (see plan.sensitive).
// It allocates nothing: most values are ruled out by their last key alone, the path of the
// others is joined on the stack, and the paths with a "*" are compared key by key.
func (pl *plan) lookup(keys [][]byte) (byte, bool) {
	if !pl.leaves[string(keys[len(keys)-1])] {
		if !pl.anyLeaf {
			return 0, false
		}
		return pl.lookupWild(keys)
	}
	if len(keys) == 1 {
		if kind, ok := pl.sensitive[string(keys[0])]; ok {
			return kind, true
		}
	} else {
		var buf [128]byte
		if kind, ok := pl.sensitive[string(appendPath(buf[:0], keys))]; ok {
			return kind, true
		}
	}
	if len(pl.wild) == 0 {
		return 0, false
	}
	return pl.lookupWild(keys)
}

// lookupWild matches keys against the paths with a "*" step.
func (pl *plan) lookupWild(keys [][]byte) (byte, bool) {
next:
	for _, w := range pl.wild {
		if len(w.steps) != len(keys) {
			continue
		}
		for i, st := range w.steps {
			if st != "*" && st != string(keys[i]) {
				continue next
			}
		}
		return w.kind, true
	}
	return 0, false
}

// empty reports whether the plan marks nothing sensitive (a nil plan included).
func (pl *plan) empty() bool { return pl == nil || len(pl.sensitive) == 0 && len(pl.wild) == 0 }

// paths is the number of sensitive paths.
func (pl *plan) paths() int { return len(pl.sensitive) + len(pl.wild) }

// declaredPlan returns the plan of a schema stored in the database. A schema that does not
// validate (declared by an older version, or written around the store's checks) gets a plan
// whose err refuses its events: they are not written with its fields in clear.
func declaredPlan(s strata.EventSchema) *plan {
	pl := newPlan()
	if _, err := strata.PrepareEventSchema("", s); err != nil {
		pl.err = schemaError(err)
		return pl
	}
	pl.subject = s.Subject
	for _, path := range s.Sensitive {
		steps, err := strata.ParseFieldPath("", path)
		if err != nil { // PrepareEventSchema parsed it already
			pl.err = schemaError(err)
			return pl
		}
		pl.add(steps, 0)
	}
	return pl
}

// schemaError returns the error of a stored schema that does not validate.
func schemaError(err error) error {
	var se *strata.Error
	if errors.As(err, &se) {
		err = errors.New(se.Msg)
	}
	return fmt.Errorf("%w: %w", ErrUnprotectable, err)
}
