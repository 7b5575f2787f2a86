package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuditorCommands runs state, history, query and retention on one database: the
// bitemporal question, a diff, pages with a cursor, a count, tenant isolation, a legal hold and
// a retention plan; and checks that bad input exits with 2.
func TestAuditorCommands(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A","status":"active"}`,
		"--meta", "tenant=acme", "--meta", "principal=op:jdoe", "--meta", "correlation=req-1", "--occurred", "2023-03-01T09:00:00Z")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"serial":"7F3A","status":"revoked","reason":"keyCompromise"}`,
		"--meta", "tenant=acme", "--meta", "principal=op:mkim", "--meta", "correlation=req-2", "--occurred", "2023-03-14T00:00:00Z")
	mustCLI(t, db, "append", "certificate-9B", "CertificateIssued", `{"serial":"9B"}`, "--meta", "tenant=beta", "--meta", "correlation=req-2")

	st := lines(t, mustCLI(t, db, "state", "certificate-7F3A", "--at", "2023-03-15", "--known-at", "now"))
	if len(st) != 1 || st[0]["state"].(map[string]any)["status"] != "revoked" {
		t.Fatalf("state at 15 March as known now: %v", st)
	}
	st = lines(t, mustCLI(t, db, "state", "certificate-7F3A", "--at", "2023-03-13", "--known-at", "now"))
	if st[0]["state"].(map[string]any)["status"] != "active" {
		t.Fatalf("state at 13 March as known now: %v", st)
	}
	st = lines(t, mustCLI(t, db, "state", "certificate-7F3A", "--at", "2000-01-01"))
	if st[0]["version"] != float64(0) {
		t.Fatalf("state as recorded in 2000: %v", st)
	}
	h := lines(t, mustCLI(t, db, "history", "certificate-7F3A"))
	if len(h) != 2 || h[1]["principal"] != "op:mkim" || h[1]["reason"] != "keyCompromise" || !strings.Contains(mustCLI(t, db, "history", "certificate-7F3A"), `"path":"/status","old":"active","new":"revoked"`) {
		t.Fatalf("history: %v", h)
	}
	ent := lines(t, mustCLI(t, db, "history", "--entity", "7F3A", "--tenant", "acme"))
	if len(ent) != 2 {
		t.Fatalf("entity history: %v", ent)
	}

	page := lines(t, mustCLI(t, db, "query", "--tenant", "acme", "--limit", "1"))
	if len(page) != 2 || page[0]["version"] != float64(1) || page[1]["next"] == nil {
		t.Fatalf("first page: %v", page)
	}
	next := lines(t, mustCLI(t, db, "query", "--tenant", "acme", "--limit", "1", "--cursor", page[1]["next"].(string)))
	if len(next) != 1 || next[0]["version"] != float64(2) {
		t.Fatalf("second page: %v", next)
	}
	for _, ix := range []bool{false, true} {
		if ix {
			mustCLI(t, db, "query", "--create-indexes")
		}
		if got := lines(t, mustCLI(t, db, "query", "--tenant", "acme", "--correlation", "req-2", "--all")); len(got) != 1 || got[0]["stream"] != "certificate-7F3A" {
			t.Fatalf("acme's req-2 (indexes %v): %v", ix, got)
		}
		if got := lines(t, mustCLI(t, db, "query", "--tenant", "beta", "--correlation", "req-2", "--count")); got[0]["count"] != float64(1) {
			t.Fatalf("beta's req-2 count: %v", got)
		}
	}

	mustCLI(t, db, "retention", "hold", "certificate-7F3A", "--reason", "case 17", "--by", "legal")
	if got := lines(t, mustCLI(t, db, "retention", "holds")); len(got) != 1 || got[0]["reason"] != "case 17" {
		t.Fatalf("holds: %v", got)
	}
	plan := lines(t, mustCLI(t, db, "retention", "plan", "--allow-unsealed", "--max-age", "1h", "--policy", "name=beta,tenant=beta,keep"))
	if plan[0]["dryRun"] != true || plan[0]["removed"] != float64(0) || plan[0]["held"] != float64(1) {
		t.Fatalf("plan: %v", plan)
	}
	mustCLI(t, db, "retention", "release", "certificate-7F3A")

	for _, args := range [][]string{
		{"query"},
		{"query", "--tenant", "acme", "--cursor", "nope"},
		{"query", "--tenant", "acme", "--limit", "5000"},
		{"query", "--tenant", "acme", "--from", "yesterday"},
		{"state", "certificate-7F3A", "--at", "soon"},
		{"state", "certificate-7F3A", "--known-at", "now"},
		{"state", "certificate-7F3A", "--model", "nope"},
		{"history"},
		{"history", "certificate-7F3A", "--entity", "x"},
		{"history", "--entity", "x"},
		{"retention", "plan", "--policy", "colour=red"},
		{"retention", "plan", "--max-age", "0d"},
		{"retention", "run", "--schedule", "61 * * * *"},
		{"retention", "hold", "certificate-7F3A"},
	} {
		if r := cli(t, testContext(t), db, "", args...); r.code != exitInvalid || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("strata %s: exit %d, stderr %q; want exit %d and one line", strings.Join(args, " "), r.code, r.stderr, exitInvalid)
		}
	}
}

// TestRetentionThenVerify seals a log, removes every payload with retention and checks that
// strata verify, with signatures and consistency, still passes and says so.
func TestRetentionThenVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "r.db")
	key := filepath.Join(dir, "log")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", key)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"subjectDN":"CN=Alice"}`, "--meta", "tenant=acme")
	mustCLI(t, db, "seal", "--key", key+".key")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"reason":"keyCompromise"}`, "--meta", "tenant=acme")
	mustCLI(t, db, "seal", "--key", key+".key")
	time.Sleep(2 * time.Millisecond) // the events must be older than --max-age
	rep := lines(t, mustCLI(t, db, "retention", "run", "--max-age", "1ms", "--principal", "ops"))
	if rep[0]["removed"] != float64(2) {
		t.Fatalf("retention run: %v", rep)
	}
	if evs := lines(t, mustCLI(t, db, "read", "certificate-7F3A")); len(evs) != 2 || evs[0]["data"] != nil {
		t.Fatalf("after retention: %v", evs)
	}
	out := mustCLI(t, db, "verify", "--key", key+".pub")
	if !strings.Contains(out, "2 events hold tombstones") || strings.Contains(out, "PROBLEM") {
		t.Fatalf("verify after retention: %s", out)
	}
	if got := lines(t, mustCLI(t, db, "read", "strata-retention")); len(got) != 2 || got[0]["type"] != "RetentionStarted" {
		t.Fatalf("retention audit stream: %v", got)
	}
}

// TestChangesOnDayInZone: --changes-on names a day in UTC, or in the zone --tz names, whose
// midnight is another instant: an event that occurred at 23:30 UTC on 14 March belongs to 15
// March in Berlin.
func TestChangesOnDayInZone(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "strata.db")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"serial":"7F3A"}`, "--occurred", "2023-03-14T23:30:00Z")
	for _, c := range []struct {
		day, tz string
		want    bool
	}{
		{"2023-03-14", "", true},
		{"2023-03-15", "", false},
		{"2023-03-14", "Europe/Berlin", false},
		{"2023-03-15", "Europe/Berlin", true},
		{"2023-03-14T12:00:00Z", "America/New_York", true}, // 19:30 in New York
	} {
		args := []string{"state", "certificate-7F3A", "--changes-on", c.day}
		if c.tz != "" {
			args = append(args, "--tz", c.tz)
		}
		if got := strings.Contains(mustCLI(t, db, args...), `"CertificateRevoked"`); got != c.want {
			t.Errorf("changes on %s in %q: listed %v, want %v", c.day, c.tz, got, c.want)
		}
	}
	if r := cli(t, testContext(t), db, "", "state", "certificate-7F3A", "--changes-on", "2023-03-14", "--tz", "Mars/Olympus"); r.code != exitInvalid {
		t.Fatalf("an unknown zone: exit %d, %s", r.code, r.stderr)
	}
}

// TestChangesOnByValidField: with --valid-field, --changes-on lists an event on the day its
// valid time names (a revocation's invalidSince), as the state's fold counts it there.
func TestChangesOnByValidField(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "strata.db")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"serial":"7F3A","invalidSince":"2023-03-14T08:00:00Z"}`, "--occurred", "2023-03-20T10:00:00Z")
	ask := func(extra ...string) bool {
		args := append([]string{"state", "certificate-7F3A", "--at", "2023-03-15", "--known-at", "now", "--changes-on", "2023-03-14"}, extra...)
		return strings.Contains(mustCLI(t, db, args...), `"CertificateRevoked"`)
	}
	if ask() {
		t.Error("without --valid-field, the revocation that occurred on 20 March is a change of 14 March")
	}
	if !ask("--valid-field", "invalidSince") {
		t.Error("with --valid-field invalidSince, the revocation invalid since 14 March is not a change of 14 March")
	}
}

// TestQueryRefusesFlagsItWouldIgnore: --count counts every match (the store ignores the cursor
// and the page size) and --create-indexes searches nothing, so the flags those would ignore are
// refused with exit 2 instead of printing a count, or building indexes, that answer another
// question than the one asked.
func TestQueryRefusesFlagsItWouldIgnore(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	for range 3 {
		mustCLI(t, db, "append", "s", "E", `{}`, "--meta", "tenant=t")
	}
	out := lines(t, mustCLI(t, db, "query", "--tenant", "t", "--limit", "1"))
	next, _ := out[len(out)-1]["next"].(string)
	if next == "" {
		t.Fatalf("no next cursor after a page of 1: %v", out)
	}
	for _, args := range [][]string{
		{"--tenant", "t", "--count", "--cursor", next},
		{"--tenant", "t", "--count", "--limit", "1"},
		{"--tenant", "t", "--count", "--all"},
		{"--create-indexes", "--tenant", "t"},
		{"--create-indexes", "--type", "E"},
		{"--create-indexes", "--count"},
	} {
		r := cli(t, testContext(t), db, "", append([]string{"query"}, args...)...)
		if r.code != exitInvalid || r.stdout != "" {
			t.Errorf("strata query %s: exit %d, want %d and no output: %s%s", strings.Join(args, " "), r.code, exitInvalid, r.stdout, r.stderr)
		}
	}
	if got := lines(t, mustCLI(t, db, "query", "--tenant", "t", "--count")); len(got) != 1 || got[0]["count"] != 3.0 {
		t.Errorf("--count: %v, want 3", got)
	}
}

// TestStateRefusesBadFlagsBeforeSnapshots: state --take-snapshots saved its snapshots before it
// read --changes-on and --tz, so a typo there failed with exit 2 (nothing written) after writing;
// and --tz without --changes-on was ignored. Every flag is now checked before anything is saved.
func TestStateRefusesBadFlagsBeforeSnapshots(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "strata.db")
	db := "sqlite:" + path
	for range 4 {
		mustCLI(t, db, "append", "s", "E", `{"a":1}`)
	}
	for _, args := range [][]string{
		{"--take-snapshots", "1", "--changes-on", "bogus"},
		{"--take-snapshots", "1", "--changes-on", "2023-03-14", "--tz", "Nowhere/Atlantis"},
		{"--tz", "Europe/Berlin"},
	} {
		r := cli(t, testContext(t), db, "", append([]string{"state", "s"}, args...)...)
		if r.code != exitInvalid || r.stdout != "" {
			t.Errorf("strata state s %s: exit %d, want %d and no output: %s%s", strings.Join(args, " "), r.code, exitInvalid, r.stdout, r.stderr)
		}
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM temporal_snapshots`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the refused commands saved %d snapshots", n)
	}
}
