// Package metadec decodes the stored metadata of consecutive events, which in a log mostly
// repeat: a run of one writer's events shares its tenant, principal and correlation, and the
// events of a few writers, or of a few data subjects, interleave.
package metadec

import (
	"bytes"

	"github.com/strata-events/strata"
)

const (
	// recentSize bounds the metadata a Decoder remembers besides the last: once full, it
	// starts afresh.
	recentSize = 64
	// probeEvery is how many decodes of metadata that differs from the last one's make up a
	// test of the recent ones: a test that finds fewer than one in probeHits remembered stops
	// the remembering for the rest of the Decoder's page, where metadata rarely repeats (a
	// correlation per command).
	probeEvery, probeHits = 128, 8
)

// Decoder decodes metadata JSON, reusing an earlier result when the bytes repeat: the last
// one's, or one of the last recentSize distinct ones'. Its zero value is ready. It is not
// safe for concurrent use; the backends use one per page of a read (up to 1,000 events).
type Decoder struct {
	raw  []byte
	last strata.Metadata
	ok   bool

	recent       map[string]strata.Metadata
	misses, hits int
	off          bool
}

// Decode sets *m to the metadata that raw encodes (canonical JSON). Events share the strings
// of a repeated result, which are immutable; a result with Extra keys is decoded afresh every
// time, so that no two events share a map.
func (d *Decoder) Decode(m *strata.Metadata, raw []byte) error {
	if d.ok && d.last.Extra == nil && bytes.Equal(raw, d.raw) {
		*m = d.last
		return nil
	}
	if !d.off && d.recent != nil {
		if r, ok := d.recent[string(raw)]; ok {
			d.hits++
			*m = r
			d.remember(raw, r)
			return nil
		}
	}
	*m = strata.Metadata{}
	if err := m.UnmarshalJSON(raw); err != nil {
		d.ok = false
		return err
	}
	d.remember(raw, *m)
	if !d.off && m.Extra == nil {
		if d.misses++; d.misses+d.hits >= probeEvery {
			d.off = d.hits*probeHits < d.misses+d.hits
			d.misses, d.hits = 0, 0
		}
		if !d.off {
			if d.recent == nil || len(d.recent) >= recentSize {
				d.recent = make(map[string]strata.Metadata, recentSize)
			}
			d.recent[string(raw)] = *m
		}
	}
	return nil
}

// remember makes m, decoded from raw, the last result.
func (d *Decoder) remember(raw []byte, m strata.Metadata) {
	d.raw = append(d.raw[:0], raw...)
	d.last, d.ok = m, true
}
