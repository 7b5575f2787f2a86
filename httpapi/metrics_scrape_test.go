package httpapi_test

import (
	"sync"
	"testing"
)

// TestMetricsScrapesShareACollection: /metrics needs no key, and collecting the store's
// metrics reads the log; scrapes at once share one collection rather than each reading.
func TestMetricsScrapesShareACollection(t *testing.T) {
	t.Parallel()
	st := newCountingStore(t)
	e := newEnv(t, st)
	before := st.reads.Load()
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if r := e.do("GET", "/metrics", "", nil); r.status != 200 {
				t.Errorf("metrics: %d", r.status)
			}
		})
	}
	wg.Wait()
	if reads := st.reads.Load() - before; reads > n/2 {
		t.Fatalf("%d scrapes at once read the log %d times", n, reads)
	}
}
