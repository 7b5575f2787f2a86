// Package metadec decodes the stored metadata of consecutive events, which in a log mostly
// repeat: a run of one writer's events shares its tenant, principal and correlation.
package metadec

import (
	"bytes"

	"github.com/strata-events/strata"
)

// Decoder decodes metadata JSON, reusing the previous result when the bytes repeat. Its zero
// value is ready. It is not safe for concurrent use; a read uses one per page.
type Decoder struct {
	raw  []byte
	last strata.Metadata
	ok   bool
}

// Decode sets *m to the metadata that raw encodes (canonical JSON). Events
// share the strings of a repeated result, which are immutable; a result with Extra keys is
// decoded afresh every time, so that no two events share a map.
func (d *Decoder) Decode(m *strata.Metadata, raw []byte) error {
	if d.ok && d.last.Extra == nil && bytes.Equal(raw, d.raw) {
		*m = d.last
		return nil
	}
	*m = strata.Metadata{}
	if err := m.UnmarshalJSON(raw); err != nil {
		d.ok = false
		return err
	}
	d.raw = append(d.raw[:0], raw...)
	d.last, d.ok = *m, true
	return nil
}
