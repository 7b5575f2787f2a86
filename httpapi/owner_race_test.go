package httpapi_test

import (
	"context"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/strata-events/strata"
)

// racyStore runs hook once, right after the owner lookup of stream has read the store (and
// found it empty), before the lookup returns: the interleaving of a concurrent writer.
type racyStore struct {
	strata.Store
	strata.APIKeyStore
	stream string
	hook   atomic.Pointer[func()]
}

func (s *racyStore) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	inner := s.Store.ReadStream(ctx, stream, opts)
	if stream != s.stream || opts.Limit != 1 {
		return inner
	}
	return func(yield func(strata.Event, error) bool) {
		type item struct {
			e   strata.Event
			err error
		}
		var got []item
		for e, err := range inner {
			got = append(got, item{e, err})
		}
		if h := s.hook.Swap(nil); h != nil {
			(*h)()
		}
		for _, it := range got {
			if !yield(it.e, it.err) {
				return
			}
		}
	}
}

// A writer of tenant acme that appends with expected "exists" (or a version) while tenant
// umbrella creates the stream must not get its event into umbrella's stream.
func TestAppendRaceIntoAForeignStream(t *testing.T) {
	for _, exp := range []any{"exists", 1} {
		base := openSQLite(t)
		rs := &racyStore{Store: base, APIKeyStore: base.(strata.APIKeyStore), stream: "contested"}
		e := newEnv(t, rs)
		h := func() {
			if _, err := base.Append(context.Background(), "contested", strata.NoStream,
				strata.EventData{Type: "Owned", Data: []byte(`{"by":"umbrella"}`), Meta: strata.Metadata{Tenant: "umbrella"}}); err != nil {
				t.Errorf("umbrella append: %v", err)
			}
		}
		rs.hook.Store(&h)
		r := e.do("POST", "/v1/streams/contested/events", e.keys["acme/writer"], appendBody(exp, event("Injected", map[string]any{"by": "acme"})))
		if r.status != 403 && r.status != 409 {
			t.Errorf("expected=%v: acme append: %d %s, want 403 or 409", exp, r.status, r.body)
		}
		for ev, err := range base.ReadStream(context.Background(), "contested", strata.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Meta.Tenant != "umbrella" {
				t.Errorf("expected=%v: umbrella's stream holds event v%d of tenant %q: %s", exp, ev.Version, ev.Meta.Tenant, ev.Data)
			}
		}
	}
}
