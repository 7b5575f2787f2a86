package sqlite

import "github.com/strata-events/strata"

// encodeMeta returns the canonical JSON of m that the meta column stores.
func encodeMeta(m *strata.Metadata) string {
	b, _ := m.MarshalJSON() // never fails
	return string(b)
}

// decodeMeta reads the meta column into m.
func decodeMeta(b []byte, m *strata.Metadata) error {
	*m = strata.Metadata{}
	return m.UnmarshalJSON(b)
}
