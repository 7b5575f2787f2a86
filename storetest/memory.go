package storetest

import (
	"runtime"
	"strings"
	"testing"

	"github.com/strata-events/strata"
)

// testFlatMemory reads and follows a log several times larger than the allowed heap growth: a
// backend that buffers the whole result, or leaks per event, fails.
func (s suite) testFlatMemory(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const (
		events  = 32_000
		payload = 1 << 10
		batch   = 1000
		// The log holds about 32 MiB of payload; a streaming reader needs one page of it.
		allowed = 12 << 20
	)
	data := []byte(`{"pad":"` + strings.Repeat("x", payload-10) + `"}`)
	b := make([]strata.EventData, batch)
	for i := range events / batch {
		for j := range b {
			b[j] = strata.EventData{Type: "Padded", Data: data}
		}
		mustAppend(t, ctx, st, certStream(i), strata.NoStream, b...)
	}

	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	check := func(what string, seq func(yield func(strata.Event, error) bool)) {
		t.Helper()
		base := live()
		var peak uint64
		n := 0
		for e, err := range seq {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if len(e.Data) != len(data) {
				t.Fatalf("%s: event %d has %d bytes of data", what, n, len(e.Data))
			}
			n++
			if n%4000 == 0 {
				peak = max(peak, live())
			}
			if n == events {
				break
			}
		}
		if n != events {
			t.Fatalf("%s: %d events, want %d", what, n, events)
		}
		if peak > base && peak-base > allowed {
			t.Fatalf("%s: live heap grew by %d MiB while streaming %d MiB; want less than %d MiB", what, (peak-base)>>20, events*payload>>20, allowed>>20)
		}
		t.Logf("%s: live heap grew by at most %d KiB over %d events", what, int64(peak-base)>>10, n)
	}
	check("read all", st.ReadAll(ctx, strata.ReadAllOptions{}))
	check("subscribe", st.Subscribe(ctx, strata.Start, strata.Filter{}))
}
