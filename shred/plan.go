package shred

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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

	// fold, for a declared schema, makes the lookup match member names without regard to case,
	// as encoding/json matches struct fields: a raw writer's "Email" for a declared "email"
	// reaches a Go reader's Email field, so it is sealed too. foldedSensitive and foldedLeaves
	// are sensitive and leaves with their keys folded (see foldKey).
	fold            bool
	foldedSensitive map[string]byte
	foldedLeaves    map[string]bool

	// direct, for a Go struct type, lists the sensitive string fields that DecodeInto sets
	// itself (see directFieldsOf).
	direct []directField

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
	if kind, ok := pl.lookupExact(keys); ok || !pl.fold {
		return kind, ok
	}
	return pl.lookupFolded(keys)
}

// lookupExact is lookup with member names compared byte for byte.
func (pl *plan) lookupExact(keys [][]byte) (byte, bool) {
	if !pl.leaves[string(keys[len(keys)-1])] {
		if !pl.anyLeaf {
			return 0, false
		}
		return pl.matchWild(keys, false)
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
	return pl.matchWild(keys, false)
}

// matchWild matches keys against the paths with a "*" step, comparing member names byte for
// byte, or with fold as bytes.EqualFold does.
func (pl *plan) matchWild(keys [][]byte, fold bool) (byte, bool) {
next:
	for _, w := range pl.wild {
		if len(w.steps) != len(keys) {
			continue
		}
		for i, st := range w.steps {
			if st == "*" {
				continue
			}
			if fold && !bytes.EqualFold([]byte(st), keys[i]) || !fold && st != string(keys[i]) {
				continue next
			}
		}
		return w.kind, true
	}
	return 0, false
}

// lookupFolded is lookup with member names compared as encoding/json compares them with
// struct fields (bytes.EqualFold). Keys are folded on the stack for the common short ones.
func (pl *plan) lookupFolded(keys [][]byte) (byte, bool) {
	var buf [128]byte
	if !pl.foldedLeaves[string(foldKey(buf[:0], keys[len(keys)-1]))] && !pl.anyLeaf {
		return 0, false
	}
	path := buf[:0]
	for i, k := range keys {
		if i > 0 {
			path = append(path, '.')
		}
		path = foldKey(path, k)
	}
	if kind, ok := pl.foldedSensitive[string(path)]; ok {
		return kind, true
	}
	return pl.matchWild(keys, true)
}

// foldKey appends k folded to dst: each rune replaced by the smallest rune of its case-folding
// orbit (unicode.SimpleFold), so that two keys fold alike exactly when bytes.EqualFold finds
// them equal.
func foldKey(dst, k []byte) []byte {
	for i := 0; i < len(k); {
		c := k[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			// 'K' and 'S' have non-ASCII folds (the Kelvin sign, the long s), which are larger.
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(k[i:])
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		dst = utf8.AppendRune(dst, m)
		i += n
	}
	return dst
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
	pl.fold = true
	pl.foldedSensitive = make(map[string]byte, len(pl.sensitive))
	for path, kind := range pl.sensitive {
		pl.foldedSensitive[string(foldKey(nil, []byte(path)))] = kind
	}
	pl.foldedLeaves = make(map[string]bool, len(pl.leaves))
	for leaf := range pl.leaves {
		pl.foldedLeaves[string(foldKey(nil, []byte(leaf)))] = true
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
