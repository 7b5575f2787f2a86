package hub

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strata-events/strata"
)

// Filter selects events. Filters compose with [And], [Or] and [Not]; every filter of this
// package is safe for concurrent use. Match must not modify the event.
type Filter interface {
	Match(e *strata.Event) bool
}

// FilterFunc adapts a function to [Filter].
type FilterFunc func(e *strata.Event) bool

// Match calls f.
func (f FilterFunc) Match(e *strata.Event) bool { return f(e) }

type all struct{}

func (all) Match(*strata.Event) bool { return true }

// All selects every event.
func All() Filter { return all{} }

type and []Filter

func (fs and) Match(e *strata.Event) bool {
	for _, f := range fs {
		if !f.Match(e) {
			return false
		}
	}
	return true
}

type or []Filter

func (fs or) Match(e *strata.Event) bool {
	for _, f := range fs {
		if f.Match(e) {
			return true
		}
	}
	return false
}

type not struct{ f Filter }

func (n not) Match(e *strata.Event) bool { return !n.f.Match(e) }

// And selects events that every filter selects; And() selects all. Nil filters are ignored.
func And(fs ...Filter) Filter { return and(compact(fs)) }

// Or selects events that some filter selects; Or() selects none. Nil filters are ignored.
func Or(fs ...Filter) Filter { return or(compact(fs)) }

// Not selects the events f does not select; Not(nil) selects none.
func Not(f Filter) Filter {
	if f == nil {
		f = All()
	}
	return not{f}
}

func compact(fs []Filter) []Filter {
	out := make([]Filter, 0, len(fs))
	for _, f := range fs {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// globs matches a string against patterns: '*' matches any run of characters, '?' one
// character, anything else itself.
type globs struct {
	exact    []string // patterns without wildcards
	patterns []string
	field    func(*strata.Event) string
	kind     string
}

func newGlobs(kind string, field func(*strata.Event) string, patterns []string) globs {
	g := globs{field: field, kind: kind}
	for _, p := range patterns {
		if strings.ContainsAny(p, "*?") {
			g.patterns = append(g.patterns, p)
		} else {
			g.exact = append(g.exact, p)
		}
	}
	return g
}

func (g globs) Match(e *strata.Event) bool {
	s := g.field(e)
	if slices.Contains(g.exact, s) {
		return true
	}
	for _, p := range g.patterns {
		if Glob(p, s) {
			return true
		}
	}
	return false
}

// Glob reports whether s matches pattern, where '*' matches any run of characters (also none)
// and '?' exactly one; every other character matches itself. There is no escape and no bad
// pattern.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[sx:])
				px++
				sx += n
				continue
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last star take one more character and try again after it.
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		px, sx = starP+1, starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// Type selects events whose Type matches one of the patterns ("Certificate*", "*Revoked").
func Type(patterns ...string) Filter {
	return newGlobs("type", func(e *strata.Event) string { return e.Type }, patterns)
}

// Stream selects events whose stream name matches one of the patterns ("certificate-*").
func Stream(patterns ...string) Filter {
	return newGlobs("stream", func(e *strata.Event) string { return e.Stream }, patterns)
}

// metaIn selects events whose metadata key holds one of the values.
type metaIn struct {
	key  string
	vals []string
}

func (m metaIn) Match(e *strata.Event) bool { return slices.Contains(m.vals, e.Meta.Get(m.key)) }

// Meta selects events whose metadata key (well-known or extra) equals one of the values.
func Meta(key string, values ...string) Filter { return metaIn{key, values} }

// Tenant selects events of one of the tenants.
func Tenant(tenants ...string) Filter { return metaIn{strata.MetaTenant, tenants} }

// Subsystem selects events of one of the subsystems.
func Subsystem(vals ...string) Filter { return metaIn{strata.MetaSubsystem, vals} }

// Category selects events of one of the categories.
func Category(vals ...string) Filter { return metaIn{strata.MetaCategory, vals} }

// Principal selects events recorded by one of the principals.
func Principal(vals ...string) Filter { return metaIn{strata.MetaPrincipal, vals} }

// Session selects events recorded in one of the sessions.
func Session(vals ...string) Filter { return metaIn{strata.MetaSession, vals} }

// Correlation selects events with one of the correlation IDs.
func Correlation(vals ...string) Filter { return metaIn{strata.MetaCorrelation, vals} }

type timeRange struct {
	from, to time.Time
	occurred bool
}

func (r timeRange) Match(e *strata.Event) bool {
	t := e.RecordedAt
	if r.occurred {
		t = e.OccurredAt
	}
	return (r.from.IsZero() || !t.Before(r.from)) && (r.to.IsZero() || t.Before(r.to))
}

// Recorded selects events recorded (RecordedAt) at or after from and before to; a zero bound
// is open.
func Recorded(from, to time.Time) Filter { return timeRange{from: from, to: to} }

// Occurred selects events whose OccurredAt lies at or after from and before to; a zero bound is
// open.
func Occurred(from, to time.Time) Filter { return timeRange{from: from, to: to, occurred: true} }

// Predicate selects the events fn returns true for; fn must not modify the event.
func Predicate(fn func(e *strata.Event) bool) Filter {
	if fn == nil {
		return All()
	}
	return FilterFunc(fn)
}

// Narrow returns a store filter that selects every event f selects (and maybe more), so that a
// follower can let the store drop most events it does not want: exact types and a single
// tenant of an And are pushed down; anything else selects all.
func Narrow(f Filter) strata.Filter {
	switch f := f.(type) {
	case globs:
		if f.kind == "type" && len(f.patterns) == 0 && len(f.exact) > 0 {
			return strata.Filter{Types: slices.Clone(f.exact)}
		}
		if f.kind == "stream" && len(f.exact) == 0 && len(f.patterns) == 1 {
			p := f.patterns[0]
			if i := strings.IndexAny(p, "*?"); i == len(p)-1 && p[i] == '*' {
				return strata.Filter{StreamPrefix: p[:i]}
			}
		}
	case metaIn:
		if f.key == strata.MetaTenant && len(f.vals) == 1 && f.vals[0] != "" {
			return strata.Filter{Tenant: f.vals[0]}
		}
	case and:
		var out strata.Filter
		for _, c := range f {
			n := Narrow(c)
			if len(n.Types) > 0 {
				if len(out.Types) == 0 {
					out.Types = n.Types
				} else {
					out.Types = slices.DeleteFunc(out.Types, func(t string) bool { return !slices.Contains(n.Types, t) })
					if len(out.Types) == 0 {
						out.Types = []string{"\x00none"} // contradictory types: a name no event has
					}
				}
			}
			if n.Tenant != "" && out.Tenant == "" {
				out.Tenant = n.Tenant
			}
			if n.StreamPrefix != "" && out.StreamPrefix == "" {
				out.StreamPrefix = n.StreamPrefix
			}
		}
		return out
	}
	return strata.Filter{}
}

// maxSpecDepth bounds the nesting of a Spec, so that a hostile config cannot exhaust the stack.
const maxSpecDepth = 32

// Spec is a filter as configuration files write it (JSON). Set fields must all match; a list
// matches when any of its values does. Types and Streams take globs.
//
//	{"types": ["Certificate*"], "tenants": ["acme"], "not": {"categories": ["test"]}}
type Spec struct {
	Types        []string            `json:"types,omitempty"`
	Streams      []string            `json:"streams,omitempty"`
	Tenants      []string            `json:"tenants,omitempty"`
	Subsystems   []string            `json:"subsystems,omitempty"`
	Categories   []string            `json:"categories,omitempty"`
	Principals   []string            `json:"principals,omitempty"`
	Sessions     []string            `json:"sessions,omitempty"`
	Correlations []string            `json:"correlations,omitempty"`
	Meta         map[string][]string `json:"meta,omitempty"`
	// RecordedFrom and RecordedTo bound RecordedAt: [from, to).
	RecordedFrom *time.Time `json:"recordedFrom,omitempty"`
	RecordedTo   *time.Time `json:"recordedTo,omitempty"`
	And          []Spec     `json:"and,omitempty"`
	Or           []Spec     `json:"or,omitempty"`
	Not          *Spec      `json:"not,omitempty"`
}

// ParseSpec decodes a JSON Spec, rejecting unknown fields, and compiles it.
func ParseSpec(data []byte) (Spec, Filter, error) {
	var s Spec
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, nil, strata.Errorf(strata.Invalid, "parse filter", "%w", err)
	}
	f, err := s.Compile()
	return s, f, err
}

// Compile builds the Filter s describes. An empty Spec selects every event. Empty strings in
// lists, an empty list in Or, and nesting deeper than 32 are Invalid errors.
func (s Spec) Compile() (Filter, error) { return s.compile(0) }

func (s Spec) compile(depth int) (Filter, error) {
	const op = "compile filter"
	if depth > maxSpecDepth {
		return nil, strata.Errorf(strata.Invalid, op, "filter nested deeper than %d", maxSpecDepth)
	}
	var fs []Filter
	lists := []struct {
		name string
		vals []string
		make func(...string) Filter
	}{
		{"types", s.Types, Type}, {"streams", s.Streams, Stream}, {"tenants", s.Tenants, Tenant},
		{"subsystems", s.Subsystems, Subsystem}, {"categories", s.Categories, Category},
		{"principals", s.Principals, Principal}, {"sessions", s.Sessions, Session},
		{"correlations", s.Correlations, Correlation},
	}
	for _, l := range lists {
		if l.vals == nil {
			continue
		}
		if err := checkList(l.name, l.vals); err != nil {
			return nil, strata.Errorf(strata.Invalid, op, "%w", err)
		}
		fs = append(fs, l.make(l.vals...))
	}
	keys := make([]string, 0, len(s.Meta))
	for k := range s.Meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			return nil, strata.Errorf(strata.Invalid, op, "meta: empty key")
		}
		if err := checkList("meta "+k, s.Meta[k]); err != nil {
			return nil, strata.Errorf(strata.Invalid, op, "%w", err)
		}
		fs = append(fs, Meta(k, s.Meta[k]...))
	}
	if s.RecordedFrom != nil || s.RecordedTo != nil {
		var from, to time.Time
		if s.RecordedFrom != nil {
			from = *s.RecordedFrom
		}
		if s.RecordedTo != nil {
			to = *s.RecordedTo
		}
		fs = append(fs, Recorded(from, to))
	}
	for _, c := range s.And {
		f, err := c.compile(depth + 1)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	if s.Or != nil {
		if len(s.Or) == 0 {
			return nil, strata.Errorf(strata.Invalid, op, "or: empty list selects nothing")
		}
		var alts []Filter
		for _, c := range s.Or {
			f, err := c.compile(depth + 1)
			if err != nil {
				return nil, err
			}
			alts = append(alts, f)
		}
		fs = append(fs, Or(alts...))
	}
	if s.Not != nil {
		f, err := s.Not.compile(depth + 1)
		if err != nil {
			return nil, err
		}
		fs = append(fs, Not(f))
	}
	switch len(fs) {
	case 0:
		return All(), nil
	case 1:
		return fs[0], nil
	}
	return And(fs...), nil
}

func checkList(name string, vals []string) error {
	if len(vals) == 0 {
		return fmt.Errorf("%s: empty list selects nothing (leave it out to select all)", name)
	}
	for _, v := range vals {
		if v == "" {
			return fmt.Errorf("%s: empty value", name)
		}
	}
	return nil
}
