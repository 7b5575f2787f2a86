package aggregate_test

import (
	"context"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
)

// draftDoc's initial state is not its zero value, and its JSON omits the empty status.
type draftDoc struct {
	Status string `json:"status,omitempty"`
}

type publishDoc struct{}

func (publishDoc) CommandName() string { return "publishDoc" }

type docPublished struct{}

var draftDecider = aggregate.Decider[draftDoc, aggregate.Command, any]{
	Initial: func() draftDoc { return draftDoc{Status: "draft"} },
	Decide: func(s draftDoc, c aggregate.Command) ([]any, error) {
		if s.Status == "" {
			return nil, nil
		}
		return []any{docPublished{}}, nil
	},
	Evolve: func(s draftDoc, e any) draftDoc {
		if _, ok := e.(docPublished); ok {
			s.Status = ""
		}
		return s
	},
}

// TestSnapshotIsTheSavedState: a snapshot loads as the state that was saved, not laid over the
// decider's initial state, whose fields the saved JSON omits (a cleared status came back).
func TestSnapshotIsTheSavedState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	reg := codec.NewRegistry()
	if err := codec.Register[docPublished](reg, "DocPublished", 1); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.New(st, reg, draftDecider, aggregate.WithSnapshots(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, cmd("doc-1", publishDoc{})); err != nil {
		t.Fatal(err)
	}
	if snap, err := st.LoadSnapshot(ctx, "doc-1"); err != nil || snap.Version != 1 {
		t.Fatalf("snapshot %+v %v", snap, err)
	}
	fresh, err := aggregate.New(st, reg, draftDecider, aggregate.WithSnapshots(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if s, v, err := fresh.Load(ctx, "doc-1"); err != nil || s.Status != "" || v != 1 {
		t.Fatalf("load from the snapshot: %+v %d %v, want the published (empty) status", s, v, err)
	}
}

// TestInitialPanicIsRefused: a decider whose Initial panics is refused when the repository is
// made, rather than crashing the process at the first Load or Handle.
func TestInitialPanicIsRefused(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	defer st.Close()
	d := draftDecider
	d.Initial = func() draftDoc { panic("no initial state") }
	if _, err := aggregate.New(st, codec.NewRegistry(), d); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("a decider whose Initial panics: %v, want Invalid", err)
	}
}
