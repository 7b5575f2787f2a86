package shred

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/strata-events/strata"
)

// ErrUnprotectable is wrapped by the Invalid error for a Go type, or a value, whose fields
// tagged strata the Protector cannot reach in its JSON encoding (a type that encodes itself
// with tags inside, a recursive type, a value behind an interface, ...), and for a declared
// schema it cannot apply: such events and snapshots are refused, never written with personal
// data in clear.
var ErrUnprotectable = errors.New("sensitive fields that cannot be protected")

var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	// jsonNumberType is a string that encoding/json decodes as a number only.
	jsonNumberType = reflect.TypeFor[json.Number]()
)

// planOfType builds the plan of a Go type from its strata struct tags. It follows the type as
// encoding/json encodes it: struct fields by their JSON names, the fields of embedded structs
// in the object that embeds them, pointers, the elements of slices and arrays (a "[]" step) and
// the values of maps (a "*" step). What it cannot follow sets the plan's err (see
// ErrUnprotectable); fields of interface type set dynamic.
func planOfType(t reflect.Type) *plan {
	pl := newPlan()
	tw := typeWalk{pl: pl}
	tw.walk(t, nil, []int{}, false)
	if tw.err != nil {
		pl.err = fmt.Errorf("%w: %s", ErrUnprotectable, tw.err)
	}
	return pl
}

// typeWalk is the state of planOfType.
type typeWalk struct {
	pl *plan
	// structs are the struct types being walked, outermost first: a type met again holds
	// itself.
	structs []reflect.Type
	err     error
}

func (w *typeWalk) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

// where names a path in messages.
func where(steps []string) string {
	if len(steps) == 0 {
		return "the top of the payload"
	}
	return fmt.Sprintf("%q", strata.FormatFieldPath(steps))
}

// appendStep returns steps with one more step, in a slice of its own.
func appendStep(steps []string, step string) []string {
	return append(steps[:len(steps):len(steps)], step)
}

// walk visits a value of type t at the path steps. index is the field index path of the value
// from the top (for the subject), nil below a slice, an array or a map; inside is set there.
func (w *typeWalk) walk(t reflect.Type, steps []string, index []int, inside bool) {
	for w.err == nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if w.err != nil {
		return
	}
	if t.Kind() == reflect.Interface {
		w.pl.dynamic = true
		return
	}
	if encodesItself(t) {
		if hasTags(t) {
			w.fail("%s at %s has fields tagged strata, but encodes itself (with a MarshalJSON or MarshalText method), so their place in its JSON is unknown: tag the field that holds it strata:\"sensitive\" to encrypt it whole", t, where(steps))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(t, steps, index, inside)
	case reflect.Slice, reflect.Array:
		w.walk(t.Elem(), appendStep(steps, "[]"), nil, true)
	case reflect.Map:
		if hasTags(t.Key()) {
			w.fail("the map at %s has keys of type %s, which has fields tagged strata: map keys are stored in clear", where(steps), t.Key())
			return
		}
		w.walk(t.Elem(), appendStep(steps, "*"), nil, true)
	}
}

// jsonField says how encoding/json encodes the struct field f: under name, or, for an embedded
// struct without a JSON name, with its fields promoted into the enclosing object; skip is set
// for a field it leaves out.
func jsonField(f reflect.StructField) (name string, promoted, skip bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, true
	}
	name, _, _ = strings.Cut(tag, ",")
	if !validJSONName(name) {
		name = "" // encoding/json ignores a name it cannot use, and so does the plan
	}
	elem := f.Type
	if elem.Kind() == reflect.Pointer {
		elem = elem.Elem()
	}
	if f.Anonymous {
		if !f.IsExported() && elem.Kind() != reflect.Struct {
			return "", false, true
		}
		if name == "" && elem.Kind() == reflect.Struct {
			return "", true, false
		}
	} else if !f.IsExported() {
		return "", false, true
	}
	if name == "" {
		name = f.Name
	}
	return name, false, false
}

// validJSONName reports whether encoding/json takes name, from a json tag, as the field's
// JSON name: letters, digits and the punctuation it allows (encoding/json's isValidTag).
func validJSONName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

func (w *typeWalk) walkStruct(t reflect.Type, steps []string, index []int, inside bool) {
	if slices.Contains(w.structs, t) {
		if hasTags(t) {
			w.fail("%s holds itself (at %s) and has fields tagged strata: the paths to them have no end; encrypt the recursive field whole (strata:\"sensitive\")", t, where(steps))
		}
		return
	}
	w.structs = append(w.structs, t)
	defer func() { w.structs = w.structs[:len(w.structs)-1] }()
	for i := range t.NumField() {
		f := t.Field(i)
		name, promoted, skip := jsonField(f)
		if skip {
			continue
		}
		tag, tagged := f.Tag.Lookup("strata")
		var fieldIndex []int
		if index != nil {
			fieldIndex = append(index[:len(index):len(index)], i)
		}
		if promoted {
			if tagged {
				w.fail("strata:%q on the embedded %s of %s: encoding/json puts its fields in %s's own object, so no one value holds it; tag its fields, or give it a JSON name", tag, f.Type, t, t)
				return
			}
			w.walk(f.Type, steps, fieldIndex, inside)
			continue
		}
		path := appendStep(steps, name)
		switch {
		case tag == "sensitive":
			if subjectIn(f.Type) {
				w.fail("the field at %s is tagged strata:\"sensitive\" and holds a field tagged strata:\"subject\": the subject is stored in clear, to find its key", where(path))
				return
			}
			kind := redactionKind(f.Type)
			if _, opts, _ := strings.Cut(f.Tag.Get("json"), ","); hasOption(opts, "string") {
				kind = 'j' // a value inside a JSON string, which the marker Redacted is not
			}
			w.pl.add(path, kind)
			continue
		case tag == "subject":
			if inside {
				w.fail("the subject field at %s lies in a slice, an array or a map: one event has one data subject; keep its subject field outside, or set the metadata key %q", where(path), MetaSubject)
				return
			}
			if w.pl.subject != "" {
				w.fail("two fields are tagged strata:\"subject\", %q and %s: one event has one data subject", w.pl.subject, where(path))
				return
			}
			w.pl.subject = strings.Join(path, ".")
			if f.Type.Kind() == reflect.String {
				w.pl.subjectIndex = fieldIndex
			}
		case tagged:
			w.fail("the field %s.%s has the tag strata:%q; the tags are strata:\"sensitive\" and strata:\"subject\"", t, f.Name, tag)
			return
		}
		w.walk(f.Type, path, fieldIndex, inside)
	}
}

// hasOption reports whether the comma-separated options of a json tag hold opt.
func hasOption(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// encodesItself reports whether encoding/json encodes t (or *t) with its own method rather than
// field by field.
func encodesItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) ||
		pt.Implements(jsonMarshalerType) || pt.Implements(textMarshalerType)
}

// decodesItself reports whether encoding/json decodes into t with t's own method.
func decodesItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

// redactionKind is the kind of the envelope of a sensitive value of type t: 's', which reads as
// Redacted after erasure, for a string that decodes as encoding/json decodes strings (not a
// json.Number, which decodes numbers only); 'j', which
// reads as null (the zero value of every Go type), for anything else, so that a type that
// checks what it decodes does not refuse the marker.
func redactionKind(t reflect.Type) byte {
	if t.Kind() == reflect.String && t != jsonNumberType && !decodesItself(t) {
		return 's'
	}
	return 'j'
}

// tagCache caches hasTags by type; dynamicCache caches hasInterface.
var tagCache, dynamicCache sync.Map // reflect.Type -> bool

// hasTags reports whether t, or a type inside it (struct fields, the elements of pointers,
// slices, arrays and maps, map keys), has a field tagged strata.
func hasTags(t reflect.Type) bool {
	if v, ok := tagCache.Load(t); ok {
		return v.(bool)
	}
	v := tagsIn(t, false, map[reflect.Type]bool{})
	tagCache.Store(t, v)
	return v
}

// subjectIn reports whether t, or a type inside it, has a field tagged strata:"subject".
func subjectIn(t reflect.Type) bool { return tagsIn(t, true, map[reflect.Type]bool{}) }

func tagsIn(t reflect.Type, subjectOnly bool, seen map[reflect.Type]bool) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return tagsIn(t.Elem(), subjectOnly, seen)
	case reflect.Map:
		return tagsIn(t.Key(), subjectOnly, seen) || tagsIn(t.Elem(), subjectOnly, seen)
	case reflect.Struct:
		if seen[t] {
			return false
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			if tag, ok := f.Tag.Lookup("strata"); ok && (!subjectOnly || tag == "subject") {
				return true
			}
			if tagsIn(f.Type, subjectOnly, seen) {
				return true
			}
		}
	}
	return false
}

// hasInterface reports whether a value of t may hold values behind an interface that
// encoding/json encodes field by field (outside fields tagged strata:"sensitive", which are
// encrypted whole).
func hasInterface(t reflect.Type) bool {
	if v, ok := dynamicCache.Load(t); ok {
		return v.(bool)
	}
	v := interfaceIn(t, map[reflect.Type]bool{})
	dynamicCache.Store(t, v)
	return v
}

func interfaceIn(t reflect.Type, seen map[reflect.Type]bool) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return interfaceIn(t.Elem(), seen)
	case reflect.Map:
		return !encodesItself(t) && interfaceIn(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] || encodesItself(t) {
			return false
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			if _, _, skip := jsonField(f); skip || f.Tag.Get("strata") == "sensitive" {
				continue
			}
			if interfaceIn(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// checkDynamic returns an error wrapping ErrUnprotectable when a value behind an interface in v
// has fields tagged strata: the plan of v's type, made from the static types, does not know
// them, and they would be written in clear. steps is the path of v, for the message.
func checkDynamic(v reflect.Value, steps []string, depth int) error {
	if depth > maxDepth || !v.IsValid() {
		return nil // json.Marshal and the walker refuse such depths
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		d := v.Elem()
		if hasTags(d.Type()) {
			return fmt.Errorf("%w: the value at %s is a %s, which has fields tagged strata, behind an interface: the tags of a value behind an interface are not known when its type is registered; give the field a concrete type, or tag it strata:\"sensitive\" to encrypt it whole", ErrUnprotectable, where(steps), d.Type())
		}
		return checkDynamic(d, steps, depth+1)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkDynamic(v.Elem(), steps, depth+1)
	case reflect.Struct:
		t := v.Type()
		if !hasInterface(t) {
			return nil
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, promoted, skip := jsonField(f)
			if skip || f.Tag.Get("strata") == "sensitive" {
				continue
			}
			at := steps
			if !promoted {
				at = append(steps, name)
			}
			if err := checkDynamic(v.Field(i), at, depth+1); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if !hasInterface(v.Type()) {
			return nil
		}
		for i := range v.Len() {
			if err := checkDynamic(v.Index(i), append(steps, "[]"), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		if !hasInterface(v.Type()) {
			return nil
		}
		for it := v.MapRange(); it.Next(); {
			if err := checkDynamic(it.Value(), append(steps, "*"), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkValue checks a Go value of a type whose plan is dynamic (see checkDynamic).
func checkValue(v any) error {
	return checkDynamic(reflect.ValueOf(v), make([]string, 0, 16), 0)
}
