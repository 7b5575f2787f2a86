package inmem_test

import (
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) strata.Store {
		s := inmem.New()
		t.Cleanup(func() { s.Close() })
		return s
	}, storetest.Features{SerialWriters: true, Capabilities: true})
}
