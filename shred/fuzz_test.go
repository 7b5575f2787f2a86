package shred

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FuzzRewrite checks the JSON walker on arbitrary input: it never panics, refuses what is not
// JSON, and an identity rewrite of valid JSON returns the document unchanged.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{`{"a":{"b":"c"},"d":[1,{"e":"f"}]}`, `[]`, `"x"`, `{"a":"strata:enc:v1:s:AAAA"}`, `{"a" : 1 , "b" : [ ] }`, `{"\u0061":"\"}"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Replacing every value by itself keeps the document valid.
		all, err := rewrite(data, func([][]byte, []byte) bool { return true }, func(_ [][]byte, raw []byte) ([]byte, error) { return raw, nil })
		if err == nil && !json.Valid(all) {
			t.Fatalf("rewrite of %q made invalid JSON %q", data, all)
		}
		// Replacing nothing compacts it.
		out, err := rewrite(data, func([][]byte, []byte) bool { return false }, nil)
		valid := json.Valid(data)
		if valid && err != nil {
			t.Fatalf("valid JSON %q refused: %v", data, err)
		}
		if !valid && err == nil {
			t.Fatalf("invalid JSON %q accepted as %q", data, out)
		}
		if err == nil && !bytes.Equal(out, stripSpace(t, data)) {
			t.Fatalf("identity rewrite of %q gave %q, want the compacted document", data, out)
		}
	})
}

// stripSpace returns data compacted, which is what rewrite writes between tokens.
func stripSpace(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return data
	}
	return b.Bytes()
}

// FuzzParseEnvelope feeds arbitrary strings to the envelope parser: no panic, and what parses
// formats back to the same bytes.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`"strata:enc:v1:s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`))
	f.Add([]byte(`"strata:enc:v1:j:"`))
	f.Add([]byte(`"strata:enc:v1:x:AAAA"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := parseEnvelope(raw)
		if err != nil {
			return
		}
		if got := e.format(); !bytes.Equal(got, raw) {
			// base64 without padding has one canonical form per byte string; a differing form
			// must at least parse to the same envelope.
			again, err := parseEnvelope(got)
			if err != nil || !bytes.Equal(again.box, e.box) || !bytes.Equal(again.nonce, e.nonce) || again.kind != e.kind {
				t.Fatalf("%q formats as %q", raw, got)
			}
		}
	})
}

// FuzzWalkerMatchesEncodingJSON compares the walker with encoding/json on arbitrary input: the
// same documents are valid; it visits the values below the top in the order and with the paths
// and values of json.Decoder's token stream; and a rewrite that replaces every string value
// decodes as encoding/json's decoding of the document with those strings replaced.
func FuzzWalkerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"a":{"b":"c"},"d":[1,{"e":"f"}]}`, `[true,false,null,-0.5e+3]`, `{"a\u0062":"\ud800","a":1,"a":[]}`,
		` { "x" : [ "y" , { } ] } `, `{"subjectDN":"strata:enc:v1:s:AAAA","n":12345678901234567890}`, `"top"`, `{"a":"x\\"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		type visit struct {
			path  string
			value any // the decoded scalar, or "{" / "[" for a container
		}
		var got []visit
		_, err := rewrite(data, func(keys [][]byte, raw []byte) bool {
			v := visit{path: pathString(keys)}
			switch raw[0] {
			case '{', '[':
				v.value = string(raw[:1])
			default:
				d := json.NewDecoder(bytes.NewReader(raw))
				d.UseNumber()
				if err := d.Decode(&v.value); err != nil {
					t.Fatalf("the walker picked %q at %s, which does not decode: %v", raw, v.path, err)
				}
			}
			got = append(got, v)
			return false
		}, nil)
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("json.Valid says %v, the walker %v, for %q", valid, err, data)
		}
		if err != nil {
			return
		}
		// The token stream of encoding/json, with the path of each value.
		type frame struct {
			object bool
			key    string
			keyed  bool // the next string token of an object is a value, not a key
		}
		var want []visit
		var stack []frame
		path := func() string {
			var keys [][]byte
			for _, fr := range stack {
				if fr.object {
					keys = append(keys, []byte(fr.key))
				} else {
					keys = append(keys, arrayKey)
				}
			}
			return pathString(keys)
		}
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			if delim, ok := tok.(json.Delim); ok && (delim == '}' || delim == ']') {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].keyed = false
				}
				continue
			}
			if n := len(stack); n > 0 && stack[n-1].object && !stack[n-1].keyed {
				stack[n-1].key, stack[n-1].keyed = tok.(string), true
				continue
			}
			if len(stack) > 0 {
				v := visit{path: path(), value: tok}
				if delim, ok := tok.(json.Delim); ok {
					v.value = delim.String()
				}
				want = append(want, v)
			}
			if delim, ok := tok.(json.Delim); ok {
				stack = append(stack, frame{object: delim == '{'})
				continue
			}
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].keyed = false
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%q: the walker visits %v, encoding/json's tokens are %v", data, got, want)
		}
		for i := range got {
			// The walker keeps a key's bytes as they are; encoding/json replaces each byte of
			// invalid UTF-8 with U+FFFD, as a conversion to runes does.
			if string([]rune(got[i].path)) != want[i].path || !reflect.DeepEqual(got[i].value, want[i].value) {
				t.Fatalf("%q: visit %d is %+v, encoding/json says %+v", data, i, got[i], want[i])
			}
		}
		// Replacing every string value splices it in where encoding/json would put it.
		out, err := rewrite(data, func(_ [][]byte, raw []byte) bool { return raw[0] == '"' },
			func([][]byte, []byte) ([]byte, error) { return []byte(`"X"`), nil })
		if err != nil {
			t.Fatalf("rewrite of valid %q: %v", data, err)
		}
		expect, err := decodeAny(data)
		if err != nil {
			t.Fatal(err)
		}
		have, err := decodeAny(out)
		if err != nil {
			t.Fatalf("the rewrite of %q is %q, not JSON: %v", data, out, err)
		}
		if _, top := expect.(string); !top {
			expect = replaceStrings(expect)
		}
		if !reflect.DeepEqual(have, expect) {
			t.Fatalf("the rewrite of %q is %q, want %v", data, out, expect)
		}
	})
}

// decodeAny decodes a JSON document into any, numbers as json.Number (of any size).
func decodeAny(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// replaceStrings returns v, decoded by encoding/json, with every string value (not keys)
// replaced by "X".
func replaceStrings(v any) any {
	switch v := v.(type) {
	case string:
		return "X"
	case []any:
		for i := range v {
			v[i] = replaceStrings(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = replaceStrings(v[k])
		}
	}
	return v
}

// FuzzSealOpen seals every value of arbitrary JSON documents as sensitive (the declared paths of
// all the values the walker meets) and opens them again: the sealed document is valid JSON with
// no sealed value left in it, and the opened one decodes as the original.
func FuzzSealOpen(f *testing.F) {
	for _, s := range []string{`{"a":{"b":"c"},"d":[1,{"e":"f"}]}`, `{"dn":"CN=x","born":"1970-01-02T00:00:00Z","n":[1, 2]}`, `[{"a":"b"},{"a":{"c":null}}]`, `{}`} {
		f.Add([]byte(s))
	}
	key := make([]byte, 32)
	aead, err := newAEAD(key)
	if err != nil {
		f.Fatal(err)
	}
	id := uuid.MustParse("0190a6c5-6f31-7cc0-8f3c-1b7c2a8e4d10")
	f.Fuzz(func(t *testing.T, data []byte) {
		pl := newPlan()
		if _, err := rewrite(data, func(keys [][]byte, _ []byte) bool { pl.add(keySteps(keys), 0); return false }, nil); err != nil || pl.empty() {
			return
		}
		sealed, err := sealFields(data, fields{plan: pl, aead: aead, id: id, typ: "Fuzz", subject: "subject-1"})
		if err != nil {
			t.Fatalf("seal %q: %v", data, err)
		}
		if !json.Valid(sealed) || !bytes.Contains(sealed, []byte(envelopePrefix)) {
			t.Fatalf("sealed %q as %q", data, sealed)
		}
		opened, err := openFields(sealed, fields{aead: aead, loaded: true, id: id, typ: "Fuzz", subject: "subject-1"})
		if err != nil {
			t.Fatalf("open %q (sealed from %q): %v", sealed, data, err)
		}
		want, err := decodeAny(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeAny(opened)
		if err != nil {
			t.Fatalf("opened %q, not JSON: %v", opened, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q sealed and opened is %q", data, opened)
		}
		// Bound to the subject: another one does not open it.
		if _, err := openFields(sealed, fields{aead: aead, loaded: true, id: id, typ: "Fuzz", subject: "subject-2"}); !errors.Is(err, ErrTampered) {
			t.Fatalf("opened under another subject: %v", err)
		}
	})
}

// FuzzSealOpenWild seals arbitrary JSON documents by plans made of some of the paths the
// walker meets in them, with some of their steps replaced by "*" (array elements are "[]"
// already), and checks the result against a reference matcher run on encoding/json's decoding
// of the document: exactly the values the plan names, and not their insides, are sealed, with
// the kind of their JSON; everything else is as it was; and opening gives the document back.
func FuzzSealOpenWild(f *testing.F) {
	for _, s := range []struct {
		doc         string
		pick, stars uint16
	}{
		{`{"approvers":[{"email":"a@x","role":"r"},{"email":"b@x"}],"contacts":{"alice":{"email":"c@x"},"bob":{"email":{"n":1}}}}`, 0xffff, 0x0002},
		{`{"teams":[{"members":[{"name":"a"},{"name":"b"}]},{"members":[]}],"matrix":[["x",2],[],[{"y":null}]]}`, 0x5555, 0x0101},
		{`{"a":{"b":{"c":"d"}},"e":[[[1]]],"f":{"g":[{"h":"i"}]}}`, 0xaaaa, 0x00ff},
		{`[{"a":"b"},{"a":{"c":null}},[]]`, 0xffff, 0xffff},
		{`{"n":null,"e":[],"o":{},"s":"x"}`, 0xffff, 0x0001},
		// Only deep paths picked, so that the "*" steps decide: approvers.[].email and
		// contacts.*.email; *.[].members.[].name and *.[].[].
		{`{"approvers":[{"email":"a@x","role":"r"},{"email":"b@x"}],"contacts":{"alice":{"email":"c@x"},"bob":{"email":{"n":1}}}}`, 0x0404, 0x0800},
		{`{"teams":[{"members":[{"name":"a"},{"name":"b"}]},{"members":[]}],"matrix":[["x",2],[],[{"y":null}]]}`, 0x0810, 0x0810},
	} {
		f.Add([]byte(s.doc), s.pick, s.stars)
	}
	aead, err := newAEAD(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	id := uuid.MustParse("0190a6c5-6f31-7cc0-8f3c-1b7c2a8e4d10")
	f.Fuzz(func(t *testing.T, data []byte, pick, stars uint16) {
		// The paths of the document, in the walker's visiting order.
		var paths [][]string
		clean := true
		if _, err := rewrite(data, func(keys [][]byte, _ []byte) bool {
			for _, k := range keys {
				// A key that is not UTF-8 decodes otherwise in encoding/json; one with a "." is
				// matched by its joined path as well (over-sealing, harmless), which the
				// reference does not model.
				clean = clean && utf8.Valid(k) && !bytes.ContainsRune(k, '.')
			}
			paths = append(paths, keySteps(keys))
			return false
		}, nil); err != nil || !clean || len(paths) == 0 {
			return
		}
		pl := newPlan()
		var patterns [][]string
		for i, p := range paths {
			if pick>>(i%16)&1 == 0 {
				continue
			}
			p = slices.Clone(p)
			for j := range p {
				if stars>>((i+j)%16)&1 == 1 {
					p[j] = "*"
				}
			}
			pl.add(p, 0)
			patterns = append(patterns, p)
		}
		if pl.empty() {
			return
		}
		sealed, err := sealFields(data, fields{plan: pl, aead: aead, id: id, typ: "Fuzz", subject: "subject-1"})
		if err != nil {
			t.Fatalf("seal %q: %v", data, err)
		}
		orig, err := decodeAny(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeAny(sealed)
		if err != nil {
			t.Fatalf("sealed %q as %q, not JSON: %v", data, sealed, err)
		}
		matches := func(path []string) bool {
		next:
			for _, p := range patterns {
				if len(p) != len(path) {
					continue
				}
				for i := range p {
					if p[i] != "*" && p[i] != path[i] {
						continue next
					}
				}
				return true
			}
			return false
		}
		sealedAny := false
		var check func(path []string, o, g any)
		check = func(path []string, o, g any) {
			if len(path) > 0 && matches(path) {
				env, ok := g.(string)
				kind := "j"
				if _, isString := o.(string); isString {
					kind = "s"
				}
				if !ok || !strings.HasPrefix(env, envelopePrefix+kind+":") {
					t.Fatalf("%q sealed as %q: the value at %q (%v) is %v, want a %s envelope", data, sealed, path, o, g, kind)
				}
				sealedAny = true
				return
			}
			switch o := o.(type) {
			case map[string]any:
				gm, ok := g.(map[string]any)
				if !ok || len(gm) != len(o) {
					t.Fatalf("%q sealed as %q: the object at %q is %v", data, sealed, path, g)
				}
				for k, v := range o {
					check(append(slices.Clip(path), k), v, gm[k])
				}
			case []any:
				ga, ok := g.([]any)
				if !ok || len(ga) != len(o) {
					t.Fatalf("%q sealed as %q: the array at %q is %v", data, sealed, path, g)
				}
				for i, v := range o {
					check(append(slices.Clip(path), "[]"), v, ga[i])
				}
			default:
				if !reflect.DeepEqual(o, g) {
					t.Fatalf("%q sealed as %q: the value at %q is %v, want %v", data, sealed, path, g, o)
				}
			}
		}
		check(nil, orig, got)
		opened, err := openFields(sealed, fields{aead: aead, loaded: true, id: id, typ: "Fuzz", subject: "subject-1"})
		if err != nil {
			t.Fatalf("open %q (sealed from %q): %v", sealed, data, err)
		}
		back, err := decodeAny(opened)
		if err != nil || !reflect.DeepEqual(back, orig) {
			t.Fatalf("%q sealed and opened is %q (%v)", data, opened, err)
		}
		if _, err := openFields(sealed, fields{aead: aead, loaded: true, id: id, typ: "Fuzz", subject: "subject-2"}); sealedAny && !errors.Is(err, ErrTampered) {
			t.Fatalf("opened under another subject: %v", err)
		}
	})
}

// TestPlainRun checks the eight-bytes-at-a-time scan of strings against the byte table for
// every byte value at every position of a word, after plain bytes of both halves of the table.
func TestPlainRun(t *testing.T) {
	for _, fill := range []byte{'a', 0xC3, 0x7F, 0x20} {
		for pos := range 17 {
			for c := range 256 {
				d := bytes.Repeat([]byte{fill}, 20)
				d[pos] = byte(c)
				want := pos
				if plainStringByte[c] {
					want = len(d)
				}
				if got := plainRun(d, 0); got != want {
					t.Fatalf("fill %#x, byte %#x at %d: plainRun = %d, want %d", fill, c, pos, got, want)
				}
			}
		}
	}
}

// keySteps returns the walker's path keys as the steps of a plan's path.
func keySteps(keys [][]byte) []string {
	steps := make([]string, len(keys))
	for i, k := range keys {
		steps[i] = string(k)
	}
	return steps
}

// FuzzLookalikesInWalk checks that the seal walk refuses lookalikes (as Encode has it do for a
// subject whose key is cached) exactly when checkLookalikes, run before the walk for the other
// subjects, refuses the document, for plans made of some of the paths the walker meets in it.
func FuzzLookalikesInWalk(f *testing.F) {
	for _, s := range []struct {
		doc  string
		pick uint16
	}{
		{`{"a":"strata:enc:v1:s:AAAA","b":"x"}`, 0x0001},
		{`{"a":"he wrote \"strata:enc:v1:s:AAAA\"","b":"strata:enc:v1:j:x"}`, 0x0001},
		{`{"a":{"strata:enc:v1:s:k":"v"},"b":["strata:enc:v1:s:AAAA"]}`, 0x0003},
		{`{"a":{"k":"x \"strata:enc:v1:s:y"},"b":1}`, 0x0001},
	} {
		f.Add([]byte(s.doc), s.pick)
	}
	aead, err := newAEAD(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	id := uuid.MustParse("0190a6c5-6f31-7cc0-8f3c-1b7c2a8e4d10")
	f.Fuzz(func(t *testing.T, data []byte, pick uint16) {
		pl, n := newPlan(), 0
		if _, err := rewrite(data, func(keys [][]byte, _ []byte) bool {
			if pick&(1<<(n%16)) != 0 {
				pl.add(keySteps(keys), 0)
			}
			n++
			return false
		}, nil); err != nil || pl.empty() {
			return
		}
		before := checkLookalikes(data)
		_, err := sealFields(data, fields{plan: pl, aead: aead, id: id, typ: "Fuzz", subject: "subject-1", lookalikes: true})
		if (before != nil) != errors.Is(err, ErrLookalike) {
			t.Fatalf("%q: checkLookalikes says %v, the seal walk %v", data, before, err)
		}
		if before != nil && err.Error() != before.Error() {
			t.Fatalf("%q: checkLookalikes says %v, the seal walk %v", data, before, err)
		}
	})
}
