package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

func (s suite) testCancellation(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	_, err := st.Append(cancelled, "certificate-2", strata.Any, ev("CertificateIssued", nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: %v, want context.Canceled", err)
	}
	_, err = st.AppendMulti(cancelled, strata.StreamAppend{Stream: "certificate-2", Expected: strata.Any, Events: []strata.EventData{ev("E", nil)}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("multi-append with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := Collect(st.ReadStream(cancelled, "certificate-1", strata.ReadStreamOptions{})); !errors.Is(err, context.Canceled) {
		t.Fatalf("read stream with a cancelled context: %v", err)
	}
	if _, err := Collect(st.ReadAll(cancelled, strata.ReadAllOptions{})); !errors.Is(err, context.Canceled) {
		t.Fatalf("read all with a cancelled context: %v", err)
	}
	if _, err := st.StreamInfo(cancelled, "certificate-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("stream info with a cancelled context: %v", err)
	}
	if _, err := Collect(st.Streams(cancelled, strata.ListStreamsOptions{})); !errors.Is(err, context.Canceled) {
		t.Fatalf("list streams with a cancelled context: %v", err)
	}
	for _, err := range st.Subscribe(cancelled, strata.Start, strata.Filter{}) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("subscribe with a cancelled context yielded %v", err)
		}
		break
	}
	if info, _ := st.StreamInfo(ctx, "certificate-2"); info.Exists {
		t.Fatalf("a cancelled append wrote events")
	}
	// A context cancelled while the append waits to commit rolls it back.
	hold := strata.WithBeforeCommit(ctx, func(ctx context.Context) error { return context.Canceled })
	if _, err := st.Append(hold, "certificate-3", strata.Any, ev("E", nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append whose commit hook failed: %v", err)
	}
	if info, _ := st.StreamInfo(ctx, "certificate-3"); info.Exists {
		t.Fatalf("an append that failed before commit left events behind")
	}
	// A context cancelled while the append's events are written, just before it commits, rolls
	// it back too: the hook succeeds, and the append fails with the context's error.
	for _, multi := range []bool{false, true} {
		cctx, cancelNow := context.WithCancel(ctx)
		hook := strata.WithBeforeCommit(cctx, func(context.Context) error { cancelNow(); return nil })
		if multi {
			_, err = st.AppendMulti(hook,
				strata.StreamAppend{Stream: "certificate-4", Expected: strata.Any, Events: []strata.EventData{ev("E", nil)}},
				strata.StreamAppend{Stream: "certificate-5", Expected: strata.Any, Events: []strata.EventData{ev("E", nil)}})
		} else {
			_, err = st.Append(hook, "certificate-4", strata.Any, ev("E", nil))
		}
		cancelNow()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("append (multi %v) whose context was cancelled before commit: %v, want context.Canceled", multi, err)
		}
		for _, name := range []string{"certificate-4", "certificate-5"} {
			if info, _ := st.StreamInfo(ctx, name); info.Exists {
				t.Fatalf("an append (multi %v) whose context was cancelled before commit wrote to %s", multi, name)
			}
		}
	}
	if n := len(allEvents(t, ctx, st)); n != 1 {
		t.Fatalf("log has %d events, want 1", n)
	}
	mustAppend(t, ctx, st, "certificate-3", strata.NoStream, ev("E", nil)) // and the stream is still free
}

func (s suite) testUseAfterClose(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil))
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	sub.next(t, ctx)
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	closed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, strata.ErrClosed) || strata.ErrorCode(err) != strata.Unavailable {
			t.Fatalf("%s after close: %v, want Unavailable wrapping ErrClosed", what, err)
		}
	}
	_, err := st.Append(ctx, "certificate-2", strata.Any, ev("E", nil))
	closed("append", err)
	_, err = st.AppendMulti(ctx, strata.StreamAppend{Stream: "x", Expected: strata.Any, Events: []strata.EventData{ev("E", nil)}})
	closed("multi-append", err)
	_, err = Collect(st.ReadStream(ctx, "certificate-1", strata.ReadStreamOptions{}))
	closed("read stream", err)
	_, err = Collect(st.ReadAll(ctx, strata.ReadAllOptions{}))
	closed("read all", err)
	_, err = st.StreamInfo(ctx, "certificate-1")
	closed("stream info", err)
	_, err = Collect(st.Streams(ctx, strata.ListStreamsOptions{}))
	closed("list streams", err)
	for _, err := range st.Subscribe(ctx, strata.Start, strata.Filter{}) {
		closed("subscribe", err)
		break
	}
	select {
	case err := <-sub.errs:
		closed("a running subscription", err)
	case <-ctx.Done():
		t.Fatalf("a running subscription did not end when the store closed")
	}
}

func (s suite) testBadInput(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	good := func() []strata.EventData { return []strata.EventData{ev("CertificateIssued", nil)} }
	dupID := uuid.Must(uuid.NewV7())
	tooMany := make([]strata.EventData, strata.MaxEventsPerAppend+1)
	for i := range tooMany {
		tooMany[i] = ev("E", nil)
	}
	huge := []byte(`"` + strings.Repeat("x", strata.MaxDataLen) + `"`)
	cases := []struct {
		name    string
		appends []strata.StreamAppend
	}{
		{"empty stream name", []strata.StreamAppend{{Stream: "", Expected: strata.Any, Events: good()}}},
		{"oversized stream name", []strata.StreamAppend{{Stream: strings.Repeat("s", strata.MaxStreamNameLen+1), Expected: strata.Any, Events: good()}}},
		{"stream name not UTF-8", []strata.StreamAppend{{Stream: "cert-\xff", Expected: strata.Any, Events: good()}}},
		{"stream name with a control character", []strata.StreamAppend{{Stream: "cert\n1", Expected: strata.Any, Events: good()}}},
		{"invalid JSON data", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E", Data: []byte(`{"a":`)}}}}},
		{"data that is not JSON at all", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E", Data: []byte("hello")}}}}},
		{"oversized data", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E", Data: huge}}}}},
		{"unknown expected version", []strata.StreamAppend{{Stream: "s", Expected: strata.ExpectedVersion{}, Events: good()}}},
		{"negative expected version", []strata.StreamAppend{{Stream: "s", Expected: strata.Exact(-1), Events: good()}}},
		{"too many events in one batch", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: tooMany}}},
		{"no events", []strata.StreamAppend{{Stream: "s", Expected: strata.Any}}},
		{"empty type", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Data: []byte(`{}`)}}}}},
		{"negative schema", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E", Schema: -1}}}}},
		{"extra metadata shadowing a field", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E", Meta: strata.Metadata{Extra: map[string]string{"tenant": "x"}}}}}}},
		{"one event ID twice", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{ID: dupID, Type: "E"}, {ID: dupID, Type: "E"}}}}},
		{"a bad event after good ones", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: append(good(), strata.EventData{Type: "E", Data: []byte("{")})}}},
		{"the same stream twice", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: good()}, {Stream: "s", Expected: strata.Any, Events: good()}}},
		{"a bad stream after a good one", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: good()}, {Stream: "", Expected: strata.Any, Events: good()}}},
		{"nothing to append", nil},
	}
	for _, c := range cases {
		var err error
		if len(c.appends) == 1 {
			_, err = st.Append(ctx, c.appends[0].Stream, c.appends[0].Expected, c.appends[0].Events...)
			wantCode(t, err, strata.Invalid, c.name)
		}
		_, err = st.AppendMulti(ctx, c.appends...)
		wantCode(t, err, strata.Invalid, c.name+" (multi)")
	}
	if all := allEvents(t, ctx, st); len(all) != 0 {
		t.Fatalf("bad input wrote %d events", len(all))
	}
	if streams := mustCollect(t, st.Streams(ctx, strata.ListStreamsOptions{})); len(streams) != 0 {
		t.Fatalf("bad input created %d streams", len(streams))
	}
	_, err := Collect(st.ReadStream(ctx, "", strata.ReadStreamOptions{}))
	wantCode(t, err, strata.Invalid, "read of an empty stream name")
	_, err = Collect(st.ReadStream(ctx, "s", strata.ReadStreamOptions{From: -1}))
	wantCode(t, err, strata.Invalid, "read from a negative version")
	_, err = Collect(st.ReadAll(ctx, strata.ReadAllOptions{Limit: -1}))
	wantCode(t, err, strata.Invalid, "read all with a negative limit")
	_, err = st.StreamInfo(ctx, strings.Repeat("s", strata.MaxStreamNameLen+1))
	wantCode(t, err, strata.Invalid, "info of an oversized stream name")
	_, err = strata.ParsePosition("12.x")
	wantCode(t, err, strata.Invalid, "parse a bad position")
	// The store still works.
	mustAppend(t, ctx, st, "s", strata.NoStream, good()...)
}

// testCloseEndsReads closes the store while reads of more than a page are under way: each
// ends with an Unavailable error wrapping strata.ErrClosed, and yields no event after Close
// has returned.
func (s suite) testCloseEndsReads(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	batch := make([]strata.EventData, 2500) // more than two pages of any backend
	for i := range batch {
		batch[i] = ev("Tick", map[string]int{"i": i})
	}
	mustAppend(t, ctx, st, "certificate-CLOSE", strata.NoStream, batch...)
	reads := map[string]func(yield func(strata.Event, error) bool){
		"read all":    st.ReadAll(ctx, strata.ReadAllOptions{}),
		"read stream": st.ReadStream(ctx, "certificate-CLOSE", strata.ReadStreamOptions{}),
		"subscribe":   st.Subscribe(ctx, strata.Start, strata.Filter{}),
	}
	type result struct {
		after int // events yielded after Close returned
		err   error
	}
	started, closed := make(chan struct{}, len(reads)), make(chan struct{})
	results := make(map[string]chan result, len(reads))
	for name, read := range reads {
		ch := make(chan result, 1)
		results[name] = ch
		go func() {
			var r result
			n := 0
			for _, err := range read {
				if err != nil {
					r.err = err
					break
				}
				if n++; n == 1 {
					started <- struct{}{}
					<-closed // hold the read after its first event until the store is closed
				} else {
					r.after++
				}
			}
			ch <- r
		}()
	}
	for range reads {
		<-started
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	close(closed)
	for name, ch := range results {
		r := <-ch
		if !errors.Is(r.err, strata.ErrClosed) || strata.ErrorCode(r.err) != strata.Unavailable {
			t.Errorf("%s under way when the store closed ended with %v, want Unavailable wrapping ErrClosed", name, r.err)
		}
		if r.after > 0 {
			t.Errorf("%s yielded %d events after the store had closed", name, r.after)
		}
	}
}
