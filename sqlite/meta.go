package sqlite

import "github.com/strata-events/strata"

// encodeMeta returns the canonical JSON of m that the meta column stores.
func encodeMeta(m *strata.Metadata) string {
	b, _ := m.MarshalJSON() // never fails
	return string(b)
}
