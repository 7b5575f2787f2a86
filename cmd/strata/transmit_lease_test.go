package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// openTransmitStore opens the store of a --db value for a test to seed or inspect.
func openTransmitStore(t *testing.T, db string) strata.TransmitStore {
	t.Helper()
	d, err := parseDSN(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(strata.TransmitStore)
}

// seedRecord is a made-up delivery record of the i-th event, last tried (and sent) at at.
func seedRecord(i int, status strata.DeliveryStatus, at time.Time) strata.Delivery {
	d := strata.Delivery{
		EventID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("seed-", i))), Position: strata.Position{Commit: 1<<40 + uint64(i), Event: uint64(i)},
		Stream: "certificate-seed", Version: int64(i), Type: "CertificateIssued", Status: status, Attempts: 1,
		FirstAttemptAt: at, LastAttemptAt: at,
	}
	if status == strata.DeliverySent {
		d.SentAt = at
	}
	return d
}

func seed(t *testing.T, ts strata.TransmitStore, name string, ds ...strata.Delivery) {
	t.Helper()
	if err := ts.CommitDeliveries(context.Background(), strata.DeliveryCommit{Transmitter: name, Deliveries: ds}); err != nil {
		t.Fatal(err)
	}
}

// TestTransmitPrune runs `transmit prune`: a dry run counts, a run deletes old sent records and,
// when asked, old dead letters, of one transmitter or all; failed and recent records stay.
func TestTransmitPrune(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{}`) // creates the schema
	ts := openTransmitStore(t, db)
	old := time.Now().AddDate(0, 0, -60)
	now := time.Now()
	for _, name := range []string{"crl", "ocsp"} {
		seed(t, ts, name, seedRecord(1, strata.DeliverySent, old), seedRecord(2, strata.DeliverySent, old),
			seedRecord(3, strata.DeliveryDead, old), seedRecord(4, strata.DeliveryFailed, old),
			seedRecord(5, strata.DeliverySent, now), seedRecord(6, strata.DeliveryDead, now))
	}
	counts := func(name string) string {
		sts, err := ts.TransmitterStates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sts {
			if s.Name == name {
				return fmt.Sprintf("%d sent, %d dead, %d failed", s.Sent, s.Dead, s.Failed)
			}
		}
		return "none"
	}

	dry := lines(t, mustCLI(t, db, "transmit", "prune", "--transmitter", "crl", "--sent-older-than", "7d", "--dead-older-than", "720h", "--dry-run"))
	if len(dry) != 1 || dry[0]["transmitter"] != "crl" || dry[0]["sent"] != 2.0 || dry[0]["dead"] != 1.0 || dry[0]["dryRun"] != true || dry[0]["sentBefore"] == nil {
		t.Fatalf("dry run: %v", dry)
	}
	if c := counts("crl"); c != "3 sent, 2 dead, 1 failed" {
		t.Fatalf("a dry run deleted records: %s", c)
	}
	out := lines(t, mustCLI(t, db, "transmit", "prune", "--transmitter", "crl", "--sent-older-than", "7d"))
	if len(out) != 1 || out[0]["sent"] != 2.0 || out[0]["dead"] != 0.0 || out[0]["dryRun"] != nil || out[0]["deadBefore"] != nil {
		t.Fatalf("prune: %v", out)
	}
	if c := counts("crl"); c != "1 sent, 2 dead, 1 failed" {
		t.Fatalf("crl after pruning sent records: %s", c)
	}
	if c := counts("ocsp"); c != "3 sent, 2 dead, 1 failed" {
		t.Fatalf("pruning crl changed ocsp: %s", c)
	}
	// Every transmitter, dead letters too.
	out = lines(t, mustCLI(t, db, "transmit", "prune", "--sent-older-than", "7d", "--dead-older-than", "30d"))
	if len(out) != 2 || out[0]["transmitter"] != "crl" || out[0]["sent"] != 0.0 || out[0]["dead"] != 1.0 ||
		out[1]["transmitter"] != "ocsp" || out[1]["sent"] != 2.0 || out[1]["dead"] != 1.0 {
		t.Fatalf("prune of every transmitter: %v", out)
	}
	for _, name := range []string{"crl", "ocsp"} {
		if c := counts(name); c != "1 sent, 1 dead, 1 failed" {
			t.Fatalf("%s after pruning: %s", name, c)
		}
	}

	ctx := testContext(t)
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune"), exitInvalid, "--sent-older-than")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "--dry-run"), exitInvalid, "--dead-older-than")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "--sent-older-than", "7x"), exitInvalid, "--sent-older-than")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "--sent-older-than", "0d"), exitInvalid, "--sent-older-than")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "--sent-older-than", "7d", "--dead-older-than", "-1h"), exitInvalid, "--dead-older-than")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "--sent-older-than", "7d", "--transmitter", "bad\x01name"), exitInvalid, "control character")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "--sent-older-than", "7d", "--transmitter", "nobody"), exitNotFound, "nobody")
	wantErr(t, cli(t, ctx, db, "", "transmit", "prune", "extra", "--sent-older-than", "7d"), exitInvalid, "no arguments")
}

// countingHook is a webhook endpoint that counts the events it accepted.
func countingHook(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// transmitStatus returns the `transmit status` line of one transmitter.
func transmitStatus(t *testing.T, db, name string) map[string]any {
	t.Helper()
	for _, l := range lines(t, mustCLI(t, db, "transmit", "status")) {
		if l["name"] == name {
			return l
		}
	}
	return nil
}

func waitStatus(t *testing.T, db, name, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var l map[string]any
	waitForState(t, what, func() bool {
		l = transmitStatus(t, db, name)
		return l != nil && ok(l)
	})
	return l
}

// TestServeTransmitterLease runs two `strata serve` with the same transmitter (each sending to
// its own endpoint) on one database: only the lease holder delivers and prunes on its schedule,
// `transmit status` names it, and when it stops the other takes over from the checkpoint.
func TestServeTransmitterLease(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testServeTransmitterLease(t, tempDB(t)) })
	t.Run("PostgreSQL", func(t *testing.T) { testServeTransmitterLease(t, postgresDB(t)) })
}

func testServeTransmitterLease(t *testing.T, db string) {
	mustCLI(t, db, "append", "certificate-0", "CertificateIssued", `{}`)
	ts := openTransmitStore(t, db)
	old := time.Now().AddDate(0, 0, -60)
	seed(t, ts, "to-hook", seedRecord(1, strata.DeliverySent, old), seedRecord(2, strata.DeliverySent, old), seedRecord(3, strata.DeliveryDead, old))
	dir := t.TempDir()
	hookA, gotA := countingHook(t)
	hookB, gotB := countingHook(t)
	file := func(name, url string) string {
		path := filepath.Join(dir, name)
		cfg := `{"leaseTTL": "5s", "prune": {"sentAfter": "7d", "deadAfter": "30d", "every": "1h"},
			"transmitters": [{"name": "to-hook", "type": "webhook", "options": {"url": "` + url + `", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}]}`
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := strings.TrimSpace(mustCLI(t, db, "apikey", "create", "--role", "writer", "--tenant", "acme"))

	_, stopA := startServe(t, db, "--transmitters", file("a.json", hookA.URL))
	defer stopA()
	// A takes the lease, delivers the first event and prunes the old records.
	held := waitStatus(t, db, "to-hook", "a holding the lease, the old records pruned", func(l map[string]any) bool {
		return l["owner"] != nil && l["sent"] == 1.0 && l["dead"] == 0.0
	})
	if held["leaseExpired"] != nil || held["leaseUntil"] == nil || held["epoch"] == 0.0 {
		t.Fatalf("status of the holder: %v", held)
	}
	urlB, stopB := startServe(t, db, "--transmitters", file("b.json", hookB.URL))
	defer stopB()
	for i := range 10 {
		if code, body := httpDo(t, "POST", urlB+"/v1/streams/s-"+fmt.Sprint(i%3)+"/events", key, `{"events":[{"type":"T","data":{}}]}`); code != 201 {
			t.Fatalf("append: %d %s", code, body)
		}
	}
	waitStatus(t, db, "to-hook", "11 sent", func(l map[string]any) bool { return l["sent"] == 11.0 })
	if gotB.Load() != 0 || gotA.Load() != 11 {
		t.Fatalf("the endpoints got %d (holder) and %d (standby) events, want 11 and 0", gotA.Load(), gotB.Load())
	}
	if l := transmitStatus(t, db, "to-hook"); l["owner"] != held["owner"] || l["epoch"] != held["epoch"] {
		t.Fatalf("the lease moved while its holder ran: %v, then %v", held, l)
	}
	// A stops; B takes over and delivers what comes next, and nothing of what A recorded.
	if code, log := stopA(); code != 0 {
		t.Fatalf("serve a exited %d: %s", code, log)
	}
	took := waitStatus(t, db, "to-hook", "b taking over", func(l map[string]any) bool {
		return l["owner"] != nil && l["owner"] != held["owner"]
	})
	if took["epoch"].(float64) <= held["epoch"].(float64) {
		t.Fatalf("the takeover did not raise the epoch: %v, then %v", held, took)
	}
	for range 5 {
		if code, body := httpDo(t, "POST", urlB+"/v1/streams/s-9/events", key, `{"events":[{"type":"T","data":{}}]}`); code != 201 {
			t.Fatalf("append: %d %s", code, body)
		}
	}
	final := waitStatus(t, db, "to-hook", "16 sent", func(l map[string]any) bool { return l["sent"] == 16.0 })
	if gotA.Load() != 11 || gotB.Load() != 5 {
		t.Fatalf("the endpoints got %d (first holder) and %d (second) events, want 11 and 5", gotA.Load(), gotB.Load())
	}
	if final["checkpoint"] == took["checkpoint"] {
		t.Fatalf("the checkpoint did not move after the takeover: %v", final)
	}
	if code, log := stopB(); code != 0 {
		t.Fatalf("serve b exited %d: %s", code, log)
	}
	if l := transmitStatus(t, db, "to-hook"); l["owner"] != nil {
		t.Fatalf("status after both stopped: %v, want the lease released", l)
	}
}
