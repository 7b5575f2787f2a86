package shred

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type kindInner struct {
	At   time.Time `json:"at"`
	Name string    `json:"name"`
}

type KindEmbedded struct {
	Since time.Time `json:"since"`
}

type kindOuter struct {
	KindEmbedded
	Name    string               `json:"name"`
	Count   json.Number          `json:"count"`
	Inner   kindInner            `json:"inner"`
	Ptr     *kindInner           `json:"ptr"`
	List    []kindInner          `json:"list"`
	ByName  map[string]time.Time `json:"byName"`
	Any     any                  `json:"any"`
	Raw     []byte               `json:"raw"`
	Skipped string               `json:"-"`
}

// TestGoKindAt checks the Go kind that chooses an erased value's marker in DecodeInto, along
// paths through nested and embedded structs, pointers, slices and maps, by encoding/json's
// names (exact, then without regard to case).
func TestGoKindAt(t *testing.T) {
	tt := reflect.TypeFor[kindOuter]()
	for path, want := range map[string]byte{
		"name": 's', "NAME": 's', "count": 'j', "inner.at": 'j', "inner.name": 's', "Inner.At": 'j',
		"ptr.at": 'j', "list.[].at": 'j', "list.[].name": 's', "byName.x": 'j', "since": 'j', "SINCE": 'j',
		"any": 0, "raw": 'j', "Skipped": 0, "-": 0, "missing": 0, "name.x": 0, "list.x": 0, "inner": 'j',
	} {
		var keys [][]byte
		for k := range strings.SplitSeq(path, ".") {
			keys = append(keys, []byte(k))
		}
		if got := goKindAt(tt, keys); got != want {
			t.Errorf("%s: kind %q, want %q", path, got, want)
		}
	}
}

type KindAtA struct {
	X    time.Time
	Deep time.Time `json:"deep"`
}

type KindAtB struct {
	X time.Time
}

type KindAtC struct {
	Tagged string `json:"T"`
}

type KindAtD struct {
	T time.Time
}

// kindDominant has names that encoding/json's rules for promoted names resolve: the
// shallower field, the tagged one of a depth, none of two at a depth (the folded name then).
type kindDominant struct {
	KindAtA
	KindAtB
	KindAtD
	KindAtC
	Deep string  `json:"deep"`
	Low  string  `json:"x"`
	Ptr  *string `json:"ptr"`
	PPtr **string
}

// TestGoKindAtDominance checks goKindAt by encoding/json's rules for promoted names and
// through pointers to strings.
func TestGoKindAtDominance(t *testing.T) {
	tt := reflect.TypeFor[kindDominant]()
	for path, want := range map[string]byte{
		"deep": 's', "DEEP": 's', "X": 's', "x": 's', "T": 's', "t": 's', "ptr": 's', "PPtr": 's',
	} {
		if got := goKindAt(tt, [][]byte{[]byte(path)}); got != want {
			t.Errorf("%s: kind %q, want %q", path, got, want)
		}
	}
}

// kindQuoted has string fields of the option string, which decode JSON inside a JSON string.
type kindQuoted struct {
	Q  string   `json:"q,string"`
	P  *string  `json:"p,omitempty,string"`
	S  string   `json:"s,omitempty"`
	St []string `json:"st,string"` // encoding/json ignores the option here
}

// TestGoKindAtQuoted checks that an erased string reads as null in a field of the option
// string, which Redacted would make undecodable.
func TestGoKindAtQuoted(t *testing.T) {
	tt := reflect.TypeFor[kindQuoted]()
	for path, want := range map[string]byte{"q": 'j', "p": 'j', "s": 's', "st.[]": 's'} {
		var keys [][]byte
		for k := range strings.SplitSeq(path, ".") {
			keys = append(keys, []byte(k))
		}
		if got := goKindAt(tt, keys); got != want {
			t.Errorf("%s: kind %q, want %q", path, got, want)
		}
	}
	var v kindQuoted
	if err := json.Unmarshal([]byte(`{"q":null,"p":null}`), &v); err != nil {
		t.Fatal(err)
	}
}
