package aggregate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
)

// A card holds personal data in its state: its snapshots must be protected.
type (
	setName struct{ Name string }
	nameSet struct {
		Holder string `json:"holder"`
		Name   string `json:"name"`
	}
	card struct {
		Holder string `json:"holder" strata:"subject"`
		Name   string `json:"name" strata:"sensitive"`
		Sets   int    `json:"sets"`
	}
)

func (setName) CommandName() string { return "card.SetName" }

var cardDecider = aggregate.Decider[card, aggregate.Command, any]{
	Decide: func(s card, c aggregate.Command) ([]any, error) {
		return []any{nameSet{Holder: "holder-1", Name: c.(setName).Name}}, nil
	},
	Evolve: func(s card, e any) card {
		if e, ok := e.(nameSet); ok {
			s.Holder, s.Name = e.Holder, e.Name
			s.Sets++
		}
		return s
	},
}

// fakeProtector is a codec transform that leaves events alone and "seals" snapshots by
// reversing their bytes behind a prefix; erased makes OpenSnapshot report the subject erased.
type fakeProtector struct {
	erased       bool
	seals, opens int
}

func (*fakeProtector) Encode(context.Context, any, *codec.Record) error { return nil }
func (*fakeProtector) Decode(context.Context, *codec.Record) error      { return nil }

func (p *fakeProtector) SealSnapshot(_ context.Context, state any, s *strata.Snapshot) error {
	if _, ok := state.(card); !ok {
		return fmt.Errorf("sealing a %T", state)
	}
	p.seals++
	s.Data = append([]byte("sealed:"), reversed(s.Data)...)
	return nil
}

func (p *fakeProtector) OpenSnapshot(_ context.Context, state any, s *strata.Snapshot) (bool, error) {
	if _, ok := state.(*card); !ok {
		return false, fmt.Errorf("opening as %T", state)
	}
	p.opens++
	if p.erased {
		return false, nil
	}
	rest, ok := bytes.CutPrefix(s.Data, []byte("sealed:"))
	if !ok {
		return false, errors.New("not sealed")
	}
	s.Data = reversed(rest)
	return true, nil
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

func cardRepo(t *testing.T, st *inmem.Store, p *fakeProtector) *aggregate.Repository[card, aggregate.Command, any] {
	t.Helper()
	reg := codec.NewRegistry()
	if err := codec.Register[nameSet](reg, "NameSet", 1); err != nil {
		t.Fatal(err)
	}
	if p != nil {
		reg.Use(p)
	}
	repo, err := aggregate.New(st, reg, cardDecider, aggregate.WithSnapshots(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// TestSnapshotsOfSensitiveStates: a state with fields tagged strata:"sensitive" is snapshotted
// only through the registry's SnapshotProtector; without one nothing is saved in clear and a
// stored snapshot is not trusted; a snapshot whose subject was erased is deleted and the stream
// folded from its events.
func TestSnapshotsOfSensitiveStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })

	// Without a protector: the command succeeds, no snapshot is written.
	plain := cardRepo(t, st, nil)
	if _, err := plain.Handle(ctx, cmd("card-1", setName{Name: "Ada Lovelace"})); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadSnapshot(ctx, "card-1"); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("a snapshot of a sensitive state was saved without a protector: %v", err)
	}
	if err := plain.SaveSnapshot(ctx, "card-1"); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("SaveSnapshot without a protector: %v", err)
	}

	// With one: sealed on save, opened on load.
	p := &fakeProtector{}
	repo := cardRepo(t, st, p)
	if _, err := repo.Handle(ctx, cmd("card-1", setName{Name: "Ada King"})); err != nil {
		t.Fatal(err)
	}
	snap, err := st.LoadSnapshot(ctx, "card-1")
	if err != nil || !bytes.HasPrefix(snap.Data, []byte("sealed:")) || bytes.Contains(snap.Data, []byte("Ada")) || p.seals != 1 {
		t.Fatalf("snapshot %q %v (seals %d)", snap.Data, err, p.seals)
	}
	// Make the snapshot say something the events cannot, to see that it is used.
	snap.Data = append([]byte("sealed:"), reversed([]byte(`{"holder":"holder-1","name":"Ada King","sets":40}`))...)
	if err := st.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if s, v, err := repo.Load(ctx, "card-1"); err != nil || s.Sets != 40 || v != 2 || p.opens != 1 {
		t.Fatalf("load through the protector: %+v %d %v (opens %d)", s, v, err, p.opens)
	}
	// A repository without the protector does not trust it: it folds the events.
	if s, _, err := plain.Load(ctx, "card-1"); err != nil || s.Sets != 2 {
		t.Fatalf("load without the protector: %+v %v", s, err)
	}

	// The subject is erased: the snapshot is dropped and the events folded.
	p.erased = true
	if s, v, err := repo.Load(ctx, "card-1"); err != nil || s.Sets != 2 || v != 2 || s.Name != "Ada King" {
		t.Fatalf("load after erasure: %+v %d %v", s, v, err)
	}
	if _, err := st.LoadSnapshot(ctx, "card-1"); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("the snapshot of an erased subject was kept: %v", err)
	}
}
