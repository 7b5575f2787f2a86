package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/storetest"
)

// A counter: the smallest aggregate that has state, refusals and no-op commands.
type (
	add   struct{ N int }
	reset struct{}
	added struct {
		N int `json:"n"`
	}
	wasReset struct{}
	// open starts a counter: a stream-creating command.
	open struct{ N int }
)

func (open) CommandName() string { return "counter.Open" }
func (open) CreatesStream() bool { return true }

var errOpen = errors.New("counter: already open")

func (add) CommandName() string   { return "counter.Add" }
func (reset) CommandName() string { return "counter.Reset" }

type counter struct {
	Total int `json:"total"`
	Adds  int `json:"adds"`
}

var errNegative = errors.New("counter: cannot add a negative number")

var counterDecider = aggregate.Decider[counter, aggregate.Command, any]{
	Decide: func(s counter, c aggregate.Command) ([]any, error) {
		switch c := c.(type) {
		case add:
			if c.N < 0 {
				return nil, errNegative
			}
			if c.N == 0 {
				return nil, nil
			}
			return []any{added{N: c.N}}, nil
		case open:
			if s.Adds > 0 {
				return nil, errOpen
			}
			if c.N < 0 {
				return nil, errNegative
			}
			return []any{added{N: c.N}}, nil
		case reset:
			if s.Total == 0 {
				return nil, nil
			}
			return []any{wasReset{}}, nil
		}
		return nil, fmt.Errorf("unknown command %T", c)
	},
	Evolve: func(s counter, e any) counter {
		switch e := e.(type) {
		case added:
			s.Total += e.N
			s.Adds++
		case wasReset:
			s.Total = 0
		}
		return s
	},
}

func counterRegistry(t testing.TB) *codec.Registry {
	r := codec.NewRegistry()
	if err := codec.Register[added](r, "Added", 1); err != nil {
		t.Fatal(err)
	}
	if err := codec.Register[wasReset](r, "Reset", 1); err != nil {
		t.Fatal(err)
	}
	return r
}

func newCounters(t testing.TB, opts ...aggregate.Option) (*aggregate.Repository[counter, aggregate.Command, any], *inmem.Store) {
	t.Helper()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	repo, err := aggregate.New(st, counterRegistry(t), counterDecider, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return repo, st
}

func cmd(stream string, c aggregate.Command) aggregate.Envelope[aggregate.Command] {
	return aggregate.Envelope[aggregate.Command]{ID: uuid.Must(uuid.NewV7()), Stream: stream, Command: c}
}

func TestGivenWhenThen(t *testing.T) {
	t.Parallel()
	aggregatetest.Given(counterDecider).When(add{N: 2}).Then(t, added{N: 2})
	aggregatetest.Given(counterDecider, any(added{N: 2})).When(reset{}).Then(t, wasReset{})
	aggregatetest.Given(counterDecider).When(reset{}).Then(t)
	aggregatetest.Given(counterDecider).When(add{N: -1}).ThenError(t, errNegative)
}

func TestHandleAppendsAndLoads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, st := newCounters(t)
	env := cmd("counter-1", add{N: 5})
	env.Meta = strata.Metadata{Tenant: "acme", Principal: "ops", Session: "s-1"}
	res, err := repo.Handle(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if res.State.Total != 5 || res.Version != 1 || res.Events != 1 || res.Duplicate {
		t.Fatalf("result %+v", res)
	}
	evs, err := storetest.Collect(st.ReadStream(ctx, "counter-1", strata.ReadStreamOptions{}))
	if err != nil || len(evs) != 1 {
		t.Fatalf("stream: %v %v", evs, err)
	}
	m := evs[0].Meta
	if m.Tenant != "acme" || m.Principal != "ops" || m.Session != "s-1" || m.Causation != env.ID.String() || m.Correlation != env.ID.String() {
		t.Errorf("metadata did not flow from the command: %+v", m)
	}
	if evs[0].ID != aggregate.EventID(env.ID, "counter-1", 0) {
		t.Errorf("event ID %s is not derived from the command", evs[0].ID)
	}
	// A refused command returns the decider's error and writes nothing.
	if _, err := repo.Handle(ctx, cmd("counter-1", add{N: -3})); !errors.Is(err, errNegative) {
		t.Fatalf("refusal: %v", err)
	}
	// A command that changes nothing appends nothing.
	if res, err := repo.Handle(ctx, cmd("counter-2", reset{})); err != nil || res.Version != 0 || res.Events != 0 {
		t.Fatalf("no-op: %+v %v", res, err)
	}
	if s, v, err := repo.Load(ctx, "counter-1"); err != nil || s.Total != 5 || v != 1 {
		t.Fatalf("load: %+v %d %v", s, v, err)
	}
}

func TestSameCommandTwiceAppendsNothingNew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, _ := newCounters(t)
	env := cmd("counter-1", add{N: 1})
	if _, err := repo.Handle(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, cmd("counter-1", add{N: 10})); err != nil {
		t.Fatal(err)
	}
	// The first command again, after another one: the state would accept it, but its ID was
	// handled.
	res, err := repo.Handle(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Duplicate || res.Version != 2 || res.State.Total != 11 || res.Events != 0 {
		t.Fatalf("duplicate: %+v", res)
	}
}

// TestConcurrentRetriesOfOneCommand sends one command from many callers at once, as a client
// that times out and retries would: exactly one handling appends.
func TestConcurrentRetriesOfOneCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, st := newCounters(t)
	env := cmd("counter-1", add{N: 7})
	var wg sync.WaitGroup
	results := make([]aggregate.Result[counter], 16)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() { results[i], errs[i] = repo.Handle(ctx, env) })
	}
	wg.Wait()
	appended := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		appended += results[i].Events
	}
	if appended != 1 {
		t.Fatalf("%d events appended in all, want 1", appended)
	}
	if info, _ := st.StreamInfo(ctx, "counter-1"); info.Version != 1 {
		t.Fatalf("stream at version %d", info.Version)
	}
}

// TestConcurrentCommandsRetryConflicts sends different commands to one stream at once: each
// conflict is decided again, and every command lands once.
func TestConcurrentCommandsRetryConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, _ := newCounters(t, aggregate.WithRetries(100))
	var wg sync.WaitGroup
	const n = 20
	for i := range n {
		wg.Go(func() {
			if _, err := repo.Handle(ctx, cmd("counter-1", add{N: i + 1})); err != nil {
				t.Errorf("command %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	s, v, err := repo.Load(ctx, "counter-1")
	if err != nil || s.Total != n*(n+1)/2 || v != n {
		t.Fatalf("after %d concurrent commands: %+v version %d %v", n, s, v, err)
	}
}

func TestConflictWithoutRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, st := newCounters(t, aggregate.WithRetries(0))
	if _, err := repo.Handle(ctx, cmd("counter-1", add{N: 1})); err != nil {
		t.Fatal(err)
	}
	// Another writer appends between the load and the append of the next command.
	var once sync.Once
	d := counterDecider
	d.Decide = func(s counter, c aggregate.Command) ([]any, error) {
		once.Do(func() {
			if _, err := st.Append(ctx, "counter-1", strata.Any, strata.EventData{Type: "Added", Data: []byte(`{"n":100}`)}); err != nil {
				t.Error(err)
			}
		})
		return counterDecider.Decide(s, c)
	}
	racing, err := aggregate.New(st, counterRegistry(t), d, aggregate.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = racing.Handle(ctx, cmd("counter-1", add{N: 1}))
	if !aggregate.IsVersionConflict(err) {
		t.Fatalf("want a version conflict, got %v", err)
	}
	if s, v, err := repo.Load(ctx, "counter-1"); err != nil || s.Total != 101 || v != 2 {
		t.Fatalf("after the conflict: %+v %d %v", s, v, err)
	}
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, st := newCounters(t, aggregate.WithSnapshots(10, 1))
	for i := range 25 {
		if _, err := repo.Handle(ctx, cmd("counter-1", add{N: 1})); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	snap, err := st.LoadSnapshot(ctx, "counter-1")
	if err != nil || snap.Version != 20 || snap.Schema != 1 {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
	// Loading folds the snapshot and the five events after it. Make the snapshot say something
	// the events cannot, to see that it was used.
	snap.Data = []byte(`{"total":1000,"adds":20}`)
	snap.Version = 21 // a newer snapshot replaces the stored one
	if err := st.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if s, v, err := repo.Load(ctx, "counter-1"); err != nil || s.Total != 1004 || v != 25 {
		t.Fatalf("load from snapshot: %+v %d %v", s, v, err)
	}
	// A repository with another state schema ignores it and folds everything.
	other, err := aggregate.New(st, counterRegistry(t), counterDecider, aggregate.WithSnapshots(10, 2))
	if err != nil {
		t.Fatal(err)
	}
	if s, v, err := other.Load(ctx, "counter-1"); err != nil || s.Total != 25 || v != 25 {
		t.Fatalf("load ignoring a snapshot of another schema: %+v %d %v", s, v, err)
	}
	// LoadVersion never uses a snapshot newer than asked for.
	if s, v, err := repo.LoadVersion(ctx, "counter-1", 7); err != nil || s.Total != 7 || v != 7 {
		t.Fatalf("load version 7: %+v %d %v", s, v, err)
	}
	// On demand.
	if err := other.SaveSnapshot(ctx, "counter-1"); err != nil {
		t.Fatal(err)
	}
	if snap, _ := st.LoadSnapshot(ctx, "counter-1"); snap.Version != 25 || snap.Schema != 2 {
		t.Fatalf("snapshot on demand: %+v", snap)
	}
	// A snapshot that does not decode costs a full replay, not an error.
	if err := st.SaveSnapshot(ctx, strata.Snapshot{Stream: "counter-1", Version: 26, Schema: 1, Data: []byte(`not json`)}); err != nil {
		t.Fatal(err)
	}
	if s, _, err := repo.Load(ctx, "counter-1"); err != nil || s.Total != 25 {
		t.Fatalf("load past a broken snapshot: %+v %v", s, err)
	}
}

func TestCommandLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, st := newCounters(t, aggregate.WithCommandLog(aggregate.CommandLog{Include: []string{"counter.**"}, Exclude: []string{"counter.Reset"}}))
	env := cmd("counter-1", add{N: 2})
	env.Meta.Session = "s-42"
	if _, err := repo.Handle(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, env); err != nil { // a duplicate logs nothing new
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, cmd("counter-1", add{N: -1})); !errors.Is(err, errNegative) {
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, cmd("counter-1", reset{})); err != nil { // excluded
		t.Fatal(err)
	}
	reg := counterRegistry(t)
	if err := aggregate.RegisterCommandLog(reg); err != nil {
		t.Fatal(err)
	}
	evs, err := storetest.Collect(st.ReadStream(ctx, "commands-counter-1", strata.ReadStreamOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("command log holds %d records, want 2: %v", len(evs), evs)
	}
	ok, err := reg.DecodeOne(ctx, evs[0])
	if err != nil {
		t.Fatal(err)
	}
	s := ok.Value.(aggregate.CommandSucceeded)
	if s.CommandID != env.ID || s.Command != "counter.Add" || s.FromVersion != 0 || s.ToVersion != 1 || s.Events != 1 || evs[0].Meta.Session != "s-42" {
		t.Errorf("CommandSucceeded %+v meta %+v", s, evs[0].Meta)
	}
	failed, err := reg.DecodeOne(ctx, evs[1])
	if err != nil {
		t.Fatal(err)
	}
	if f := failed.Value.(aggregate.CommandFailed); f.Command != "counter.Add" || f.Error != errNegative.Error() || f.Code != "" {
		t.Errorf("CommandFailed %+v", f)
	}
	// The success record commits with the events: both or neither.
	all, _ := storetest.Collect(st.ReadAll(ctx, strata.ReadAllOptions{}))
	if all[0].Stream != "counter-1" || all[1].Stream != "commands-counter-1" || all[0].Position.Compare(all[1].Position) >= 0 {
		t.Errorf("log order: %v", all)
	}
}

func TestMatchCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"pki.**", "pki.RevokeCertificate", true},
		{"pki.**", "pki.ca.Rotate", true},
		{"pki.**", "pki", true},
		{"pki.**", "health.Check", false},
		{"pki.*", "pki.ca.Rotate", false},
		{"pki.Revoke*", "pki.RevokeCertificate", true},
		{"pki.Revoke*", "pki.IssueCertificate", false},
		{"**", "anything.at.all", true},
		{"**.Check", "health.db.Check", true},
		{"*.Check", "health.db.Check", false},
		{"health.**", "healthz.Check", false},
	} {
		if got := aggregate.MatchCommand(c.pattern, c.name); got != c.want {
			t.Errorf("MatchCommand(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestReplayNeverPanics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, st := newCounters(t)
	// An event of an unknown type in the stream: a typed error naming it, not a panic.
	if _, err := st.Append(ctx, "counter-1", strata.NoStream, strata.EventData{Type: "Mystery", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := repo.Load(ctx, "counter-1"); !errors.Is(err, codec.ErrUnknownType) {
		t.Fatalf("load: %v", err)
	}
	// A decider that panics returns an Internal error.
	d := counterDecider
	d.Decide = func(counter, aggregate.Command) ([]any, error) { panic("bug") }
	bad, err := aggregate.New(st, counterRegistry(t), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Handle(ctx, cmd("counter-2", add{N: 1})); !errors.Is(err, strata.ErrInternal) {
		t.Fatalf("panicking decider: %v", err)
	}
}

// readCounter counts the stream reads of a store.
type readCounter struct {
	strata.Store
	mu    sync.Mutex
	reads int
}

func (r *readCounter) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	r.mu.Lock()
	r.reads++
	r.mu.Unlock()
	return r.Store.ReadStream(ctx, stream, opts)
}

func (r *readCounter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads
}

// TestCreatorSkipsTheRead checks that a stream-creating command is appended without reading
// the stream, and that the decider still decides on the real state when the guess is wrong.
func TestCreatorSkipsTheRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, retries := range []int{aggregate.DefaultRetries, 0} {
		st := &readCounter{Store: inmem.New()}
		t.Cleanup(func() { st.Close() })
		repo, err := aggregate.New(st, counterRegistry(t), counterDecider, aggregate.WithRetries(retries))
		if err != nil {
			t.Fatal(err)
		}
		first := cmd("counter-1", open{N: 3})
		res, err := repo.Handle(ctx, first)
		if err != nil || res.Version != 1 || res.State.Total != 3 || res.Events != 1 {
			t.Fatalf("retries %d: open: %+v %v", retries, res, err)
		}
		if n := st.count(); n != 0 {
			t.Fatalf("retries %d: opening a new stream read it %d times", retries, n)
		}
		// Another open of the same stream: the guess is wrong, and the decider refuses on the
		// real state, whatever the retry budget.
		if _, err := repo.Handle(ctx, cmd("counter-1", open{N: 4})); !errors.Is(err, errOpen) {
			t.Fatalf("retries %d: second open: %v, want errOpen", retries, err)
		}
		// The first command again: recognised by its ID.
		if res, err := repo.Handle(ctx, first); err != nil || !res.Duplicate || res.Version != 1 {
			t.Fatalf("retries %d: repeated open: %+v %v", retries, res, err)
		}
		// Refused on the initial state: decided again on the real one, which refuses too.
		if _, err := repo.Handle(ctx, cmd("counter-2", open{N: -1})); !errors.Is(err, errNegative) {
			t.Fatalf("retries %d: refused open: %v", retries, err)
		}
		if info, _ := st.StreamInfo(ctx, "counter-2"); info.Exists {
			t.Fatalf("retries %d: a refused open wrote", retries)
		}
		evs, err := storetest.Collect(st.ReadStream(ctx, "counter-1", strata.ReadStreamOptions{}))
		if err != nil || len(evs) != 1 {
			t.Fatalf("retries %d: stream has %d events (%v), want 1", retries, len(evs), err)
		}
	}
}
