package transmit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
)

// stopDuringSend confirms every message, stopping the transmitter (as SIGTERM does) while the
// first batch is on its way.
type stopDuringSend struct {
	stop func()
	mu   sync.Mutex
	got  int
}

func (s *stopDuringSend) Send(_ context.Context, batch []*transmit.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got += len(batch)
	s.stop()
	return nil
}

func (s *stopDuringSend) Close() error { return nil }

// TestCleanStopRecordsAConfirmedBatch: a batch the destination confirmed is recorded even when
// the transmitter is stopped while it was being sent, so that a clean stop re-sends nothing.
func TestCleanStopRecordsAConfirmedBatch(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued"}, strata.EventData{Type: "CertificateRevoked"}); err != nil {
		t.Fatal(err)
	}
	var last strata.Position
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		last = e.Position
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sink := &stopDuringSend{stop: cancel}
	tr, err := transmit.New(st, "stopped", sink, transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(rctx); strata.ErrorCode(err) != strata.Unavailable {
		t.Fatalf("Run = %v, want Unavailable (stopped)", err)
	}
	if sink.got != 2 {
		t.Fatalf("the destination confirmed %d messages, want 2", sink.got)
	}
	ds, err := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "stopped"})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := st.TransmitCheckpoint(ctx, "stopped")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Status != strata.DeliverySent || ds[1].Status != strata.DeliverySent || cp != last {
		t.Fatalf("after a stop during a confirmed send: records %+v, checkpoint %s; want both sent and the checkpoint at %s", ds, cp, last)
	}
}

// TestCleanStopRecordsAConfirmedRedelivery: the same for a requeued dead letter: confirmed while
// the transmitter stops, it is recorded sent, not left pending to be sent once more.
func TestCleanStopRecordsAConfirmedRedelivery(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateRevoked"}); err != nil {
		t.Fatal(err)
	}
	reject := &memSink{fail: func(*transmit.Message) error { return transmit.Reject(errors.New("bad")) }}
	tr, err := transmit.New(st, "stopped", reject, transmit.WithRetry(0, time.Millisecond, time.Millisecond, false), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	stop := transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "stopped", "dead", func(s strata.TransmitterState) bool { return s.Dead == 1 })
	stop()
	dead, err := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "stopped", Status: strata.DeliveryDead})
	if err != nil || len(dead) != 1 {
		t.Fatal(dead, err)
	}
	if n, err := st.RequeueDeliveries(ctx, "stopped", []uuid.UUID{dead[0].EventID}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sink := &stopDuringSend{stop: cancel}
	tr2, err := transmit.New(st, "stopped", sink, transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Run(rctx); strata.ErrorCode(err) != strata.Unavailable {
		t.Fatalf("Run = %v, want Unavailable (stopped)", err)
	}
	if sink.got != 1 {
		t.Fatalf("the destination confirmed %d messages, want the requeued one", sink.got)
	}
	ds, err := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "stopped"})
	if err != nil || len(ds) != 1 || ds[0].Status != strata.DeliverySent {
		t.Fatalf("after a stop during a confirmed re-send the record is %+v, %v; want it sent", ds, err)
	}
}
