package transmit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/storetest"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
)

// recordingSink confirms every message and keeps their IDs, in the order sent.
type recordingSink struct {
	mu  sync.Mutex
	ids []string
}

func (s *recordingSink) Send(_ context.Context, batch []*transmit.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range batch {
		s.ids = append(s.ids, m.ID())
	}
	return nil
}

func (s *recordingSink) Close() error { return nil }

func (s *recordingSink) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

// TestLostRevocation runs a transmitter on every backend while the append with the lower
// position commits last: the destination must get every event, in the log's order.
func TestLostRevocation(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			s, _ := backends.Open(t, kind)
			if _, err := s.Append(ctx, "certificate-A", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
				t.Fatal(err)
			}
			sink := &recordingSink{}
			tr, err := transmit.New(s, "audit", sink, transmittest.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			transmittest.Start(t, tr)
			waitSent := func(what string, n int) []string {
				t.Helper()
				for {
					if got := sink.sent(); len(got) >= n {
						return got
					}
					select {
					case <-ctx.Done():
						t.Fatalf("the destination got %d messages waiting for %s, want %d", len(sink.sent()), what, n)
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			waitSent("the first issuance", 1)

			storetest.LostRevocation(t, ctx, s, 300*time.Millisecond, nil)
			end := uuid.New()
			if _, err := s.Append(ctx, "end", strata.NoStream, strata.EventData{ID: end, Type: "Sentinel"}); err != nil {
				t.Fatal(err)
			}
			var want []string
			for e, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, e.ID.String())
			}
			var got []string
			for n := 1; len(got) == 0 || got[len(got)-1] != end.String(); n++ {
				got = waitSent("the sentinel", n)
			}
			if len(got) != len(want) {
				t.Fatalf("the destination got %d messages, the log holds %d events: an event was skipped (the lost revocation) or repeated", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("message %d is event %s, the log's event %d is %s", i, got[i], i, want[i])
				}
			}
		})
	}
}
