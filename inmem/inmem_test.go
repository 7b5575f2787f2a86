package inmem_test

import (
	"context"
	"encoding/json"
	"errors"
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

// TestReadsHandOutCopies changes the events that reads return, as a caller may (an upcaster
// rewriting Data in place, a handler adding a metadata key): the stored events stay as they were
// appended, as they do on every other backend.
func TestReadsHandOutCopies(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	defer s.Close()
	in := strata.EventData{Type: "CertificateIssued", Data: json.RawMessage(`{"serial":"7F3A"}`),
		Meta: strata.Metadata{Tenant: "acme", Extra: map[string]string{"ticket": "T-9"}}}
	if _, err := s.Append(ctx, "certificate-7F3A", strata.NoStream, in); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func() []strata.Event{
		"read stream": func() []strata.Event {
			evs, _ := storetest.Collect(s.ReadStream(ctx, "certificate-7F3A", strata.ReadStreamOptions{}))
			return evs
		},
		"read all": func() []strata.Event {
			evs, _ := storetest.Collect(s.ReadAll(ctx, strata.ReadAllOptions{}))
			return evs
		},
	}
	for name, read := range reads {
		evs := read()
		if len(evs) != 1 {
			t.Fatalf("%s: %d events", name, len(evs))
		}
		evs[0].Data[2] = 'X'
		evs[0].Meta.Extra["ticket"] = "changed"
		for other, reread := range reads {
			e := reread()[0]
			if string(e.Data) != `{"serial":"7F3A"}` || e.Meta.Extra["ticket"] != "T-9" {
				t.Fatalf("changing the event of %s changed the stored one (%s reads %s %v)", name, other, e.Data, e.Meta.Extra)
			}
		}
	}
}

// TestCancelledBeforeCommitRollsBack cancels the context of an append after its events are
// written and before it commits: like the SQL backends, the append fails with the context's
// error and writes nothing.
func TestCancelledBeforeCommitRollsBack(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	defer s.Close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := s.Append(strata.WithBeforeCommit(cctx, func(context.Context) error { cancel(); return nil }),
		"certificate-1", strata.Any, strata.EventData{Type: "CertificateRevoked"})
	if !errors.Is(err, context.Canceled) || strata.ErrorCode(err) != strata.Unavailable {
		t.Fatalf("append cancelled before commit: %v, want Unavailable wrapping context.Canceled", err)
	}
	if info, _ := s.StreamInfo(ctx, "certificate-1"); info.Exists {
		t.Fatalf("the cancelled append was committed")
	}
	if evs, _ := storetest.Collect(s.ReadAll(ctx, strata.ReadAllOptions{})); len(evs) != 0 {
		t.Fatalf("the log holds %d events after a cancelled append", len(evs))
	}
}
