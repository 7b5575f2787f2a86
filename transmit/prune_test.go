package transmit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
)

// record is a made-up delivery record of the i-th event, last tried (and, when sent, sent) at at.
func record(i int, status strata.DeliveryStatus, at time.Time) strata.Delivery {
	d := strata.Delivery{
		EventID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("prune-", i))), Position: strata.Position{Commit: uint64(i), Event: uint64(i)},
		Stream: "certificate-1", Version: int64(i), Type: "CertificateIssued", Status: status, Attempts: 1,
		FirstAttemptAt: at, LastAttemptAt: at,
	}
	if status == strata.DeliverySent {
		d.SentAt = at
	}
	return d
}

// TestPruneSchedule: a transmitter with a prune schedule deletes its old sent records and dead
// letters when it takes its lease and again on every round, and keeps recent records and
// failed ones; a standby prunes nothing.
func TestPruneSchedule(t *testing.T) {
	st := inmem.New()
	defer st.Close()
	ctx := context.Background()
	old := time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
	now := time.Now()
	if err := st.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "pruned", Deliveries: []strata.Delivery{
		record(1, strata.DeliverySent, old), record(2, strata.DeliveryDead, old), record(3, strata.DeliveryFailed, old),
		record(4, strata.DeliverySent, now), record(5, strata.DeliveryDead, now),
	}}); err != nil {
		t.Fatal(err)
	}
	// The holder has no schedule; the standby has one and must not prune while it waits.
	holder, _ := transmit.New(st, "pruned", &memSink{}, transmit.WithLease("holder", 3*time.Second), transmittest.Quiet())
	stopHolder := transmittest.Start(t, holder)
	waitFor(t, "the holder to take the lease", holder.Active)
	standby, _ := transmit.New(st, "pruned", &memSink{}, transmit.WithLease("standby", 3*time.Second),
		transmit.WithPrune(24*time.Hour, 30*24*time.Hour, 10*time.Millisecond), transmittest.Quiet())
	transmittest.Start(t, standby)
	// Give the standby the time of a few of its rounds, had it pruned.
	time.Sleep(50 * time.Millisecond)
	if s, _ := standby.Pruned(); s != 0 {
		t.Fatalf("the standby pruned %d records", s)
	}
	if err := stopHolder(); err != nil {
		t.Fatal(err)
	}
	// The standby takes over and prunes at once: old sent and dead records go.
	transmittest.WaitState(t, st, "pruned", "the old records pruned", func(s strata.TransmitterState) bool {
		return s.Sent == 1 && s.Dead == 1 && s.Failed == 1
	})
	// A round later, a record that became old meanwhile goes too.
	if err := st.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "pruned", Deliveries: []strata.Delivery{record(6, strata.DeliverySent, old)}}); err != nil {
		t.Fatal(err)
	}
	transmittest.WaitState(t, st, "pruned", "the later old record pruned", func(s strata.TransmitterState) bool {
		return s.Sent == 1 && s.Dead == 1 && s.Failed == 1
	})
	left, _ := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "pruned"})
	var versions []int64
	for _, d := range left {
		versions = append(versions, d.Version)
	}
	if fmt.Sprint(versions) != "[3 4 5]" {
		t.Fatalf("records left: %v, want [3 4 5] (the failed one and the recent ones)", versions)
	}
	if sent, dead := standby.Pruned(); sent != 2 || dead != 1 {
		t.Fatalf("Pruned() = %d sent, %d dead; want 2 and 1", sent, dead)
	}
}

// TestManagerPrunes: the file's prune schedule reaches the transmitters, a transmitter's own
// replaces it, and an empty one turns it off.
func TestManagerPrunes(t *testing.T) {
	st := inmem.New()
	defer st.Close()
	ctx := context.Background()
	old := time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
	for _, name := range []string{"file", "own", "off"} {
		if err := st.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: name, Deliveries: []strata.Delivery{
			record(1, strata.DeliverySent, old), record(2, strata.DeliveryDead, old),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := transmit.ParseConfig([]byte(`{"leaseTTL": "5s", "prune": {"sentAfter": "7d", "every": "1h"}, "transmitters": [
		{"name": "file", "type": "mem"},
		{"name": "own", "type": "mem", "prune": {"sentAfter": "1d", "deadAfter": "30d"}},
		{"name": "off", "type": "mem", "prune": {}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := transmit.NewManager(st, cfg, transmit.WithOwner("manager-1"), transmit.WithManagerLogger(transmitQuietLogger()),
		transmit.WithSinks(map[string]transmit.SinkFactory{"mem": func(context.Context, transmit.SinkConfig) (transmit.Sink, error) { return &memSink{}, nil }}))
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	transmittest.WaitState(t, st, "file", "the sent record pruned", func(s strata.TransmitterState) bool { return s.Sent == 0 && s.Owner == "manager-1" })
	transmittest.WaitState(t, st, "own", "both records pruned", func(s strata.TransmitterState) bool { return s.Sent == 0 && s.Dead == 0 })
	waitFor(t, "all three running", func() bool {
		ts := m.Transmitters()
		return len(ts) == 3 && ts["off"].Active()
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]int64{"file": {0, 1}, "own": {0, 0}, "off": {1, 1}} {
		s, _ := st.TransmitterStates(ctx)
		for _, x := range s {
			if x.Name == name && (x.Sent != want[0] || x.Dead != want[1]) {
				t.Errorf("%s: %d sent and %d dead left, want %v", name, x.Sent, x.Dead, want)
			}
			if x.Name == name && x.Owner != "" {
				t.Errorf("%s: lease still held by %q after the manager stopped", name, x.Owner)
			}
		}
	}
}

// TestParseConfigLeaseAndPrune checks the leaseTTL and prune settings of a transmitters file.
func TestParseConfigLeaseAndPrune(t *testing.T) {
	cfg, err := transmit.ParseConfig([]byte(`{"leaseTTL": "30s", "prune": {"sentAfter": "7d", "deadAfter": "720h", "every": "1h"},
		"transmitters": [{"name": "a", "type": "webhook", "prune": {"sentAfter": 3600}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.LeaseTTL) != 30*time.Second || time.Duration(cfg.Prune.SentAfter) != 7*24*time.Hour ||
		time.Duration(cfg.Prune.DeadAfter) != 720*time.Hour || time.Duration(cfg.Transmitters[0].Prune.SentAfter) != time.Hour {
		t.Fatalf("parsed %+v / %+v", cfg, cfg.Prune)
	}
	for _, bad := range []struct{ file, msg string }{
		{`{"leaseTTL": "10ms", "transmitters": []}`, "leaseTTL"},
		{`{"leaseTTL": "48h", "transmitters": []}`, "leaseTTL"},
		{`{"prune": {"sentAfter": "-1h"}, "transmitters": []}`, "negative"},
		{`{"prune": {"sentAfter": "1h", "every": "10ms"}, "transmitters": []}`, "every"},
		{`{"prune": {"every": "1h"}, "transmitters": []}`, "neither"},
		{`{"prune": {"sentAfter": "7x"}, "transmitters": []}`, "7x"},
		{`{"prune": {"sentAfter": "1.5d"}, "transmitters": []}`, "whole days"},
		{`{"prune": {"sentAfter": "1h", "keep": true}, "transmitters": []}`, "keep"},
		{`{"transmitters": [{"name": "a", "type": "webhook", "prune": {"deadAfter": "-1h"}}]}`, "prune: negative"},
	} {
		_, err := transmit.ParseConfig([]byte(bad.file))
		if strata.ErrorCode(err) != strata.Invalid || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("ParseConfig(%s) = %v, want Invalid mentioning %q", bad.file, err, bad.msg)
		}
	}
}
