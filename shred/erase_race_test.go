package shred_test

import (
	"context"
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
	p, err := shred.New(ctx, st, mustKEK(t), shred.WithKeyCache(1, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	reg := codec.NewRegistry()
	reg.Use(p)
	if err := codec.Register[issued](reg, "Issued", 1); err != nil {
		t.Fatal(err)
	}
	encode := func(subject string) strata.Event {
		v := sample()
		v.SubjectID = subject
		d, err := reg.Encode(ctx, v, strata.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		return strata.Event{ID: d.ID, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
	}
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
