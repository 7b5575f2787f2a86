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
// whose data (Tenant), who acted (Principal, Session), and why (Correlation, Causation). Extra
// holds any other string keys; they may not reuse a well-known name.
type Metadata struct {
	Tenant      string
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
		{MetaTenant, &m.Tenant}, {MetaPrincipal, &m.Principal}, {MetaSession, &m.Session},
		{MetaCorrelation, &m.Correlation}, {MetaCausation, &m.Causation},
		{MetaSubsystem, &m.Subsystem}, {MetaCategory, &m.Category},
	}
}

// IsWellKnownMetaKey reports whether key names one of Metadata's fields.
func IsWellKnownMetaKey(key string) bool {
	switch key {
	case MetaTenant, MetaPrincipal, MetaSession, MetaCorrelation, MetaCausation, MetaSubsystem, MetaCategory:
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
	var fixed [7]metaField
	// In key order: category < causation < correlation < principal < session < subsystem < tenant.
	fs := fixed[:0]
	for _, f := range []metaField{
		{MetaCategory, m.Category}, {MetaCausation, m.Causation}, {MetaCorrelation, m.Correlation},
		{MetaPrincipal, m.Principal}, {MetaSession, m.Session}, {MetaSubsystem, m.Subsystem}, {MetaTenant, m.Tenant},
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
// invalid UTF-8; it reports false for any other input, leaving m partly set.
func decodePlainMeta(s []byte, m *Metadata) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || bytes.IndexByte(s, '\\') >= 0 {
		return false
	}
	*m = Metadata{}
	if len(s) == 2 {
		return true
	}
	for i := 1; ; {
		k, j, ok := quotedPlain(s, i)
		if !ok || j >= len(s) || s[j] != ':' {
			return false
		}
		v, j, ok := quotedPlain(s, j+1)
		if !ok || j >= len(s) {
			return false
		}
		if _, dup := m.lookup(k); dup {
			return false // a repeated key: let encoding/json decide which one wins
		}
		m.Set(k, v)
		switch {
		case j == len(s)-1:
			return true
		case s[j] != ',':
			return false
		}
		i = j + 1
	}
}

func (m *Metadata) lookup(k string) (string, bool) {
	for _, f := range m.fields() {
		if f.key == k {
			return *f.val, *f.val != ""
		}
	}
	v, ok := m.Extra[k]
	return v, ok
}

// quotedPlain reads the string that starts with a quote at s[i] and returns it and the index
// after it.
func quotedPlain(s []byte, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	n := bytes.IndexByte(s[i+1:], '"')
	if n < 0 {
		return "", i, false
	}
	v := s[i+1 : i+1+n]
	for _, c := range v {
		if c < 0x20 {
			return "", i, false
		}
	}
	if !utf8.Valid(v) {
		return "", i, false // encoding/json replaces invalid UTF-8
	}
	return string(v), i + 2 + n, true
}
