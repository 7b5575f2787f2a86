package transmittest

import (
	"os"
	"strconv"
	"testing"
)

// Count is how many events the delivery scenario sends: 100,000, or 10,000 under the race
// detector (which slows everything about tenfold) or -short; STRATA_TEST_TRANSMIT_COUNT
// overrides both.
func Count(t testing.TB) int {
	if v, err := strconv.Atoi(os.Getenv("STRATA_TEST_TRANSMIT_COUNT")); err == nil && v > 0 {
		return v
	}
	if raceEnabled || testing.Short() {
		return 10_000
	}
	return 100_000
}
