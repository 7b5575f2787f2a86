package query

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/strata-events/strata"
)

// Change is one difference between two JSON documents. Path is a JSON Pointer (RFC 6901) to
// the value; Op is "add", "remove" or "replace". Old and New are the JSON values (absent for
// add and remove respectively).
type Change struct {
	Op   string          `json:"op"`
	Path string          `json:"path"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// Diff returns the changes from before to after, two JSON documents, in path order (an empty,
// non-nil list when they are equal). Objects are compared key by key, recursively; arrays and
// scalars are replaced whole when they differ. Invalid JSON is an Invalid error.
func Diff(before, after []byte) ([]Change, error) {
	var a, b any
	if err := unmarshalJSONNumber(before, &a); err != nil {
		return nil, strata.Errorf(strata.Invalid, "diff", "before: %w", err)
	}
	if err := unmarshalJSONNumber(after, &b); err != nil {
		return nil, strata.Errorf(strata.Invalid, "diff", "after: %w", err)
	}
	out := []Change{} // not nil: an Entry's diff is a JSON list, empty when nothing changed
	diffValue(&out, "", a, b)
	return out, nil
}

func diffValue(out *[]Change, path string, a, b any) {
	ao, aok := a.(map[string]any)
	bo, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(ao)+len(bo))
		for k := range ao {
			keys = append(keys, k)
		}
		for k := range bo {
			if _, ok := ao[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := path + "/" + escapePointer(k)
			av, ina := ao[k]
			bv, inb := bo[k]
			switch {
			case !ina:
				*out = append(*out, Change{Op: "add", Path: p, New: raw(bv)})
			case !inb:
				*out = append(*out, Change{Op: "remove", Path: p, Old: raw(av)})
			default:
				diffValue(out, p, av, bv)
			}
		}
		return
	}
	ra, rb := raw(a), raw(b)
	if !bytes.Equal(ra, rb) {
		*out = append(*out, Change{Op: "replace", Path: path, Old: ra, New: rb})
	}
}

// raw encodes v canonically (sorted keys); numbers keep their text.
func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null") // unreachable: v came from json.Unmarshal
	}
	return b
}

func escapePointer(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// FormatChange returns a one-line form: "replace /status: \"active\" → \"revoked\"".
func FormatChange(c Change) string {
	switch c.Op {
	case "add":
		return "add " + pathOrRoot(c.Path) + ": " + string(c.New)
	case "remove":
		return "remove " + pathOrRoot(c.Path) + " (was " + string(c.Old) + ")"
	}
	return c.Op + " " + pathOrRoot(c.Path) + ": " + string(c.Old) + " → " + string(c.New)
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
