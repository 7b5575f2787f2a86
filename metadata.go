package strata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Metadata is stored with every event. The well-known fields answer the auditor's questions:
// whose data (Tenant, Subject), who acted (Principal, Session), and why (Correlation,
// Causation). Extra holds any other string keys; they may not reuse a well-known name.
type Metadata struct {
	Tenant string
	// Subject names the data subject whose personal data the event holds: the sensitive fields
	// of its payload are encrypted under the subject's key (package shred sets it).
	Subject     string
	Principal   string
	Session     string
	Correlation string
	Causation   string
	Subsystem   string
	Category    string
	Extra       map[string]string
}

// The JSON names of the well-known metadata keys.
const (
	MetaTenant      = "tenant"
	MetaSubject     = "subject"
	MetaPrincipal   = "principal"
	MetaSession     = "session"
	MetaCorrelation = "correlation"
	MetaCausation   = "causation"
	MetaSubsystem   = "subsystem"
	MetaCategory    = "category"
)

func (m *Metadata) fields() []struct {
	key string
	val *string
} {
	return []struct {
		key string
		val *string
	}{
		{MetaTenant, &m.Tenant}, {MetaSubject, &m.Subject}, {MetaPrincipal, &m.Principal}, {MetaSession, &m.Session},
		{MetaCorrelation, &m.Correlation}, {MetaCausation, &m.Causation},
		{MetaSubsystem, &m.Subsystem}, {MetaCategory, &m.Category},
	}
}

// IsWellKnownMetaKey reports whether key names one of Metadata's fields.
func IsWellKnownMetaKey(key string) bool {
	switch key {
	case MetaTenant, MetaSubject, MetaPrincipal, MetaSession, MetaCorrelation, MetaCausation, MetaSubsystem, MetaCategory:
		return true
	}
	return false
}

// Get returns the value of a well-known or extra key.
func (m Metadata) Get(key string) string {
	for _, f := range m.fields() {
		if f.key == key {
			return *f.val
		}
	}
	return m.Extra[key]
}

// Set sets a well-known field or an extra key.
func (m *Metadata) Set(key, value string) {
	for _, f := range m.fields() {
		if f.key == key {
			*f.val = value
			return
		}
	}
	if m.Extra == nil {
		m.Extra = make(map[string]string)
	}
	m.Extra[key] = value
}

// IsZero reports whether no field is set.
func (m Metadata) IsZero() bool {
	for _, f := range m.fields() {
		if *f.val != "" {
			return false
		}
	}
	return len(m.Extra) == 0
}

// Equal reports whether m and o hold the same keys and values.
func (m Metadata) Equal(o Metadata) bool {
	for i, f := range m.fields() {
		if *f.val != *o.fields()[i].val {
			return false
		}
	}
	return len(m.Extra) == len(o.Extra) && maps.Equal(m.Extra, o.Extra)
}

// MarshalJSON writes one flat object with sorted keys, leaving out empty well-known fields:
// {"correlation":"c-1","principal":"alice","ticket":"T-9"}. The encoding is deterministic; it is
// the canonical form that backends store. Strings that need no escaping (the common case) are
// written directly, others through encoding/json.
func (m Metadata) MarshalJSON() ([]byte, error) {
	fs := m.sortedFields()
	n := 2
	plain := true
	for _, f := range fs {
		if !plainJSON(f.key) || !plainJSON(f.val) {
			plain = false
			break
		}
		n += len(f.key) + len(f.val) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		if plain {
			b = append(append(append(append(append(b, '"'), f.key...), `":"`...), f.val...), '"')
			continue
		}
		kb, _ := json.Marshal(f.key)
		vb, _ := json.Marshal(f.val)
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}

type metaField struct{ key, val string }

// sortedFields returns the set fields and extra keys in key order.
func (m *Metadata) sortedFields() []metaField {
	var fixed [8]metaField
	// In key order: category < causation < correlation < principal < session < subject <
	// subsystem < tenant.
	fs := fixed[:0]
	for _, f := range []metaField{
		{MetaCategory, m.Category}, {MetaCausation, m.Causation}, {MetaCorrelation, m.Correlation},
		{MetaPrincipal, m.Principal}, {MetaSession, m.Session}, {MetaSubject, m.Subject},
		{MetaSubsystem, m.Subsystem}, {MetaTenant, m.Tenant},
	} {
		if f.val != "" {
			fs = append(fs, f)
		}
	}
	if len(m.Extra) > 0 {
		for k, v := range m.Extra {
			fs = append(fs, metaField{k, v})
		}
		slices.SortFunc(fs, func(a, b metaField) int { return strings.Compare(a.key, b.key) })
	}
	return fs
}

// plainJSON reports whether encoding/json writes s between quotes unchanged: printable ASCII
// without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// UnmarshalJSON reads the flat object MarshalJSON writes. Values must be strings. The canonical
// form, with no escapes, is read without encoding/json; anything else goes through it.
func (m *Metadata) UnmarshalJSON(data []byte) error {
	if decodePlainMeta(data, m) {
		return nil
	}
	var all map[string]string
	if err := json.Unmarshal(data, &all); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	*m = Metadata{}
	for k, v := range all {
		m.Set(k, v)
	}
	return nil
}

// decodePlainMeta decodes {"k":"v",...} whose strings hold no backslash, control character or
// invalid UTF-8; it reports false for any other input, leaving m partly set. The values share
// one copy of s: an event's metadata costs one allocation however many keys it has (and one
// more for Extra when it has keys beyond the well-known ones).
func decodePlainMeta(s []byte, m *Metadata) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || bytes.IndexByte(s, '\\') >= 0 {
		return false
	}
	*m = Metadata{}
	if len(s) == 2 {
		return true
	}
	var (
		all  string // s as a string, made on the first value
		seen uint8  // the well-known keys read, one bit each
	)
	for i := 1; ; {
		k0, k1, ok := quotedPlain(s, i)
		if !ok || k1+1 >= len(s) || s[k1+1] != ':' {
			return false
		}
		v0, v1, ok := quotedPlain(s, k1+2)
		if !ok || v1+1 >= len(s) {
			return false
		}
		if all == "" {
			all = string(s)
		}
		v := all[v0:v1]
		key := s[k0:k1]
		var f *string
		var bit uint8
		switch string(key) { // no allocation: the compiler compares the bytes in place
		case MetaTenant:
			f, bit = &m.Tenant, 1<<0
		case MetaPrincipal:
			f, bit = &m.Principal, 1<<1
		case MetaSession:
			f, bit = &m.Session, 1<<2
		case MetaCorrelation:
			f, bit = &m.Correlation, 1<<3
		case MetaCausation:
			f, bit = &m.Causation, 1<<4
		case MetaSubsystem:
			f, bit = &m.Subsystem, 1<<5
		case MetaCategory:
			f, bit = &m.Category, 1<<6
		case MetaSubject:
			f, bit = &m.Subject, 1<<7
		}
		switch {
		case f != nil:
			if seen&bit != 0 {
				return false // a repeated key: let encoding/json decide which one wins
			}
			seen |= bit
			*f = v
		default:
			k := all[k0:k1]
			if _, dup := m.Extra[k]; dup {
				return false
			}
			if m.Extra == nil {
				m.Extra = make(map[string]string)
			}
			m.Extra[k] = v
		}
		switch j := v1 + 1; {
		case j == len(s)-1:
			return true
		case s[j] != ',':
			return false
		default:
			i = j + 1
		}
	}
}

// quotedPlain reads the string that starts with a quote at s[i] and returns the bounds of its
// contents, s[from:to]; the closing quote is s[to].
func quotedPlain(s []byte, i int) (from, to int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return 0, 0, false
	}
	n := bytes.IndexByte(s[i+1:], '"')
	if n < 0 {
		return 0, 0, false
	}
	v := s[i+1 : i+1+n]
	for _, c := range v {
		if c < 0x20 {
			return 0, 0, false
		}
	}
	if !utf8.Valid(v) {
		return 0, 0, false // encoding/json replaces invalid UTF-8
	}
	return i + 1, i + 1 + n, true
}
