package shred_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
)

// countingKeys counts the reads of subject's key.
type countingKeys struct {
	*pausingKeys
	counted string
	reads   atomic.Int32
}

func (s *countingKeys) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	if subject == s.counted {
		s.reads.Add(1)
	}
	return s.pausingKeys.SubjectKey(ctx, tenant, subject)
}

// TestReadingAnErasedKeyKeepsLiveKeysCached checks that a tombstone read from the store (a
// subject erased elsewhere) while a live key is being read does not keep the live key out of
// the cache: only an erasure made here may.
func TestReadingAnErasedKeyKeepsLiveKeysCached(t *testing.T) {
	ctx := context.Background()
	mem := inmem.New()
	t.Cleanup(func() { mem.Close() })
	st := &countingKeys{pausingKeys: &pausingKeys{Store: mem}, counted: "bob"}
	kek := mustKEK(t)
	newReg := func() (*codec.Registry, *shred.Protector) {
		p, err := shred.New(ctx, st, kek, shred.WithKeyCache(10, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		reg := codec.NewRegistry()
		reg.Use(p)
		if err := codec.Register[issued](reg, "Issued", 1); err != nil {
			t.Fatal(err)
		}
		return reg, p
	}
	reg, _ := newReg()
	other, otherP := newReg() // another process
	encode := func(subject string) strata.Event {
		v := sample()
		v.SubjectID = subject
		d, err := other.Encode(ctx, v, strata.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		return strata.Event{ID: d.ID, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
	}
	bob, carol := encode("bob"), encode("carol")
	if _, err := otherP.Erase(ctx, "carol", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	reading, proceed := make(chan struct{}), make(chan struct{})
	st.subject, st.reading, st.proceed = "bob", reading, proceed
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := reg.DecodeOne(ctx, bob); err != nil { // reads bob's live key, then waits
			t.Error(err)
		}
	}()
	<-reading
	if _, err := reg.DecodeOne(ctx, carol); err != nil { // reads carol's tombstone
		t.Fatal(err)
	}
	close(proceed)
	<-done
	before := st.reads.Load()
	if _, err := reg.DecodeOne(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if n := st.reads.Load() - before; n != 0 {
		t.Fatalf("bob's live key was read from the store %d more times: it was not cached", n)
	}
}
