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

// pausingKeys is an in-memory store whose first SubjectKey of subject, once armed, stops after
// reading the key until proceed is closed, telling reading.
type pausingKeys struct {
	*inmem.Store
	subject          string
	reading, proceed chan struct{}
}

func (s *pausingKeys) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	k, err := s.Store.SubjectKey(ctx, tenant, subject)
	if subject == s.subject && s.reading != nil {
		r := s.reading
		s.reading = nil
		close(r)
		<-s.proceed
	}
	return k, err
}

// TestEraseDuringAKeyReadStays checks that a data key read from the store before an erasure,
// and put in the cache after it, does not make the subject readable again in the erasing
// process, even once the cache no longer holds the erased entry.
func TestEraseDuringAKeyReadStays(t *testing.T) {
	ctx := context.Background()
	st := &pausingKeys{Store: inmem.New()}
	t.Cleanup(func() { st.Close() })
	reg, p := keyCacheRegistry(t, st, mustKEK(t), 1)
	encode := func(subject string) strata.Event { return issuedOf(t, reg, subject) }
	decode := func(e strata.Event) issued {
		m, err := reg.DecodeOne(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return m.Value.(issued)
	}
	alice, bob := encode("alice"), encode("bob") // bob's key evicts alice's
	reading, proceed := make(chan struct{}), make(chan struct{})
	st.subject, st.reading, st.proceed = "alice", reading, proceed
	done := make(chan issued)
	go func() {
		m, err := reg.DecodeOne(ctx, alice) // reads alice's live key, then waits
		if err != nil {
			t.Error(err)
		}
		done <- m.Value.(issued)
	}()
	<-reading
	if _, err := p.Erase(ctx, "alice", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	decode(bob) // bob's key evicts alice's erased entry
	close(proceed)
	<-done // a read under way when the key was erased may still see the data
	if got := decode(alice); got.DN != shred.Redacted {
		t.Fatalf("after the erasure, alice's subjectDN reads %q", got.DN)
	}
}

// keyCacheRegistry returns a Protector over st with a key cache of size, and a registry of
// issued through it.
func keyCacheRegistry(t *testing.T, st strata.Store, kek shred.KeyProvider, size int) (*codec.Registry, *shred.Protector) {
	t.Helper()
	p, err := shred.New(context.Background(), st, kek, shred.WithKeyCache(size, time.Minute))
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

// issuedOf encodes sample() for subject through reg, as an event read back would hold it.
func issuedOf(t *testing.T, reg *codec.Registry, subject string) strata.Event {
	t.Helper()
	v := sample()
	v.SubjectID = subject
	d, err := reg.Encode(context.Background(), v, strata.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return strata.Event{ID: d.ID, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
}

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
	reg, _ := keyCacheRegistry(t, st, kek, 10)
	other, otherP := keyCacheRegistry(t, st, kek, 10) // another process
	bob, carol := issuedOf(t, other, "bob"), issuedOf(t, other, "carol")
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
