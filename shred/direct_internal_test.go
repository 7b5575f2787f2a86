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
