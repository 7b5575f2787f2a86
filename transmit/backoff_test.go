package transmit

import (
	"math"
	"testing"
	"time"
)

// TestBackoffNeverOverflows: a maxDelay near the largest duration ("100000d" is accepted) must
// not wrap the doubled wait around to a negative one, which would retry at once, round after
// round.
func TestBackoffNeverOverflows(t *testing.T) {
	for _, c := range []struct{ delay, maxDelay time.Duration }{
		{time.Second, 100_000 * 24 * time.Hour},
		{time.Hour, math.MaxInt64},
		{5 << 60, math.MaxInt64},
	} {
		tr := &Transmitter{}
		WithRetry(5, c.delay, c.maxDelay, true)(tr)
		prev := time.Duration(0)
		for n := 1; n <= 80; n++ {
			d := tr.backoff(n)
			if d < c.delay/2 || d > c.maxDelay {
				t.Fatalf("retryDelay %s, maxDelay %s: round %d waits %s, want between %s and %s", c.delay, c.maxDelay, n, d, c.delay/2, c.maxDelay)
			}
			if d < prev/2 {
				t.Fatalf("retryDelay %s, maxDelay %s: round %d waits %s, shorter than half of round %d's %s", c.delay, c.maxDelay, n, d, n-1, prev)
			}
			prev = d
		}
	}
}
