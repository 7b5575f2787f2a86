package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/storetest"
)

// TestLostRevocation runs the hub on every backend while the append with the lower position
// commits last: a live subscriber and one that catches up from the start while that append is
// still open must both get every event, in the log's order.
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
			h := hub.New(s)
			go h.Run(ctx)
			follow := func() <-chan strata.Event {
				ch := make(chan strata.Event, 16)
				go func() {
					for e, err := range h.Subscribe(ctx, nil, hub.From(strata.Start)) {
						if err != nil {
							return
						}
						ch <- e
					}
				}()
				return ch
			}
			live := follow()
			select {
			case <-live:
			case <-ctx.Done():
				t.Fatal("the hub did not deliver the first issuance")
			}

			var late <-chan strata.Event
			storetest.LostRevocation(t, ctx, s, 200*time.Millisecond, func() {
				late = follow() // catches up while the revocation is open
				time.Sleep(100 * time.Millisecond)
			})
			end := uuid.New()
			if _, err := s.Append(ctx, "end", strata.NoStream, strata.EventData{ID: end, Type: "Sentinel"}); err != nil {
				t.Fatal(err)
			}
			var log []strata.Event
			for e, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				log = append(log, e)
			}
			check := func(who string, ch <-chan strata.Event, want []strata.Event) {
				t.Helper()
				var got []strata.Event
				for len(got) == 0 || got[len(got)-1].ID != end {
					select {
					case e := <-ch:
						got = append(got, e)
					case <-ctx.Done():
						t.Fatalf("%s: got %d events and no sentinel", who, len(got))
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d events, the log holds %d: an event was skipped (the lost revocation) or repeated", who, len(got), len(want))
				}
				for i := range want {
					if got[i].ID != want[i].ID {
						t.Fatalf("%s: event %d is %s %s, the log's is %s %s", who, i, got[i].Type, got[i].Position, want[i].Type, want[i].Position)
					}
				}
			}
			check("live subscriber", live, log[1:])
			check("subscriber from the start", late, log)
		})
	}
}
