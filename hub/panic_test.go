package hub_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
)

// TestPanickingFilterEndsOnlyItsSubscription: a subscriber's filter that panics while the hub
// dispatches ends that subscription with an Internal error naming the panic; the hub and the
// other subscribers go on. It used to take the hub's goroutine, and the process, down.
func TestPanickingFilterEndsOnlyItsSubscription(t *testing.T) {
	t.Parallel()
	st, h := start(t)
	ctx := context.Background()
	bad := h.Subscribe(ctx, hub.Predicate(func(e *strata.Event) bool {
		if e.Type == "Boom" {
			panic("filter exploded")
		}
		return true
	}))
	errc := make(chan error, 1)
	go func() {
		for _, err := range bad {
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	everything := collect(ctx, h.Subscribe(ctx, nil), 3)
	waitSubscribers(t, h, 2)
	appendN(t, st, "certificate-1", "CertificateIssued", "Boom", "CertificateRevoked")
	if all := <-everything; len(all) != 3 {
		t.Fatalf("the other subscriber got %d events, want 3", len(all))
	}
	err := <-errc
	if strata.ErrorCode(err) != strata.Internal || !strings.Contains(err.Error(), "filter exploded") {
		t.Fatalf("the panicking subscription ended with %v, want an Internal error naming the panic", err)
	}
	if _, lagged := hub.Lagged(err); lagged {
		t.Fatalf("the panicking subscription says it lagged: %v", err)
	}
}
