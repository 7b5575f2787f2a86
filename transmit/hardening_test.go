package transmit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
)

// A dead letter put back (dlq retry) lies behind the checkpoint. If its re-send fails
// transiently and the transmitter stops before it succeeds, its record must stay pending, so
// that the next run sends it; recorded "failed", nothing would read it again.
func TestRequeuedDeadLetterSurvivesARestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
		t.Fatal(err)
	}
	var mode, unavailable atomic.Int32 // mode 0 rejects, 1 fails transiently, 2 delivers
	sink := &memSink{fail: func(*transmit.Message) error {
		switch mode.Load() {
		case 0:
			return transmit.Reject(errors.New("bad"))
		case 1:
			unavailable.Add(1)
			return transmit.Unavailable("test", errors.New("connection refused"))
		}
		return nil
	}}
	opts := []transmit.Option{transmit.WithRetry(0, 50*time.Millisecond, 50*time.Millisecond, false),
		transmit.WithPendingPoll(10 * time.Millisecond), transmittest.Quiet()}
	tr, err := transmit.New(st, "dlq", sink, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "dlq", "dead", func(s strata.TransmitterState) bool { return s.Dead == 1 })
	dead, err := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "dlq", Status: strata.DeliveryDead})
	if err != nil || len(dead) != 1 {
		t.Fatal(dead, err)
	}
	mode.Store(1)
	if n, err := st.RequeueDeliveries(ctx, "dlq", []uuid.UUID{dead[0].EventID}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	for unavailable.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stop() // a clean stop while the re-send is retried
	ds, err := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "dlq"})
	if err != nil || len(ds) != 1 || ds[0].Status != strata.DeliveryPending {
		t.Fatalf("after a stop mid-retry, the requeued dead letter's record is %+v, %v; want it pending", ds, err)
	}
	mode.Store(2)
	tr2, err := transmit.New(st, "dlq", sink, opts...)
	if err != nil {
		t.Fatal(err)
	}
	transmittest.Start(t, tr2)
	transmittest.WaitState(t, st, "dlq", "sent", func(s strata.TransmitterState) bool { return s.Sent == 1 })
	if got := sink.received(); len(got) != 1 || got[0].Event.ID != dead[0].EventID {
		t.Errorf("the sink received %d messages, want the requeued dead letter", len(got))
	}
}

// A payload transform that fails (a key store briefly unavailable) is run again in each retry
// round, as a failed send is sent again: the event is delivered, not dead-lettered.
func TestTransformRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	xform := func(context.Context, *strata.Event) error {
		if calls.Add(1) == 1 {
			return errors.New("key store unavailable")
		}
		return nil
	}
	tr, err := transmit.New(st, "x", &memSink{}, transmit.WithTransform(xform),
		transmit.WithRetry(3, time.Millisecond, 2*time.Millisecond, true), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	transmittest.Start(t, tr)
	s := transmittest.WaitState(t, st, "x", "sent or dead", func(s strata.TransmitterState) bool { return s.Sent+s.Dead == 1 })
	if s.Dead == 1 {
		t.Fatalf("dead-lettered; the transform ran %d time(s)", calls.Load())
	}
}

// hangingRenew is a store whose lease renewals hang until their context ends (a stalled
// connection), and which records how long each was allowed to take.
type hangingRenew struct {
	*inmem.Store
	mu    sync.Mutex
	late  []string // renewals whose deadline lay past the lease's expiry
	calls int
}

func (h *hangingRenew) RenewTransmitLease(ctx context.Context, l strata.TransmitLease, ttl time.Duration) (strata.TransmitLease, error) {
	h.mu.Lock()
	h.calls++
	if d, ok := ctx.Deadline(); !ok || d.After(l.Until) {
		h.late = append(h.late, "deadline "+d.Format(time.StampMicro)+" past the lease's "+l.Until.Format(time.StampMicro))
	}
	h.mu.Unlock()
	<-ctx.Done()
	return strata.TransmitLease{}, &strata.Error{Code: strata.Unavailable, Op: "renew", Err: ctx.Err()}
}

// A renewal that hangs may not outlast the lease: past its expiry a standby may hold it, and
// the holder must have stopped by then. The holder then stops with an error.
func TestLeaseRenewalEndsWithTheLease(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	defer st.Close()
	hs := &hangingRenew{Store: st}
	tr, err := transmit.New(hs, "t", &memSink{}, transmit.WithLease("A", time.Second), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); strata.ErrorCode(err) != strata.Unavailable {
		t.Errorf("Run with renewals that hang returned %v, want an Unavailable error", err)
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.calls == 0 || len(hs.late) > 0 {
		t.Errorf("%d renewals, late: %v", hs.calls, hs.late)
	}
}

// TestRetryTransformsAgain: every retry round makes the message through the transform again,
// so that a retry sends what the payload is now: a subject erased between two tries goes out
// redacted, not in the clear text of the first try.
func TestRetryTransformsAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued", Data: []byte(`{"subjectDN":"sealed"}`)}); err != nil {
		t.Fatal(err)
	}
	var erased atomic.Bool
	xform := func(_ context.Context, e *strata.Event) error { // a revealing transform
		e.Data = []byte(`{"subjectDN":"CN=Alice"}`)
		if erased.Load() {
			e.Data = []byte(`{"subjectDN":"[redacted]"}`)
		}
		return nil
	}
	var tries atomic.Int32
	sink := &memSink{fail: func(*transmit.Message) error {
		if tries.Add(1) == 1 {
			erased.Store(true) // the subject is erased while the first try fails
			return errors.New("broker unavailable")
		}
		return nil
	}}
	tr, err := transmit.New(st, "x", sink, transmit.WithTransform(xform),
		transmit.WithRetry(3, time.Millisecond, 2*time.Millisecond, true), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "x", "sent", func(s strata.TransmitterState) bool { return s.Sent == 1 })
	got := sink.received()
	if len(got) != 1 || string(got[0].Event.Data) != `{"subjectDN":"[redacted]"}` {
		t.Fatalf("the retry sent %d message(s), the last %s; want the redacted payload", len(got), got[len(got)-1].Event.Data)
	}
}
