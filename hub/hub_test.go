package hub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/inmem"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"Certificate*", "CertificateIssued", true},
		{"Certificate*", "Certificate", true},
		{"*Revoked", "CertificateRevoked", true},
		{"*Revoked", "CertificateIssued", false},
		{"Cert*Rev*", "CertificateRevoked", true},
		{"Cert?", "Certs", true},
		{"Cert?", "Cert", false},
		{"?ü", "aü", true},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*b*c", "abxbxc", true},
		{"a*b*c", "abxbx", false},
		{"[", "[", true}, // no character classes: a bracket is itself
	} {
		if got := hub.Glob(c.p, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func event(typ, stream string, meta strata.Metadata, at time.Time) *strata.Event {
	return &strata.Event{Type: typ, Stream: stream, Meta: meta, RecordedAt: at, OccurredAt: at.Add(-time.Hour)}
}

func TestFilters(t *testing.T) {
	at := time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
	e := event("CertificateRevoked", "certificate-7F3A", strata.Metadata{Tenant: "acme", Principal: "ops", Session: "s-1",
		Correlation: "req-1", Subsystem: "ca", Category: "pki", Extra: map[string]string{"ticket": "T-9"}}, at)
	for _, c := range []struct {
		name string
		f    hub.Filter
		want bool
	}{
		{"all", hub.All(), true},
		{"type exact", hub.Type("CertificateRevoked"), true},
		{"type glob", hub.Type("CertificateIssued", "*Revoked"), true},
		{"type miss", hub.Type("Certificate?"), false},
		{"stream glob", hub.Stream("certificate-*"), true},
		{"stream miss", hub.Stream("crl-*"), false},
		{"tenant", hub.Tenant("other", "acme"), true},
		{"tenant miss", hub.Tenant("other"), false},
		{"principal", hub.Principal("ops"), true},
		{"session", hub.Session("s-1"), true},
		{"correlation", hub.Correlation("req-2"), false},
		{"subsystem", hub.Subsystem("ca"), true},
		{"category", hub.Category("pki"), true},
		{"extra meta", hub.Meta("ticket", "T-9"), true},
		{"recorded in range", hub.Recorded(at, at.Add(time.Second)), true},
		{"recorded end exclusive", hub.Recorded(time.Time{}, at), false},
		{"recorded open start", hub.Recorded(at.Add(-time.Minute), time.Time{}), true},
		{"occurred", hub.Occurred(at.Add(-2*time.Hour), at), true},
		{"predicate", hub.Predicate(func(e *strata.Event) bool { return strings.HasSuffix(e.Stream, "7F3A") }), true},
		{"nil predicate selects all", hub.Predicate(nil), true},
		{"and", hub.And(hub.Tenant("acme"), hub.Type("*Revoked")), true},
		{"and miss", hub.And(hub.Tenant("acme"), hub.Type("*Issued")), false},
		{"empty and", hub.And(), true},
		{"or", hub.Or(hub.Tenant("other"), hub.Type("*Revoked")), true},
		{"empty or", hub.Or(), false},
		{"not", hub.Not(hub.Category("test")), true},
		{"not not", hub.Not(hub.Not(hub.Category("pki"))), true},
		{"nested", hub.And(hub.Or(hub.Tenant("x"), hub.Not(hub.Tenant("y"))), nil, hub.Stream("cert*")), true},
	} {
		if got := c.f.Match(e); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNarrow(t *testing.T) {
	for _, c := range []struct {
		name string
		f    hub.Filter
		want strata.Filter
	}{
		{"exact types", hub.Type("A", "B"), strata.Filter{Types: []string{"A", "B"}}},
		{"glob types are not pushed", hub.Type("A*"), strata.Filter{}},
		{"tenant", hub.Tenant("acme"), strata.Filter{Tenant: "acme"}},
		{"two tenants are not pushed", hub.Tenant("a", "b"), strata.Filter{}},
		{"stream prefix", hub.Stream("certificate-*"), strata.Filter{StreamPrefix: "certificate-"}},
		{"and merges", hub.And(hub.Type("A", "B"), hub.Tenant("acme"), hub.Type("B", "C")), strata.Filter{Types: []string{"B"}, Tenant: "acme"}},
		{"or is not pushed", hub.Or(hub.Type("A"), hub.Type("B")), strata.Filter{}},
		{"not is not pushed", hub.Not(hub.Type("A")), strata.Filter{}},
	} {
		got := hub.Narrow(c.f)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: Narrow = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestSpec(t *testing.T) {
	at := time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
	e := event("CertificateRevoked", "certificate-7F3A", strata.Metadata{Tenant: "acme", Category: "pki", Extra: map[string]string{"ticket": "T-9"}}, at)
	for _, c := range []struct {
		spec string
		want bool
	}{
		{`{}`, true},
		{`{"types": ["Certificate*"], "tenants": ["acme"]}`, true},
		{`{"types": ["Certificate*"], "not": {"categories": ["pki"]}}`, false},
		{`{"or": [{"tenants": ["x"]}, {"meta": {"ticket": ["T-9"]}}]}`, true},
		{`{"recordedFrom": "2023-03-14T08:00:00Z", "recordedTo": "2023-03-14T10:00:00Z", "streams": ["certificate-*"]}`, true},
		{`{"recordedTo": "2023-03-14T09:00:00Z"}`, false},
		{`{"and": [{"types": ["CertificateRevoked"]}, {"principals": ["nobody"]}]}`, false},
	} {
		_, f, err := hub.ParseSpec([]byte(c.spec))
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if got := f.Match(e); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.spec, got, c.want)
		}
	}
	deep := strings.Repeat(`{"not":`, 40) + `{}` + strings.Repeat(`}`, 40)
	for _, bad := range []string{`{"types": []}`, `{"tenants": [""]}`, `{"or": []}`, `{"typo": 1}`, `{"meta": {"": ["x"]}}`, `[`, deep} {
		if _, _, err := hub.ParseSpec([]byte(bad)); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("ParseSpec(%.40s) = %v, want Invalid", bad, err)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{`{}`, `{"types":["A*"],"not":{"tenants":["x"]}}`, `{"or":[{"meta":{"k":["v"]}}]}`, `{"recordedFrom":"2023-01-01T00:00:00Z"}`} {
		f.Add([]byte(s))
	}
	e := event("CertificateRevoked", "certificate-7F3A", strata.Metadata{Tenant: "acme"}, time.Now())
	f.Fuzz(func(t *testing.T, b []byte) {
		_, flt, err := hub.ParseSpec(b)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		flt.Match(e)
		hub.Narrow(flt)
	})
}

// start runs a hub over a fresh in-memory store until the test ends.
func start(t *testing.T, opts ...hub.Option) (*inmem.Store, *hub.Hub) {
	t.Helper()
	st := inmem.New()
	h := hub.New(st, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return st, h
}

func appendN(t *testing.T, st strata.Store, stream string, types ...string) {
	t.Helper()
	evs := make([]strata.EventData, len(types))
	for i, typ := range types {
		evs[i] = strata.EventData{Type: typ, Meta: strata.Metadata{Tenant: "acme"}}
	}
	if _, err := st.Append(context.Background(), stream, strata.Any, evs...); err != nil {
		t.Fatal(err)
	}
}

func waitHead(t *testing.T, h *hub.Hub, pos strata.Position) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for h.Head().Less(pos) {
		if time.Now().After(deadline) {
			t.Fatalf("hub head %s never reached %s", h.Head(), pos)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitSubscribers(t *testing.T, h *hub.Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for h.Subscribers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", h.Subscribers(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// collect reads up to n events from seq in a goroutine.
func collect(ctx context.Context, seq func(func(strata.Event, error) bool), n int) <-chan []strata.Event {
	out := make(chan []strata.Event, 1)
	go func() {
		var got []strata.Event
		for e, err := range seq {
			if err != nil {
				break
			}
			got = append(got, e)
			if len(got) == n {
				break
			}
		}
		out <- got
	}()
	return out
}

func TestFanOutWithFilters(t *testing.T) {
	t.Parallel()
	st, h := start(t)
	ctx := context.Background()
	revocations := collect(ctx, h.Subscribe(ctx, hub.Type("*Revoked")), 2)
	everything := collect(ctx, h.Subscribe(ctx, nil), 5)
	waitSubscribers(t, h, 2)
	appendN(t, st, "certificate-1", "CertificateIssued", "CertificateRevoked")
	appendN(t, st, "certificate-2", "CertificateIssued", "CertificateRenewed", "CertificateRevoked")
	rs, all := <-revocations, <-everything
	if len(rs) != 2 || rs[0].Stream != "certificate-1" || rs[1].Stream != "certificate-2" {
		t.Fatalf("revocations: %v", rs)
	}
	if len(all) != 5 {
		t.Fatalf("%d events, want 5", len(all))
	}
	for i := 1; i < len(all); i++ {
		if !all[i-1].Position.Less(all[i].Position) {
			t.Fatalf("out of order: %s then %s", all[i-1].Position, all[i].Position)
		}
	}
}

// TestLaggingSubscriberResumes: a subscriber that does not keep up is cut off without slowing
// the others, reads what it holds, is told it lagged with a cursor, and resumes from the cursor
// with no event lost or repeated.
func TestLaggingSubscriberResumes(t *testing.T) {
	t.Parallel()
	st, h := start(t)
	ctx := context.Background()
	const n = 60
	fast := collect(ctx, h.Subscribe(ctx, nil, hub.Buffer(n)), n)
	slow := h.Subscribe(ctx, hub.Type("*Issued"), hub.Buffer(3))
	next, stop := pull(slow)
	defer stop()
	// The slow subscriber registers when first pulled; take one event to be sure it is live.
	first := make(chan strata.Event, 1)
	go func() {
		e, _, _ := next()
		first <- e
	}()
	waitSubscribers(t, h, 2)
	types := make([]string, n)
	for i := range types {
		types[i] = []string{"CertificateIssued", "CertificateRevoked"}[i%2]
	}
	appendN(t, st, "certificate-1", types...)
	if got := <-fast; len(got) != n {
		t.Fatalf("the fast subscriber got %d of %d events", len(got), n)
	}
	waitHead(t, h, strata.Position{Commit: n, Event: n})
	var got []strata.Event
	got = append(got, <-first)
	var lagErr error
	for {
		e, err, ok := next()
		if !ok {
			break
		}
		if err != nil {
			lagErr = err
			break
		}
		got = append(got, e)
	}
	cursor, lagged := hub.Lagged(lagErr)
	if !lagged || !errors.Is(lagErr, strata.ErrUnavailable) {
		t.Fatalf("the slow subscriber ended with %v, want a lag", lagErr)
	}
	if len(got) == 0 || len(got) > 5 || cursor != got[len(got)-1].Position {
		t.Fatalf("before the lag: %d events, cursor %s", len(got), cursor)
	}
	// Resume: the rest of history from the store, then live.
	resumed := collect(ctx, h.Subscribe(ctx, hub.Type("*Issued"), hub.From(cursor)), n/2-len(got)+1)
	waitSubscribers(t, h, 1)
	appendN(t, st, "certificate-2", "CertificateIssued")
	got = append(got, <-resumed...)
	if len(got) != n/2+1 {
		t.Fatalf("%d issuances in all, want %d", len(got), n/2+1)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Position.Less(got[i].Position) || got[i].Type != "CertificateIssued" {
			t.Fatalf("event %d: %s %s after %s", i, got[i].Type, got[i].Position, got[i-1].Position)
		}
	}
}

// pull turns a sequence into a next function (like iter.Pull2, which needs a matching type).
func pull(seq func(func(strata.Event, error) bool)) (func() (strata.Event, error, bool), func()) {
	type item struct {
		e   strata.Event
		err error
	}
	ch := make(chan item)
	quit := make(chan struct{})
	go func() {
		defer close(ch)
		for e, err := range seq {
			select {
			case ch <- item{e, err}:
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() (strata.Event, error, bool) {
			it, ok := <-ch
			return it.e, it.err, ok
		}, func() {
			once.Do(func() { close(quit) })
		}
}

// TestReplayJoinsLive: a subscriber from the start, while writers append, gets every event
// exactly once and in order, across the switch from the store to the live feed.
func TestReplayJoinsLive(t *testing.T) {
	t.Parallel()
	st, h := start(t)
	ctx := context.Background()
	const writers, per = 4, 50
	for i := range per {
		appendN(t, st, fmt.Sprintf("history-%d", i%3), "CertificateIssued")
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range per {
				appendN(t, st, fmt.Sprintf("live-%d", w), "CertificateIssued")
			}
		})
	}
	got := <-collect(ctx, h.Subscribe(ctx, nil, hub.From(strata.Start)), per*(writers+1))
	wg.Wait()
	if len(got) != per*(writers+1) {
		t.Fatalf("%d events, want %d", len(got), per*(writers+1))
	}
	for i, e := range got {
		if e.Position != (strata.Position{Commit: uint64(i + 1), Event: uint64(i + 1)}) {
			t.Fatalf("event %d at %s: a gap or a repeat", i, e.Position)
		}
	}
}

func TestStopEndsSubscriptions(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	defer st.Close()
	h := hub.New(st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	ended := make(chan error, 1)
	go func() {
		for _, err := range h.Subscribe(context.Background(), nil) {
			if err != nil {
				ended <- err
				return
			}
		}
	}()
	waitSubscribers(t, h, 1)
	cancel()
	<-done
	if err := <-ended; !errors.Is(err, hub.ErrStopped) {
		t.Fatalf("subscription ended with %v, want ErrStopped", err)
	}
	if err := h.Run(context.Background()); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("second Run = %v, want Invalid", err)
	}
}
