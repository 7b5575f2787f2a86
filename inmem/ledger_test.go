package inmem

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger/ledgertest"
)

// The in-memory store's tamper hooks edit its log directly.

func (s *Store) tamper(e strata.Event, fn func(i int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.ids[e.ID])
}

func TestLedger(t *testing.T) {
	newStore := func(t testing.TB) strata.Store { s := New(); t.Cleanup(func() { s.Close() }); return s }
	ledgertest.Run(t, newStore)
	ledgertest.RunTamper(t, newStore, ledgertest.Tamper{
		EditData: func(t testing.TB, st strata.Store, e strata.Event, data []byte) {
			st.(*Store).tamper(e, func(i int) { st.(*Store).log[i].Data = data })
		},
		CopyMeta: func(t testing.TB, st strata.Store, to, from strata.Event) {
			st.(*Store).tamper(to, func(i int) { st.(*Store).log[i].Meta = from.Meta })
		},
		Delete: func(t testing.TB, st strata.Store, e strata.Event) {
			s := st.(*Store)
			s.mu.Lock()
			defer s.mu.Unlock()
			i := s.ids[e.ID]
			s.log = append(s.log[:i:i], s.log[i+1:]...)
			s.reindex()
		},
		Swap: func(t testing.TB, st strata.Store, a, b strata.Event) {
			s := st.(*Store)
			s.mu.Lock()
			defer s.mu.Unlock()
			i, j := s.ids[a.ID], s.ids[b.ID]
			s.log[i], s.log[j] = s.log[j], s.log[i]
			s.reindex()
		},
		InsertAfter: func(t testing.TB, st strata.Store, after strata.Event, id uuid.UUID) {
			s := st.(*Store)
			s.mu.Lock()
			defer s.mu.Unlock()
			i := s.ids[after.ID]
			e := s.log[i]
			e.ID, e.Stream, e.Version = id, "certificate-EVIL", 1
			s.log = append(s.log[:i+1:i+1], append([]strata.Event{e}, s.log[i+1:]...)...)
			s.reindex()
		},
	})
}

// reindex renumbers positions and rebuilds the indexes after a tamper hook moved events.
func (s *Store) reindex() {
	s.ids = make(map[uuid.UUID]int, len(s.log))
	s.streams = make(map[string]*streamInfo)
	for i := range s.log {
		e := &s.log[i]
		e.Position = strata.Position{Commit: uint64(i + 1), Event: uint64(i + 1)}
		s.ids[e.ID] = i
		si := s.streams[e.Stream]
		if si == nil {
			si = &streamInfo{}
			s.streams[e.Stream] = si
		}
		for int64(len(si.positions)) < e.Version {
			si.positions = append(si.positions, -1)
		}
		si.positions[e.Version-1] = i
	}
	for _, si := range s.streams { // a stream reads up to its first missing version
		if i := slices.Index(si.positions, -1); i >= 0 {
			si.positions = si.positions[:i]
		}
	}
}
