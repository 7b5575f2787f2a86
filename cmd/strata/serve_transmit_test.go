package main

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/transmit"
)

// downSink fails every send transiently: the destination is unreachable.
type downSink struct{}

func (downSink) Send(context.Context, []*transmit.Message) error {
	return transmit.Unavailable("test", errors.New("connection refused"))
}
func (downSink) Close() error { return nil }

// backlogOf scrapes the collector and returns the transmitter's backlog gauge.
// runDownManager runs a transmit.Manager of cfg on st whose "down" sinks fail every send, until
// stop cancels ctx (with cancel) and waits for it.
func runDownManager(t *testing.T, ctx context.Context, cancel context.CancelFunc, st strata.Store, cfg transmit.Config) (m *transmit.Manager, stop func()) {
	t.Helper()
	m, err := transmit.NewManager(st, cfg, transmit.WithManagerLogger(slog.New(slog.DiscardHandler)),
		transmit.WithSinks(map[string]transmit.SinkFactory{"down": func(context.Context, transmit.SinkConfig) (transmit.Sink, error) { return downSink{}, nil }}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	return m, func() { cancel(); <-done }
}

func backlogOf(t *testing.T, c prometheus.Collector, name string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "strata_transmitter_backlog_events" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "transmitter" && l.GetValue() == name {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestTransmitBacklogPastUnselectedEvents: a selective transmitter stuck on an event that
// follows more unselected events than the backlog counts reports that event in its backlog, not
// 0: the count is of matching events after the checkpoint.
func TestTransmitBacklogPastUnselectedEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := inmem.New()
	defer st.Close()
	for i := 0; i <= maxBacklogCount; i += 100 {
		evs := make([]strata.EventData, 100)
		for j := range evs {
			evs[j] = strata.EventData{Type: "CertificateIssued"}
		}
		if _, err := st.Append(ctx, "certificate-1", strata.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(ctx, "certificate-2", strata.NoStream, strata.EventData{Type: "CertificateRevoked"}); err != nil {
		t.Fatal(err)
	}
	cfg := transmit.Config{Transmitters: []transmit.TransmitterConfig{{Name: "revocations", Type: "down",
		Filter: hub.Spec{Types: []string{"CertificateRevoked"}}}}}
	m, stop := runDownManager(t, ctx, cancel, st, cfg)
	defer stop()
	deadline := time.Now().Add(time.Minute)
	for {
		tr := m.Transmitters()["revocations"]
		if tr != nil {
			if _, failed, _ := tr.Counts(); failed > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the transmitter never tried to send the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, ok := backlogOf(t, newTransmitCollector(st, m), "revocations")
	if !ok || got != 1 {
		t.Fatalf("backlog %v (reported %v), want 1: the undelivered revocation after %d unselected events", got, ok, maxBacklogCount+1)
	}
}

// readCounter counts the store's reads of the whole log.
type readCounter struct {
	*inmem.Store
	reads atomic.Int64
}

func (c *readCounter) ReadAll(ctx context.Context, o strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	c.reads.Add(1)
	return c.Store.ReadAll(ctx, o)
}

// TestTransmitBacklogScrapesShareACount: /metrics needs no key, and counting a backlog reads
// the log; scrapes at once share one count rather than each reading.
func TestTransmitBacklogScrapesShareACount(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := inmem.New()
	defer st.Close()
	if _, err := st.Append(ctx, "certificate-2", strata.NoStream, strata.EventData{Type: "CertificateRevoked"}); err != nil {
		t.Fatal(err)
	}
	cfg := transmit.Config{Transmitters: []transmit.TransmitterConfig{{Name: "revocations", Type: "down"}}}
	m, stop := runDownManager(t, ctx, cancel, st, cfg)
	defer stop()
	for deadline := time.Now().Add(time.Minute); m.Transmitters()["revocations"] == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the transmitter did not start")
		}
	}
	counted := &readCounter{Store: st}
	c := newTransmitCollector(counted, m)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, ok := backlogOf(t, c, "revocations"); !ok {
				t.Error("no backlog reported")
			}
		})
	}
	wg.Wait()
	if reads := counted.reads.Load(); reads > n/2 {
		t.Fatalf("%d scrapes at once read the log %d times", n, reads)
	}
}
