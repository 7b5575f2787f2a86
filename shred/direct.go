package shred

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/strata-events/strata/codec"
)

// A decode into a Go value ends in json.Unmarshal of the opened document, which parses each
// decrypted value again, about 5 ns a byte (for the certificate issuance, a quarter of its
// decoding). DecodeInto spares that for the commonest case, a sensitive string field of the
// event's own struct: the walk sets the field to the decrypted string itself and leaves the
// member out of the document that json.Unmarshal reads, which then leaves the field as set.
//
// The result is the value json.Unmarshal would have made of the whole opened document (but for
// the marker of an erased value, which follows the Go type: see goKindAt):
//   - only a member whose name is the field's JSON name exactly, and that no member before it
//     names without regard to case, is left out (encoding/json matches names so, and a later
//     one overwrites an earlier one; a later member still does, the field's member being gone);
//   - only a string without escapes, in valid UTF-8, is set by the walk (encoding/json keeps
//     such a string as it is); any other value stays in the document;
//   - a struct whose fields would need encoding/json's rules for conflicting or promoted names
//     (an embedded struct, two names equal without regard to case) is decoded as before.

// directField is a sensitive string field that the walk of DecodeInto may set itself.
type directField struct {
	name  []byte // its JSON name
	ascii bool   // name is ASCII
	index int    // its index in the struct
}

// maxDirect bounds the direct fields of a type (the walk keeps one bit for each).
const maxDirect = 64

// directFieldsOf returns the sensitive string fields of the struct t that DecodeInto may set.
func directFieldsOf(t reflect.Type) []directField {
	if t.Kind() != reflect.Struct || encodesItself(t) || decodesItself(t) {
		return nil
	}
	var out []directField
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, promoted, skip := jsonField(f)
		if promoted {
			return nil // encoding/json's rules for promoted names decide
		}
		if skip {
			continue
		}
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return nil // encoding/json's rules for conflicting names decide
			}
		}
		names = append(names, name)
		_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Tag.Get("strata") != "sensitive" || redactionKind(f.Type) != 's' || hasOption(opts, "string") || len(out) == maxDirect {
			continue
		}
		out = append(out, directField{name: []byte(name), ascii: isASCII([]byte(name)), index: i})
	}
	return out
}

// DecodeInto implements codec.FieldDecoder: it is Decode for an event that the registry then
// unmarshals into dst, a pointer to a new zero value of its Go type. The sensitive string
// fields of the struct are set from their decrypted values (or Redacted) by the walk itself,
// and left out of rec.Data, which only the registry reads afterwards. An erased value that
// the Go type does not decode as a string reads as null (its zero value), whatever the kind
// its envelope names: a schema declared for writers in other languages takes a time, a number
// in a string or an enumeration for a string, and Redacted would make the event undecodable.
func (p *Protector) DecodeInto(ctx context.Context, rec *codec.Record, dst reflect.Value) error {
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return p.Decode(ctx, rec)
	}
	if !bytes.Contains(rec.Data, []byte(envelopePrefix)) {
		return nil
	}
	t := dst.Type().Elem()
	pl := p.planForType(t)
	subject := rec.Meta.Subject
	var out []byte
	if len(rec.Data) <= pooledOut-64-len(rec.Type)-len(subject) {
		out = outPool.Get().(*[pooledOut]byte)[:0]
	}
	return openRecord(rec, out, fields{id: rec.ID, typ: rec.Type, subject: subject, tenant: rec.Meta.Tenant, p: p, ctx: ctx,
		direct: pl.direct, dst: dst.Elem(), goType: t})
}

// pooledOut is the size of the buffers that DecodeInto opens payloads into, taken from outPool
// and given back by Recycle: decoding then allocates no more than for a payload in clear. A
// larger payload gets a buffer of its own.
const pooledOut = 1024

var outPool = sync.Pool{New: func() any { return new([pooledOut]byte) }}

// Recycle implements codec.FieldDecoder: it takes back a buffer of DecodeInto's.
func (p *Protector) Recycle(data []byte) {
	if cap(data) == pooledOut {
		outPool.Put((*[pooledOut]byte)(data[:pooledOut]))
	}
}

// candidate returns the index in f.direct of the field that the top-level member named key
// may set, or -1. It records the direct fields that key names without regard to case: a
// member after it with the field's name is no candidate, as encoding/json would let the
// later one win.
func (f *fields) candidate(key []byte) int {
	c, ascii := -1, isASCII(key)
	for i, d := range f.direct {
		switch {
		case string(key) == string(d.name):
			if f.seen&(1<<i) == 0 {
				c = i
			}
		case len(key) != len(d.name) && d.ascii && ascii, !bytes.EqualFold(key, d.name):
			continue
		}
		f.seen |= 1 << i
	}
	return c
}

// isASCII reports whether b holds ASCII alone: two ASCII names of different lengths are not
// equal without regard to case.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// openDirect opens the envelope raw, the value of the top-level member at keys (from
// data[start:w.i]), whose field is f.direct[w.cand-1]. A string that encoding/json keeps as it is
// sets the field, and w.deferred tells the container to leave the member out; any other value
// is written in place, as open writes it.
func (w *walker) openDirect(start int, keys [][]byte, raw []byte) error {
	if w.out == nil {
		w.out = make([]byte, 0, max(w.outCap, len(w.data)))
	}
	l := len(w.out)
	if err := w.f.open(w, keys, raw); err != nil {
		return err
	}
	val := w.out[l:]
	if s, ok := keptString(val); ok {
		w.f.dst.Field(w.f.direct[w.cand-1].index).SetString(s)
		w.out, w.deferred = w.out[:l], true
		return nil
	}
	val = bytes.Clone(val) // the pending bytes before the value go first
	w.out = w.out[:l]
	w.flush(start, w.i)
	w.out = append(w.out, val...)
	return nil
}

// keptString returns the text of the JSON string token tok when encoding/json decodes it to
// its bytes as they are: no escapes, valid UTF-8.
func keptString(tok []byte) (string, bool) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return "", false
	}
	inner := tok[1 : len(tok)-1]
	if plainRun(inner, 0) != len(inner) || !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// goKindAt returns the redaction kind (see redactionKind) of the Go value that encoding/json
// decodes the value at path keys into, in a value of type t, or 0 when the path leads to
// nothing it can tell: a member that t leaves out, a value behind an interface or its own
// decoding method.
func goKindAt(t reflect.Type, keys [][]byte) byte {
	quoted := false
	for _, k := range keys {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if decodesItself(t) {
			return 0
		}
		switch t.Kind() {
		case reflect.Struct:
			m, ok := fieldNamed(t, k)
			if !ok {
				return 0
			}
			t, quoted = m.typ, m.quoted
		case reflect.Slice, reflect.Array:
			if !bytes.Equal(k, arrayKey) {
				return 0
			}
			t = t.Elem()
		case reflect.Map:
			t = t.Elem()
		default:
			return 0
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem() // encoding/json decodes into what the pointer points to
	}
	if t.Kind() == reflect.Interface {
		return 0
	}
	if quoted {
		return 'j' // a string field of the option string decodes JSON in a string: Redacted is none
	}
	return redactionKind(t)
}

// jsonMember is a field of a struct as encoding/json names it: its JSON name, whether a tag
// gave the name, its index path (through embedded structs), its type, and whether
// encoding/json decodes it from a JSON string holding its JSON (the option string).
type jsonMember struct {
	name   string
	tagged bool
	quoted bool
	index  []int
	typ    reflect.Type
}

// fieldNamed returns the field of the struct t that encoding/json decodes the member name into:
// the one of that JSON name, else the first one equal to it without regard to case, among
// the fields encoding/json keeps (see jsonMembers).
func fieldNamed(t reflect.Type, name []byte) (jsonMember, bool) {
	var folded jsonMember
	for _, m := range jsonMembers(t) {
		if m.name == string(name) {
			return m, true
		}
		if folded.typ == nil && bytes.EqualFold([]byte(m.name), name) {
			folded = m
		}
	}
	return folded, folded.typ != nil
}

// jsonMembers returns the fields of the struct t that encoding/json decodes members into, in
// the order of their index paths, by its rules (encoding/json's typeFields): the fields that
// embedded structs promote, breadth first; of the fields of one name, the shallowest, the
// tagged one among those of that depth, and none when that leaves two.
func jsonMembers(t reflect.Type) []jsonMember {
	if v, ok := membersCache.Load(t); ok {
		return v.([]jsonMember)
	}
	var all []jsonMember
	next := []jsonMember{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, c := range current {
			if visited[c.typ] {
				continue
			}
			visited[c.typ] = true
			for i := range c.typ.NumField() {
				sf := c.typ.Field(i)
				name, promoted, skip := jsonField(sf)
				if skip {
					continue
				}
				index := append(append([]int(nil), c.index...), i)
				if !promoted {
					tn, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
					m := jsonMember{name: name, tagged: validJSONName(tn), quoted: hasOption(opts, "string") && quotable(sf.Type), index: index, typ: sf.Type}
					all = append(all, m)
					if count[c.typ] > 1 {
						all = append(all, m) // the same type embedded twice: both go
					}
					continue
				}
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if nextCount[ft]++; nextCount[ft] == 1 {
					next = append(next, jsonMember{index: index, typ: ft})
				}
			}
		}
	}
	slices.SortStableFunc(all, func(a, b jsonMember) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := len(a.index) - len(b.index); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	var out []jsonMember
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].name == all[i].name {
			j++
		}
		if j-i == 1 || len(all[i].index) != len(all[i+1].index) || all[i].tagged != all[i+1].tagged {
			out = append(out, all[i])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b jsonMember) int { return slices.Compare(a.index, b.index) })
	membersCache.Store(t, out)
	return out
}

// quotable reports whether encoding/json honours the option string for a field of type t.
func quotable(t reflect.Type) bool {
	if t.Name() == "" && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		return true
	}
	return false
}

// membersCache caches jsonMembers by type.
var membersCache sync.Map // reflect.Type -> []jsonMember
