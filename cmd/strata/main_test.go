package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// cli runs one command line against the database dsn and returns its output and exit code.
type result struct {
	stdout, stderr string
	code           int
}

func cli(t testing.TB, ctx context.Context, dsn string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	if dsn != "" {
		args = append(args, "--db", dsn)
	}
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, func(string) string { return "" })
	return result{out.String(), errb.String(), code}
}

func mustCLI(t testing.TB, dsn string, args ...string) string {
	t.Helper()
	r := cli(t, testContext(t), dsn, "", args...)
	if r.code != 0 {
		t.Fatalf("strata %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func tempDB(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "strata.db")
}

// lines decodes JSON lines.
func lines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestAppendReadRoundTrip(t *testing.T) {
	t.Parallel()
	testRoundTrip(t, tempDB(t))
}

// testRoundTrip appends with metadata and expectations and reads the events back.
func testRoundTrip(t *testing.T, db string) {
	ctx := testContext(t)
	const id = "01900000-0000-7000-8000-00000000abcd"
	out := mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial": "7F3A",
		"subjectDN": "CN=<alice>&co"}`,
		"--expect", "no-stream", "--id", id, "--occurred", "2023-03-14T09:00:00Z",
		"--meta", "tenant=acme-ca", "--meta", "principal=operator:jdoe", "--meta", "correlation=req-1",
		"--meta", "causation=c-0", "--meta", "session=s-1", "--meta", "subsystem=ra", "--meta", "category=pki",
		"--meta", "ticket=SEC-4711")
	got := lines(t, out)
	if len(got) != 1 || got[0]["stream"] != "certificate-7F3A" || got[0]["firstVersion"] != 1.0 || got[0]["lastVersion"] != 1.0 || got[0]["replayed"] != false {
		t.Fatalf("append printed %q", out)
	}

	// The same ID and content again is a replay; other content under the ID is a conflict.
	out = mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial": "7F3A",
		"subjectDN": "CN=<alice>&co"}`, "--expect", "no-stream", "--id", id)
	if got := lines(t, out); got[0]["replayed"] != true {
		t.Fatalf("replayed append printed %q", out)
	}
	r := cli(t, ctx, db, "", "append", "certificate-7F3A", "CertificateIssued", `{}`, "--id", id)
	wantErr(t, r, exitConflict, "already stored with other content")

	// Expected-version conflicts.
	r = cli(t, ctx, db, "", "append", "certificate-7F3A", "CertificateRevoked", `{}`, "--expect", "no-stream")
	wantErr(t, r, exitConflict, `stream "certificate-7F3A" is at version 1, expected no stream`)
	r = cli(t, ctx, db, "", "append", "certificate-7F3A", "CertificateRevoked", `{}`, "--expect", "5")
	wantErr(t, r, exitConflict, "at version 1, expected 5")
	r = cli(t, ctx, db, "", "append", "certificate-0000", "CertificateRevoked", `{}`, "--expect", "exists")
	wantErr(t, r, exitConflict, "at version 0, expected stream exists")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"reason":"keyCompromise"}`, "--expect", "1")
	mustCLI(t, db, "append", "certificate-7F3A", "Note", `"free text"`, "--expect", "exists")
	mustCLI(t, db, "append", "certificate-7F3A", "Note", `[1,2]`) // --expect any

	evs := lines(t, mustCLI(t, db, "read", "certificate-7F3A"))
	if len(evs) != 4 {
		t.Fatalf("read %d events, want 4", len(evs))
	}
	e := evs[0]
	for k, want := range map[string]any{
		"id": id, "stream": "certificate-7F3A", "version": 1.0, "type": "CertificateIssued", "schema": 1.0,
		"occurredAt": "2023-03-14T09:00:00Z",
	} {
		if e[k] != want {
			t.Errorf("%s = %v, want %v", k, e[k], want)
		}
	}
	if data, ok := e["data"].(map[string]any); !ok || data["subjectDN"] != "CN=<alice>&co" {
		t.Errorf("data = %#v, want the payload as a JSON object", e["data"])
	}
	wantMeta := map[string]any{"tenant": "acme-ca", "principal": "operator:jdoe", "correlation": "req-1", "causation": "c-0",
		"session": "s-1", "subsystem": "ra", "category": "pki", "ticket": "SEC-4711"}
	if m, ok := e["meta"].(map[string]any); !ok || len(m) != len(wantMeta) {
		t.Errorf("meta = %v, want %v", e["meta"], wantMeta)
	} else {
		for k, v := range wantMeta {
			if m[k] != v {
				t.Errorf("meta[%s] = %v, want %v", k, m[k], v)
			}
		}
	}
	if p, ok := e["position"].(string); !ok || p == "" {
		t.Errorf("position = %#v, want a string", e["position"])
	}
	if rec, err := time.Parse(time.RFC3339Nano, e["recordedAt"].(string)); err != nil || rec.Location() != time.UTC {
		t.Errorf("recordedAt = %v, want an RFC 3339 UTC time", e["recordedAt"])
	}
	if evs[2]["data"] != "free text" || evs[3]["version"] != 4.0 {
		t.Errorf("events 3 and 4: %v, %v", evs[2], evs[3])
	}

	// Paging a stream: from a version, backwards, limited.
	if got := lines(t, mustCLI(t, db, "read", "certificate-7F3A", "--from", "2", "--limit", "2")); len(got) != 2 || got[0]["version"] != 2.0 || got[1]["version"] != 3.0 {
		t.Errorf("--from 2 --limit 2 read %v", got)
	}
	if got := lines(t, mustCLI(t, db, "read", "certificate-7F3A", "--backward", "--limit", "3")); len(got) != 3 || got[0]["version"] != 4.0 || got[2]["version"] != 2.0 {
		t.Errorf("--backward --limit 3 read %v", got)
	}
	if out := mustCLI(t, db, "read", "no-such-stream"); out != "" {
		t.Errorf("reading a missing stream printed %q", out)
	}

	streams := lines(t, mustCLI(t, db, "streams", "--prefix", "certificate-"))
	if len(streams) != 1 || streams[0]["name"] != "certificate-7F3A" || streams[0]["version"] != 4.0 || streams[0]["firstRecordedAt"] == "" || streams[0]["lastRecordedAt"] == "" {
		t.Errorf("streams printed %v", streams)
	}
}

// wantErr checks that a command failed with code, printing one line to stderr that contains msg.
func wantErr(t testing.TB, r result, code int, msg string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "strata: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q, want one line starting with \"strata: \"", r.stderr)
	}
	if !strings.Contains(r.stderr, msg) {
		t.Errorf("stderr %q does not contain %q", r.stderr, msg)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("stderr holds a panic: %q", r.stderr)
	}
}

func TestReadAllFiltersAndCursor(t *testing.T) {
	t.Parallel()
	testReadAll(t, tempDB(t))
}

func testReadAll(t *testing.T, db string) {
	appends := []struct{ stream, typ, tenant string }{
		{"certificate-1", "CertificateIssued", "acme"},
		{"certificate-2", "CertificateIssued", "globex"},
		{"certificate-1", "CertificateRevoked", "acme"},
		{"crl-1", "CRLPublished", "acme"},
		{"certificate-3", "CertificateIssued", "acme"},
	}
	for i, a := range appends {
		mustCLI(t, db, "append", a.stream, a.typ, `{"n":`+string(rune('0'+i))+`}`, "--meta", "tenant="+a.tenant)
	}
	all := lines(t, mustCLI(t, db, "read", "--all"))
	if len(all) != len(appends) {
		t.Fatalf("read --all: %d events, want %d", len(all), len(appends))
	}
	for i, e := range all {
		if e["stream"] != appends[i].stream || e["type"] != appends[i].typ {
			t.Fatalf("event %d is %v, want %v", i, e, appends[i])
		}
	}
	count := func(args ...string) int {
		return len(lines(t, mustCLI(t, db, append([]string{"read", "--all"}, args...)...)))
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--type", "CertificateIssued"}, 3},
		{[]string{"--type", "CertificateIssued", "--type", "CRLPublished"}, 4},
		{[]string{"--prefix", "certificate-"}, 4},
		{[]string{"--tenant", "acme"}, 4},
		{[]string{"--tenant", "acme", "--type", "CertificateIssued", "--prefix", "certificate-"}, 2},
		{[]string{"--limit", "2"}, 2},
		{[]string{"--from", all[1]["position"].(string)}, 3},
		{[]string{"--from", all[4]["position"].(string)}, 0},
		{[]string{"--from", all[1]["position"].(string), "--type", "CertificateIssued", "--limit", "1"}, 1},
	} {
		if got := count(c.args...); got != c.want {
			t.Errorf("read --all %s: %d events, want %d", strings.Join(c.args, " "), got, c.want)
		}
	}
	rest := lines(t, mustCLI(t, db, "read", "--all", "--from", all[2]["position"].(string)))
	if len(rest) != 2 || rest[0]["id"] != all[3]["id"] || rest[1]["id"] != all[4]["id"] {
		t.Errorf("resuming after the third event read %v", rest)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFollow(t *testing.T) {
	t.Parallel()
	testFollow(t, tempDB(t))
}

func testFollow(t *testing.T, db string) {
	mustCLI(t, db, "append", "certificate-1", "CertificateIssued", `{"serial":"1"}`)
	mustCLI(t, db, "append", "other-1", "Other", `{}`)

	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"read", "--all", "--follow", "--prefix", "certificate-", "--db", db}, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		for !cond(out.String()) {
			select {
			case code := <-done:
				t.Fatalf("--follow ended (exit %d, stderr %q) before %s", code, errb.String(), what)
			case <-ctx.Done():
				t.Fatalf("no %s before the test's deadline; output %q", what, out.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitFor("the existing event", func(s string) bool { return strings.Contains(s, `"serial":"1"`) })

	// Appended after --follow started, by another process's store on the same file.
	mustCLI(t, db, "append", "other-1", "Other", `{}`)
	mustCLI(t, db, "append", "certificate-2", "CertificateIssued", `{"serial":"2"}`)
	waitFor("the event appended while following", func(s string) bool { return strings.Contains(s, `"serial":"2"`) })

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("--follow exited %d after cancellation, want 0 (stderr %q)", code, errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("--follow did not end after its context was cancelled")
	}
	got := lines(t, out.String())
	if len(got) != 2 || got[0]["stream"] != "certificate-1" || got[1]["stream"] != "certificate-2" {
		t.Fatalf("--follow printed %v", got)
	}
}

func TestFollowLimit(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	for range 3 {
		mustCLI(t, db, "append", "s", "E", `{}`)
	}
	if got := lines(t, mustCLI(t, db, "read", "--all", "--follow", "--limit", "2")); len(got) != 2 {
		t.Fatalf("--follow --limit 2 printed %d events", len(got))
	}
}

func TestDemoRunsTwice(t *testing.T) {
	t.Parallel()
	testDemoTwice(t, tempDB(t))
}

func testDemoTwice(t *testing.T, db string) {
	first := mustCLI(t, db, "demo")
	second := mustCLI(t, db, "demo")
	for i, out := range []string{first, second} {
		for _, want := range []string{
			"CertificateIssued", "CertificateRenewed", "CertificateRevoked", "approved by revocation-committee/RC-2023-11",
			"invalid since 2023-03-14 07:30", "state at 09:00:    revoked", "was not lost", "Global log of this run",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: output lacks %q:\n%s", i+1, want, out)
			}
		}
	}
	if !strings.Contains(first, "(run 1)") || !strings.Contains(second, "(run 2)") || !strings.Contains(second, "certificate-020B1C") {
		t.Errorf("the second run does not use its own streams:\n%s", second)
	}
	// Each run's revocation is its own stream's third event.
	for _, s := range []string{"certificate-0B1C", "certificate-020B1C"} {
		evs := lines(t, mustCLI(t, db, "read", s))
		if len(evs) != 3 || evs[2]["type"] != "CertificateRevoked" {
			t.Errorf("%s holds %v", s, evs)
		}
	}
}

func TestBenchSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "strata.db")
	for _, args := range [][]string{{"append", "--batch", "3"}, {"read", "--batch", "3"}, {"command"}} {
		out := mustCLI(t, db, append([]string{"bench"}, append(args, "--clients", "2", "--events", "20")...)...)
		if !strings.Contains(out, "strata ev/s") || !strings.Contains(out, "sqlite") || !strings.Contains(out, "x\n") || strings.Contains(out, " - ") {
			t.Errorf("bench %s printed no ratio:\n%s", args[0], out)
		}
		if !strings.Contains(out, "ratio per round") {
			t.Errorf("bench %s printed no spread of the rounds' ratios:\n%s", args[0], out)
		}
	}
	checkProtectBench(t, mustCLI(t, db, "bench", "protect", "--clients", "2", "--batch", "3", "--events", "100"))
	checkRetentionBench(t, mustCLI(t, db, "bench", "retention", "--batch", "7", "--events", "60"), true)
	// The bench works in scratch space and leaves nothing behind, not even the database named.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the bench left %v in %s", entries, dir)
	}
}

func TestBenchMem(t *testing.T) {
	t.Parallel()
	out := mustCLI(t, "mem:", "bench", "append", "--clients", "3", "--batch", "2", "--events", "25")
	if !strings.Contains(out, "strata only") {
		t.Errorf("bench on mem: printed\n%s", out)
	}
	checkProtectBench(t, mustCLI(t, "mem:", "bench", "protect", "--clients", "2", "--batch", "3", "--events", "100"))
	checkRetentionBench(t, mustCLI(t, "mem:", "bench", "retention", "--batch", "7", "--events", "60"), false)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "s", "E", `{}`)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"invalid JSON", []string{"append", "s", "E", `{"a":`}, exitInvalid, "not valid JSON"},
		{"empty JSON", []string{"append", "s", "E", ``}, exitInvalid, "not valid JSON"},
		{"bad expect", []string{"append", "s", "E", `{}`, "--expect", "sometimes"}, exitInvalid, `--expect "sometimes"`},
		{"negative expect", []string{"append", "s", "E", `{}`, "--expect", "-1"}, exitInvalid, `--expect "-1"`},
		{"bad id", []string{"append", "s", "E", `{}`, "--id", "42"}, exitInvalid, "not a UUID"},
		{"bad meta", []string{"append", "s", "E", `{}`, "--meta", "novalue"}, exitInvalid, "want key=value"},
		{"repeated meta", []string{"append", "s", "E", `{}`, "--meta", "a=1", "--meta", "a=2"}, exitInvalid, "given twice"},
		{"bad occurred", []string{"append", "s", "E", `{}`, "--occurred", "yesterday"}, exitInvalid, "RFC 3339"},
		{"empty stream", []string{"append", "", "E", `{}`}, exitInvalid, "empty stream name"},
		{"too few args", []string{"append", "s", "E"}, exitInvalid, "want STREAM TYPE JSON"},
		{"unknown flag", []string{"append", "s", "E", `{}`, "--frobnicate"}, exitInvalid, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, exitInvalid, "unknown command"},
		{"bad cursor", []string{"read", "--all", "--from", "abc"}, exitInvalid, `--from "abc"`},
		{"bad cursor part", []string{"read", "--all", "--from", "1.x"}, exitInvalid, `--from "1.x"`},
		{"bad stream from", []string{"read", "s", "--from", "1.5"}, exitInvalid, `--from "1.5"`},
		{"negative limit", []string{"read", "--all", "--limit", "-1"}, exitInvalid, "--limit"},
		{"stream and all", []string{"read", "s", "--all"}, exitInvalid, "takes no STREAM"},
		{"follow a stream", []string{"read", "s", "--follow"}, exitInvalid, "--follow works with --all only"},
		{"backward all", []string{"read", "--all", "--backward"}, exitInvalid, "--backward"},
		{"bench workload", []string{"bench", "sideways"}, exitInvalid, "unknown workload"},
		{"bench protect zero", []string{"bench", "protect", "--events", "0"}, exitInvalid, "--events"},
		{"bench protect few", []string{"bench", "protect", "--events", "100"}, exitInvalid, "each client appends in every one of the 16 rounds"},
		{"bench retention few", []string{"bench", "retention", "--events", "3"}, exitInvalid, "--events 4 or more"},
		{"bench retention batch", []string{"bench", "retention", "--batch", "100000"}, exitInvalid, "--batch must be at most"},
		{"bench zero", []string{"bench", "append", "--clients", "0"}, exitInvalid, "--clients"},
		{"bench command batch", []string{"bench", "command", "--batch", "3"}, exitInvalid, "--batch must be 1"},
		{"bench http negative payload", []string{"bench", "http", "--url", "http://127.0.0.1:1", "--key", "k", "--payload", "-1", "--duration", "1s", "--warmup", "0s"}, exitInvalid, "--payload"},
		{"serve no request timeout", []string{"serve", "--addr", "127.0.0.1:0", "--request-timeout", "0s"}, exitInvalid, "--request-timeout"},
		{"serve no body", []string{"serve", "--addr", "127.0.0.1:0", "--max-body", "0"}, exitInvalid, "--max-body"},
		{"serve no shutdown time", []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-timeout", "0s"}, exitInvalid, "--shutdown-timeout"},
		{"dlq negative limit", []string{"transmit", "dlq", "list", "--transmitter", "t", "--limit", "-1"}, exitInvalid, "--limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, testContext(t), db, "", c.args...)
			wantErr(t, r, c.code, c.msg)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	t.Run("stdin payload", func(t *testing.T) {
		r := cli(t, testContext(t), db, "{not json", "append", "s", "E", "-")
		wantErr(t, r, exitInvalid, "not valid JSON")
	})
	for _, c := range []struct{ dsn, msg string }{
		{"foo://bar", `unknown database scheme "foo"`},
		{"strata.db", "has no scheme"},
		{"sqlite:", "needs a file path"},
		{"mem:/x", "takes no path"},
		{"postgres://u:hunter2@127.0.0.1:5432/db?schema=", "empty schema"},
		{"postgres://u:hunter2@127.0.0.1:5432/db?group_commit=-1", "group_commit"},
		{"postgres://u:hunter2@127.0.0.1:5432/db?group_commit=many", "0 (off) to 1024"},
		{"postgres://u:hunter2@[::1/db", "not valid"},
	} {
		t.Run("dsn "+c.dsn, func(t *testing.T) {
			r := cli(t, testContext(t), c.dsn, "", "streams")
			wantErr(t, r, exitInvalid, c.msg)
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("the error shows the password: %q", r.stderr)
			}
		})
	}
	t.Run("STRATA_DB", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := run(testContext(t), []string{"streams"}, strings.NewReader(""), &out, &errb, func(k string) string {
			if k == "STRATA_DB" {
				return "nosuch://x"
			}
			return ""
		})
		wantErr(t, result{out.String(), errb.String(), code}, exitInvalid, `unknown database scheme "nosuch"`)
	})
}

func TestParseDSN(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in                      string
		backend, target, schema string
		str                     string
	}{
		{"sqlite:strata.db", backendSQLite, "strata.db", "", "sqlite:strata.db"},
		{"sqlite://data/strata.db", backendSQLite, "data/strata.db", "", "sqlite:data/strata.db"},
		{"sqlite:///var/lib/strata.db", backendSQLite, "/var/lib/strata.db", "", "sqlite:/var/lib/strata.db"},
		{"mem:", backendMem, "", "", "mem:"},
		{"postgres://u:pw@h:5432/db?sslmode=disable", backendPostgres, "postgres://u:pw@h:5432/db?sslmode=disable", "", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://h/db?schema=audit&sslmode=disable", backendPostgres, "postgresql://h/db?sslmode=disable", "audit", "postgresql://h/db?sslmode=disable (schema audit)"},
		{"postgres://h/db?group_commit=0&schema=s", backendPostgres, "postgres://h/db", "s", "postgres://h/db (schema s) (group_commit 0)"},
		{"mysql://root:pw@127.0.0.1:3306/test", backendMySQL, "mysql://root:pw@127.0.0.1:3306/test", "", "mysql://root:xxxxx@127.0.0.1:3306/test"},
	} {
		d, err := parseDSN(c.in)
		if err != nil {
			t.Errorf("parseDSN(%q): %v", c.in, err)
			continue
		}
		if d.backend != c.backend || d.target != c.target || d.schema != c.schema || d.String() != c.str {
			t.Errorf("parseDSN(%q) = %+v (%s), want %s %q %q (%s)", c.in, d, d, c.backend, c.target, c.schema, c.str)
		}
	}
}

func TestPlanBatches(t *testing.T) {
	t.Parallel()
	plan := planBatches(benchOpts{clients: 3, batch: 4, events: 21})
	total, batches := 0, 0
	for _, sizes := range plan {
		for _, n := range sizes {
			total += n
			batches++
		}
	}
	if total != 21 || batches != 6 || len(plan[0]) != 2 || len(plan[2]) != 2 {
		t.Fatalf("planBatches = %v", plan)
	}
}

// TestHistoryFlagsOfTheOtherForm: a flag of one form of history (STREAM, or --entity) given to
// the other is refused, not silently ignored: the output would not be what was asked for.
func TestHistoryFlagsOfTheOtherForm(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "certificate-1", "E", `{"serial":"1"}`, "--meta", "tenant=acme")
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"entity from", []string{"history", "--entity", "1", "--tenant", "acme", "--from", "2030-01-01"}, "--from"},
		{"entity to", []string{"history", "--entity", "1", "--tenant", "acme", "--to", "2000-01-01"}, "--to"},
		{"entity model", []string{"history", "--entity", "1", "--tenant", "acme", "--model", "certificate"}, "--model"},
		{"stream tenant", []string{"history", "certificate-1", "--tenant", "other"}, "--tenant"},
		{"stream field", []string{"history", "certificate-1", "--field", "id"}, "--field"},
		{"stream prefix", []string{"history", "certificate-1", "--prefix", "x-"}, "--prefix"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, testContext(t), db, "", c.args...)
			wantErr(t, r, exitInvalid, c.msg)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	if out := lines(t, mustCLI(t, db, "history", "--entity", "1", "--tenant", "acme")); len(out) != 1 {
		t.Errorf("entity history printed %v", out)
	}
}

// TestStateFlagsThatWouldDoNothing: --valid-field only matters with --known-at, and a negative
// --take-snapshots takes none; both were parsed and silently ignored.
func TestStateFlagsThatWouldDoNothing(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "s", "E", `{"a":1}`)
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"valid field without known-at", []string{"state", "s", "--valid-field", "invalidSince"}, "--valid-field"},
		{"valid field with at only", []string{"state", "s", "--at", "now", "--valid-field", "invalidSince"}, "--valid-field"},
		{"negative snapshots", []string{"state", "s", "--take-snapshots", "-1"}, "--take-snapshots"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, testContext(t), db, "", c.args...)
			wantErr(t, r, exitInvalid, c.msg)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	mustCLI(t, db, "state", "s", "--at", "now", "--known-at", "now", "--valid-field", "invalidSince")
}

// TestAppendOccurredZeroTime: an --occurred that is Go's zero time was taken for "not given"
// and recorded as the time of the append, with exit 0.
func TestAppendOccurredZeroTime(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	for _, occ := range []string{"0001-01-01T00:00:00Z", "0001-01-01T01:00:00+01:00"} {
		r := cli(t, testContext(t), db, "", "append", "s", "E", `{}`, "--occurred", occ)
		wantErr(t, r, exitInvalid, "--occurred")
	}
	// The refused appends did not even create the database: read finds none (exit 4).
	if r := cli(t, testContext(t), db, "", "read", "s"); r.code != exitNotFound && (r.code != exitOK || r.stdout != "") {
		t.Errorf("an event was written: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}

// TestStateSnapshotsKeepTheirValidTime: snapshots taken with --valid-field fold by another
// valid time than those without; the answer to one question must not depend on which
// snapshots an earlier command took.
func TestStateSnapshotsKeepTheirValidTime(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "s", "E", `{"status":"active"}`, "--occurred", "2023-03-01T00:00:00Z")
	mustCLI(t, db, "append", "s", "E", `{"status":"revoked","invalidSince":"2023-03-14T00:00:00Z"}`, "--occurred", "2023-03-20T00:00:00Z")
	status := func(args ...string) any {
		t.Helper()
		l := lines(t, mustCLI(t, db, append([]string{"state", "s", "--at", "2023-03-15", "--known-at", "now"}, args...)...))
		return l[0]["state"].(map[string]any)["status"]
	}
	// By occurredAt the revocation (20 March) holds after 15 March; by invalidSince before.
	if got := status(); got != "active" {
		t.Fatalf("by occurredAt: %v, want active", got)
	}
	if got := status("--valid-field", "invalidSince", "--take-snapshots", "1"); got != "revoked" {
		t.Fatalf("by invalidSince: %v, want revoked", got)
	}
	if got := status(); got != "active" {
		t.Errorf("by occurredAt, after snapshots by invalidSince: %v, want active", got)
	}
	if got := status("--take-snapshots", "1"); got != "active" {
		t.Errorf("by occurredAt, taking snapshots: %v, want active", got)
	}
	if got := status("--valid-field", "invalidSince"); got != "revoked" {
		t.Errorf("by invalidSince, after snapshots by occurredAt: %v, want revoked", got)
	}
}

// TestBenchFlagDefaults checks that each workload's --help shows the defaults it runs with:
// retention's batch and writers differ from the append workloads', command's batch is 1.
func TestBenchFlagDefaults(t *testing.T) {
	for _, tc := range []struct {
		workload string
		want     []string
	}{
		{"retention", []string{"--batch int ", "(default 2000)", "--clients int ", "(default 2)"}},
		{"command", []string{"events per command (must be 1) (default 1)"}},
		{"append", []string{"events per append (one transaction) (default 10)", "(default 4)"}},
	} {
		r := cli(t, testContext(t), "", "", "bench", tc.workload, "--help")
		if r.code != 0 {
			t.Fatalf("bench %s --help: exit %d: %s", tc.workload, r.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("bench %s --help lacks %q:\n%s", tc.workload, w, r.stdout)
			}
		}
	}
}

// TestReadersDoNotCreateADatabase: a command that only reads, given an SQLite file that does
// not exist (a typo in --db, or the default strata.db in another directory), fails with exit 4
// instead of creating an empty database and printing nothing; writers still create the file.
func TestReadersDoNotCreateADatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "typo.db")
	db := "sqlite:" + path
	for _, args := range [][]string{
		{"read", "--all"},
		{"read", "s"},
		{"streams"},
		{"state", "s"},
		{"history", "s"},
		{"query", "--tenant", "t", "--all"},
		{"schema", "list"},
		{"apikey", "list"},
		{"projections", "list"},
		{"projections", "status"},
		{"retention", "plan"},
		{"retention", "holds"},
		{"proof", "01890a5d-ac96-774b-bcce-b302099a8057"},
		{"transmit", "status"},
		{"transmit", "dlq", "list", "--transmitter", "hooks"},
	} {
		r := cli(t, testContext(t), db, "", args...)
		if r.code != exitNotFound || !strings.Contains(r.stderr, path) {
			t.Errorf("strata %s on a missing file: exit %d, want %d naming the file: %s%s", strings.Join(args, " "), r.code, exitNotFound, r.stdout, r.stderr)
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatalf("strata %s created %s", strings.Join(args, " "), path)
		}
	}
	mustCLI(t, db, "query", "--create-indexes") // sets up a store: a new one too
	mustCLI(t, db, "append", "s", "T", `{}`)
	if got := lines(t, mustCLI(t, db, "read", "s")); len(got) != 1 {
		t.Errorf("read after the first append: %d events, want 1", len(got))
	}
}

// TestDSNErrorsHidePasswords: a password with a character that URLs reserve ('/', '#', '?' or a
// bad '%' escape) made url.Parse fail with a message quoting what it took for the port or an
// escape, a piece of the password, and that message went to stderr.
func TestDSNErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dsn, secret string }{
		{"postgres://u:hunter2#x@127.0.0.1:5432/db", "hunter2"},
		{"postgresql://u:hunter2/x@127.0.0.1:5432/db", "hunter2"},
		{"mysql://u:hunter2?x@127.0.0.1:3306/db", "hunter2"},
		{"mysql://u:hun%zzter@127.0.0.1:3306/db", "%zz"},
	} {
		r := cli(t, testContext(t), c.dsn, "", "streams")
		if r.code != exitInvalid {
			t.Errorf("%s: exit %d, want %d: %s", c.dsn, r.code, exitInvalid, r.stderr)
		}
		if strings.Contains(r.stderr, c.secret) || !strings.Contains(r.stderr, "not valid") {
			t.Errorf("%s: the error shows a piece of the password (or says nothing): %q", c.dsn, r.stderr)
		}
	}
}

// TestAppendStdinTooLarge: a payload on standard input larger than an event holds was cut at
// the limit and then reported as "not valid JSON", which sent the user looking for a syntax
// error in a valid document.
func TestAppendStdinTooLarge(t *testing.T) {
	t.Parallel()
	big := `{"a":"` + strings.Repeat("x", strata.MaxDataLen) + `"}`
	r := cli(t, testContext(t), "mem:", big, "append", "s", "E", "-")
	wantErr(t, r, exitInvalid, "larger than")
	if strings.Contains(r.stderr, "not valid JSON") {
		t.Errorf("a valid payload is reported as invalid JSON: %s", r.stderr)
	}
}

// TestMySQLDSNRefusesPostgresParameters: ?schema= and ?group_commit= are strata's parameters of
// PostgreSQL DSNs. On a mysql:// DSN they went to the driver as session variables, and the open
// failed with an internal error about transaction_isolation that named neither.
func TestMySQLDSNRefusesPostgresParameters(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"schema=strata", "group_commit=0"} {
		r := cli(t, testContext(t), "mysql://root@127.0.0.1:3306/test?"+p, "", "streams")
		wantErr(t, r, exitInvalid, strings.Split(p, "=")[0])
	}
}

// TestGroupCommandsRefuseUnknownSubcommands: strata keys (alone or with a typo) panicked, as its
// wrapped RunE called a nil function; projections, retention and transmit printed their help
// and exited 0 for a misspelt subcommand, so "strata retention rnu" passed for a retention run.
func TestGroupCommandsRefuseUnknownSubcommands(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"keys"}, {"keys", "bogus"},
		{"projections"}, {"projections", "bogus"},
		{"retention"}, {"retention", "rnu"},
		{"transmit"}, {"transmit", "bogus"},
	} {
		r := cli(t, testContext(t), "mem:", "", args...)
		wantErr(t, r, exitInvalid, "subcommand")
		if r.stdout != "" {
			t.Errorf("strata %s printed %q", strings.Join(args, " "), r.stdout)
		}
	}
	if r := cli(t, testContext(t), "", "", "retention", "--help"); r.code != 0 || !strings.Contains(r.stdout, "legal hold") {
		t.Errorf("retention --help: exit %d: %s", r.code, r.stderr)
	}
}
