package query_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/query"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func day(d, h int) time.Time { return time.Date(2023, 3, d, h, 0, 0, 0, time.UTC) }

func encode(t *testing.T, reg *codec.Registry, v any, occurred time.Time, meta strata.Metadata) strata.EventData {
	t.Helper()
	e, err := reg.Encode(context.Background(), v, meta)
	if err != nil {
		t.Fatal(err)
	}
	e.OccurredAt = occurred
	return e
}

func mustAppend(t *testing.T, st strata.Store, stream string, evs ...strata.EventData) strata.AppendResult {
	t.Helper()
	res, err := st.Append(context.Background(), stream, strata.Any, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func lastEvent(t *testing.T, st strata.Store, stream string) strata.Event {
	t.Helper()
	for e, err := range st.ReadStream(context.Background(), stream, strata.ReadStreamOptions{Backward: true, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Fatalf("stream %s is empty", stream)
	return strata.Event{}
}

// TestBitemporalRevocation is DESIGN §1's case on every backend: a certificate issued on
// 1 March, a revocation recorded later with an invalidity date of 14 March, and a correction
// recorded after that which moves the invalidity date back to 12 March. Each question is
// asked without snapshots and again from temporal snapshots, with the same answers.
func TestBitemporalRevocation(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			reg, err := pki.NewRegistry()
			if err != nil {
				t.Fatal(err)
			}
			model := query.DeciderModel("pki.certificate/1", reg, pki.CertificateDecider)
			stream := pki.CertificateStream("7F3A")
			meta := strata.Metadata{Tenant: "ca-1", Principal: "operator:mkim"}
			mustAppend(t, st, stream, encode(t, reg, pki.CertificateIssued{Serial: "7F3A", SubjectID: "s-1", ValidFrom: day(1, 0), ValidTo: day(1, 0).AddDate(1, 0, 0)}, day(1, 9), meta))
			issued := lastEvent(t, st, stream).RecordedAt
			mustAppend(t, st, stream, encode(t, reg, pki.CertificateRevoked{Serial: "7F3A", Reason: "keyCompromise", InvalidSince: day(14, 0), ApprovedBy: []string{"a", "b"}}, day(14, 0), meta))
			revoked := lastEvent(t, st, stream).RecordedAt
			mustAppend(t, st, stream, encode(t, reg, pki.CertificateRevoked{Serial: "7F3A", Reason: "keyCompromise", InvalidSince: day(12, 0), ApprovedBy: []string{"a", "b", "c"}}, day(12, 0), meta))
			corrected := lastEvent(t, st, stream).RecordedAt
			if !issued.Before(revoked) || !revoked.Before(corrected) {
				t.Fatalf("recording times not increasing: %s %s %s", issued, revoked, corrected)
			}
			cases := []struct {
				name       string
				at         query.At
				status     pki.Status
				since      time.Time
				version    int64
				approvedBy int
			}{
				{"before the issuance was recorded", query.At{Recorded: issued.Add(-time.Microsecond)}, pki.StatusUnknown, time.Time{}, 0, 0},
				{"as recorded after the issuance", query.At{Recorded: issued}, pki.StatusActive, time.Time{}, 1, 0},
				{"as recorded now", query.At{}, pki.StatusRevoked, day(12, 0), 3, 3},
				{"known after the revocation, about 15 March", query.At{Recorded: revoked, Occurred: day(15, 0)}, pki.StatusRevoked, day(14, 0), 2, 2},
				{"known after the revocation, about 13 March", query.At{Recorded: revoked, Occurred: day(13, 0)}, pki.StatusActive, time.Time{}, 2, 0},
				{"known after the issuance, about 15 March", query.At{Recorded: issued, Occurred: day(15, 0)}, pki.StatusActive, time.Time{}, 1, 0},
				{"known after the correction, about 13 March", query.At{Recorded: corrected, Occurred: day(13, 0)}, pki.StatusRevoked, day(12, 0), 3, 3},
				{"known after the correction, about 11 March", query.At{Recorded: corrected, Occurred: day(11, 0)}, pki.StatusActive, time.Time{}, 3, 0},
				{"known now, about 28 February", query.At{Occurred: day(1, 0).Add(-time.Hour)}, pki.StatusUnknown, time.Time{}, 3, 0},
			}
			check := func(withSnapshots bool) {
				for _, c := range cases {
					got, err := query.StateAt(ctx, st, model, stream, c.at)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					if got.State.Status != c.status || !got.State.InvalidSince.Equal(c.since) || got.Version != c.version || len(got.State.ApprovedBy) != c.approvedBy {
						t.Errorf("%s (snapshots %v): %+v at version %d; want %s since %s at version %d", c.name, withSnapshots, got.State, got.Version, c.status, c.since, c.version)
					}
					if withSnapshots && c.at.Occurred.IsZero() && c.version > 0 && got.FromSnapshot != c.version {
						t.Errorf("%s: folded from snapshot %d, want %d", c.name, got.FromSnapshot, c.version)
					}
				}
			}
			check(false)
			if n, err := query.TakeSnapshots(ctx, st, model, stream, 1); err != nil || n != 3 {
				t.Fatalf("take snapshots: %d, %v", n, err)
			}
			check(true)

			// What changed it on 14 March (valid time), and in the recording window of the revocation.
			ch, err := query.ChangesOccurred(ctx, st, stream, day(14, 0), day(15, 0))
			if err != nil || len(ch) != 1 || ch[0].Version != 2 {
				t.Fatalf("changes that occurred on 14 March: %v, %v", ch, err)
			}
			ch, err = query.Changes(ctx, st, stream, revoked, corrected)
			if err != nil || len(ch) != 1 || ch[0].Version != 2 {
				t.Fatalf("changes recorded between the revocation and the correction: %v, %v", ch, err)
			}
		})
	}
}

// TestBackdatedEvents checks valid-time folding when events arrive out of valid-time order: a
// later-recorded event that occurred earlier counts for the earlier time.
func TestBackdatedEvents(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "sqlite")
	m := query.JSONModel()
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"a":1}`), OccurredAt: day(10, 0)})
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"b":2}`), OccurredAt: day(5, 0)}) // backdated
	for _, c := range []struct {
		occurred time.Time
		want     string
	}{
		{day(4, 0), `{}`}, {day(6, 0), `{"b":2}`}, {day(11, 0), `{"a":1,"b":2}`},
	} {
		got, err := query.StateAt(ctx, st, m, "registry-1", query.At{Occurred: c.occurred})
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(got.State); string(b) != c.want {
			t.Errorf("about %s: %s, want %s", c.occurred, b, c.want)
		}
	}
}

func TestHistoryDiffs(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	reg, err := pki.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	stream := pki.CertificateStream("9B")
	mustAppend(t, st, stream, encode(t, reg, pki.CertificateIssued{Serial: "9B", ValidFrom: day(1, 0), ValidTo: day(1, 0).AddDate(1, 0, 0)}, time.Time{}, strata.Metadata{Tenant: "ca-1", Principal: "operator:mkim", Session: "sess-1", Correlation: "req-1"}))
	revoke := encode(t, reg, pki.CertificateRevoked{Serial: "9B", Reason: "keyCompromise", InvalidSince: day(14, 0), ApprovedBy: []string{"committee:alice", "committee:bob"}}, day(14, 0), strata.Metadata{Tenant: "ca-1", Principal: "saga:approval", Correlation: "req-2", Causation: "cmd-7"})
	mustAppend(t, st, stream, revoke)
	model := query.DeciderModel("pki.certificate/1", reg, pki.CertificateDecider)
	var got []query.Entry
	for e, err := range query.History(ctx, st, model, stream, query.HistoryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("history of %d entries", len(got))
	}
	if got[0].Principal != "operator:mkim" || got[0].Session != "sess-1" || got[0].Correlation != "req-1" {
		t.Errorf("first entry: %+v", got[0])
	}
	if got[1].Reason != "keyCompromise" || got[1].Causation != "cmd-7" || !got[1].OccurredAt.Equal(day(14, 0)) {
		t.Errorf("second entry: %+v", got[1])
	}
	want := map[string]query.Change{
		"/status":        {Op: "replace", Path: "/status", Old: json.RawMessage(`"active"`), New: json.RawMessage(`"revoked"`)},
		"/revokedReason": {Op: "add", Path: "/revokedReason", New: json.RawMessage(`"keyCompromise"`)},
		"/approvedBy":    {Op: "add", Path: "/approvedBy", New: json.RawMessage(`["committee:alice","committee:bob"]`)},
		"/invalidSince":  {Op: "add", Path: "/invalidSince", New: json.RawMessage(`"2023-03-14T00:00:00Z"`)},
	}
	if len(got[1].Diff) != len(want) {
		t.Fatalf("diff of the revocation: %+v", got[1].Diff)
	}
	for _, c := range got[1].Diff {
		w := want[c.Path]
		if c.Op != w.Op || string(c.Old) != string(w.Old) || string(c.New) != string(w.New) {
			t.Errorf("change %s: %+v, want %+v", c.Path, c, w)
		}
	}

	// The entity's history across its certificate stream and a revocation request.
	mustAppend(t, st, pki.RequestStream("r-1"), strata.EventData{Type: "RevocationRequested", Data: []byte(`{"requestId":"r-1","serial":"9B","reason":"keyCompromise"}`), Meta: strata.Metadata{Tenant: "ca-1", Principal: "ra:jdoe"}})
	mustAppend(t, st, pki.RequestStream("r-2"), strata.EventData{Type: "RevocationRequested", Data: []byte(`{"requestId":"r-2","serial":"9C"}`), Meta: strata.Metadata{Tenant: "ca-1"}})
	mustAppend(t, st, pki.RequestStream("r-3"), strata.EventData{Type: "RevocationRequested", Data: []byte(`{"requestId":"r-3","serial":"9B"}`), Meta: strata.Metadata{Tenant: "ca-2"}})
	var ent []query.Entry
	for e, err := range query.EntityHistory(ctx, st, query.Entity{Tenant: "ca-1", ID: "9B"}) {
		if err != nil {
			t.Fatal(err)
		}
		ent = append(ent, e)
	}
	if len(ent) != 3 || ent[2].Stream != pki.RequestStream("r-1") || ent[2].Principal != "ra:jdoe" {
		t.Fatalf("entity history: %+v", ent)
	}
	if d := ent[2].Diff; len(d) != 3 || d[0].Op != "add" {
		t.Errorf("diff of the request: %+v", d)
	}
}

func TestDiff(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want []string
	}{
		{`{}`, `{}`, nil},
		{`{"a":1}`, `{"a":1.0}`, []string{`replace /a: 1 → 1.0`}},
		{`{"a":{"b":1,"c":[1]}}`, `{"a":{"b":2,"c":[1]},"d~/":null}`, []string{`replace /a/b: 1 → 2`, `add /d~0~1: null`}},
		{`{"x":true}`, `{}`, []string{`remove /x (was true)`}},
		{`[1]`, `{"a":1}`, []string{`replace /: [1] → {"a":1}`}},
	} {
		d, err := query.Diff([]byte(c.a), []byte(c.b))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range d {
			got = append(got, query.FormatChange(ch))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("diff %s → %s: %q, want %q", c.a, c.b, got, c.want)
		}
	}
	if _, err := query.Diff([]byte(`{`), []byte(`{}`)); !errors.Is(err, strata.ErrInvalid) {
		t.Errorf("diff of bad JSON: %v", err)
	}
}

// TestStateAtUsesSnapshots checks that a state at a time folds at most the events after the
// latest snapshot valid for it (the basis of the 10,000-event target in bench_test.go).
func TestStateAtUsesSnapshots(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "sqlite")
	evs := make([]strata.EventData, 1000)
	for i := range evs {
		evs[i] = strata.EventData{Type: "Counted", Data: []byte(fmt.Sprintf(`{"n":%d}`, i+1))}
	}
	mustAppend(t, st, "counter-1", evs...)
	m := query.JSONModel()
	if n, err := query.TakeSnapshots(ctx, st, m, "counter-1", 100); err != nil || n != 10 {
		t.Fatalf("snapshots: %d, %v", n, err)
	}
	var at time.Time
	for e, err := range st.ReadStream(ctx, "counter-1", strata.ReadStreamOptions{From: 750, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		at = e.RecordedAt
	}
	got, err := query.StateAt(ctx, st, m, "counter-1", query.At{Recorded: at})
	if err != nil {
		t.Fatal(err)
	}
	// One append: every event has the same recording time, so the whole stream is known then.
	if got.Version != 1000 || got.FromSnapshot != 1000 || got.Events != 0 || got.State["n"] != json.Number("1000") {
		t.Fatalf("state: %+v", got)
	}
}

// retentionStore appends tenant "acme" and "beta" events to certificate streams, seals them
// with signed checkpoints, and appends one more event that stays unsealed.
func retentionStore(t *testing.T, kind string) (strata.Store, *ledger.Sealer, ledger.Policy) {
	t.Helper()
	ctx := testCtx(t)
	st, _ := backends.Open(t, kind)
	skey, vkey, err := ledger.GenerateKey(rand.Reader, "ca.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := ledger.NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := ledger.NewSealer(st, ledger.WithSigner(signer), ledger.WithBatch(7))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i := range 10 {
			tenant := []string{"acme", "beta"}[i%2]
			typ := []string{"CertificateIssued", "CertificateRevoked"}[i/2%2]
			mustAppend(t, st, fmt.Sprintf("certificate-%d", i), strata.EventData{Type: typ,
				Data: []byte(fmt.Sprintf(`{"subjectDN":"CN=Subject %d","round":%d}`, i, round)),
				Meta: strata.Metadata{Tenant: tenant, Principal: "operator:mkim"}})
		}
		for {
			n, _, err := sealer.SealOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		if _, err := sealer.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, st, "certificate-0", strata.EventData{Type: "CertificateRenewed", Meta: strata.Metadata{Tenant: "acme"}})
	return st, sealer, policy
}

func audit(t *testing.T, st strata.Store, p ledger.Policy) *ledger.AuditReport {
	t.Helper()
	rep, err := ledger.Audit(testCtx(t), st, ledger.AuditOptions{Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("audit after retention: %v", rep.Problems)
	}
	return rep
}

// TestRetentionKeepsTheLedgerVerifiable runs retention on every backend: a plan changes
// nothing, a run removes the payloads of sealed events past their policy's age (not those of
// a held stream, of a kept type, of a younger policy or not yet sealed), the ledger audit with
// signatures and consistency proofs still passes, and the run is recorded in the audit stream.
func TestRetentionKeepsTheLedgerVerifiable(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, sealer, policy := retentionStore(t, kind)
			rs := st.(strata.RetentionStore)
			if err := rs.PlaceLegalHold(ctx, strata.LegalHold{Stream: "certificate-2", Reason: "litigation 2023-17", HeldBy: "legal:counsel"}); err != nil {
				t.Fatal(err)
			}
			later := func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }
			r := &query.Retention{
				Policies: []query.Policy{
					{Name: "default"},
					{Name: "revocations", Types: []string{"CertificateRevoked"}, Keep: true},
					{Name: "beta", Tenant: "beta", MaxAge: 365 * 24 * time.Hour},
				},
				Batch: 4, Principal: "ops:retention", Now: later,
			}
			before, err := storetestCollect(st)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := r.Plan(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			// acme (even i), issued (i/2 even: i = 0, 4, 8), not held: 3 streams × 3 rounds.
			if !plan.DryRun || plan.Removed != 9 || plan.Held != 1 {
				t.Fatalf("plan: %+v", plan)
			}
			if after, _ := storetestCollect(st); !sameEvents(before, after) {
				t.Fatal("a plan changed the log")
			}
			rep, err := r.Run(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Removed != 9 || rep.Policies[len(rep.Policies)-1].Policy != "default" {
				t.Fatalf("run: %+v", rep)
			}
			after, err := storetestCollect(st)
			if err != nil {
				t.Fatal(err)
			}
			removed := 0
			for i, e := range after[:len(before)] {
				b := before[i]
				tomb, err := rs.Tombstone(ctx, e.ID)
				gone := string(e.Data) == string(strata.TombstoneData)
				if gone {
					removed++
					if err != nil || tomb.Run != rep.Run {
						t.Fatalf("tombstone of %s v%d: %+v, %v", e.Stream, e.Version, tomb, err)
					}
					if e.Meta.Tenant != "acme" || e.Type != "CertificateIssued" || e.Stream == "certificate-2" || e.Meta.Principal != "" {
						t.Fatalf("removed %s v%d (%s, %+v)", e.Stream, e.Version, e.Type, e.Meta)
					}
					h := ledger.LeafHash(ledger.EncodeLeaf(nil, &b))
					if string(tomb.LeafHash) != string(h[:]) {
						t.Fatalf("tombstone of %s v%d holds another leaf hash", e.Stream, e.Version)
					}
				} else if string(e.Data) != string(b.Data) {
					t.Fatalf("%s v%d changed without a tombstone", e.Stream, e.Version)
				}
				if e.ID != b.ID || e.Position != b.Position || e.Version != b.Version {
					t.Fatalf("%s v%d moved", e.Stream, e.Version)
				}
			}
			if removed != 9 {
				t.Fatalf("%d payloads removed, want 9", removed)
			}
			var auditEvents []string
			for _, e := range after[len(before):] {
				auditEvents = append(auditEvents, e.Stream+" "+e.Type)
			}
			if !slices.Equal(auditEvents, []string{"strata-retention RetentionStarted", "strata-retention RetentionCompleted"}) {
				t.Fatalf("audit events: %v", auditEvents)
			}
			rep2 := audit(t, st, policy)
			if rep2.Tombstoned != 9 || rep2.Checkpoints != 3 {
				t.Fatalf("audit: %d tombstones, %d checkpoints", rep2.Tombstoned, rep2.Checkpoints)
			}
			// Sealing goes on after retention, and the audit still passes with a new checkpoint.
			if _, _, err := sealer.SealOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := sealer.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			audit(t, st, policy)
			// Running again removes the renewal, sealed since; releasing the hold lets the
			// held stream go.
			if again, err := r.Run(ctx, st); err != nil || again.Removed != 1 {
				t.Fatalf("second run: %+v, %v", again, err)
			}
			if err := rs.ReleaseLegalHold(ctx, "certificate-2"); err != nil {
				t.Fatal(err)
			}
			// certificate-2 is acme's (even), but its type alternates: i=2 → i/2 = 1 → revoked, kept.
			if again, err := r.Run(ctx, st); err != nil || again.Removed != 0 {
				t.Fatalf("run after release: %+v, %v", again, err)
			}
			r.Policies = []query.Policy{{Name: "all"}}
			rep3, err := r.Run(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			// Every sealed event not removed yet: 30 + 1 renewal, minus the 10 removed; audit
			// events are never removed.
			if rep3.Removed != 30+1-10 {
				t.Fatalf("run of one catch-all policy: %+v", rep3)
			}
			audit(t, st, policy)
			// A tombstoned last event keeps its stream's version.
			info, err := st.StreamInfo(ctx, "certificate-4")
			if err != nil || info.Version != 3 {
				t.Fatalf("stream info after retention: %+v, %v", info, err)
			}
			if _, err := st.Append(ctx, "certificate-4", strata.Exact(3), strata.EventData{Type: "CertificateIssued"}); err != nil {
				t.Fatalf("append after retention: %v", err)
			}
		})
	}
}

func storetestCollect(st strata.Store) ([]strata.Event, error) {
	var out []strata.Event
	for e, err := range st.ReadAll(context.Background(), strata.ReadAllOptions{}) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func sameEvents(a, b []strata.Event) bool {
	return slices.EqualFunc(a, b, func(x, y strata.Event) bool { return x.ID == y.ID && string(x.Data) == string(y.Data) })
}

// TestRetentionNeedsSealing checks that without AllowUnsealed nothing unsealed is removed.
func TestRetentionNeedsSealing(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "certificate-1", strata.EventData{Type: "CertificateIssued", Meta: strata.Metadata{Tenant: "acme"}})
	r := &query.Retention{Now: func() time.Time { return time.Now().Add(365 * 24 * time.Hour) }}
	rep, err := r.Run(ctx, st)
	if err != nil || rep.Removed != 0 || rep.SealedUpTo != "none" {
		t.Fatalf("run on an unsealed log: %+v, %v", rep, err)
	}
	r.AllowUnsealed = true
	if rep, err := r.Run(ctx, st); err != nil || rep.Removed != 1 {
		t.Fatalf("run with AllowUnsealed: %+v, %v", rep, err)
	}
}

func TestSearchNeedsATenant(t *testing.T) {
	st, _ := backends.Open(t, "inmem")
	for _, err := range query.ByCorrelation(testCtx(t), st, "", "req-1") {
		if !errors.Is(err, strata.ErrInvalid) {
			t.Fatalf("search without a tenant: %v", err)
		}
	}
	for _, err := range query.BySession(testCtx(t), st, "acme", "") {
		if !errors.Is(err, strata.ErrInvalid) {
			t.Fatalf("search by an empty session: %v", err)
		}
	}
}

// TestRetentionPurgesDeliveries checks that a retention run prunes the transmitters' records
// of events sent before the cutoff, keeps dead letters, and that a plan only counts.
func TestRetentionPurgesDeliveries(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "sqlite")
	ts, ok := st.(strata.TransmitStore)
	if !ok {
		t.Skip("no strata.TransmitStore")
	}
	old := time.Now().Add(-200 * 24 * time.Hour)
	var ds []strata.Delivery
	for i := range 5 {
		status, sent := strata.DeliverySent, old
		if i == 4 {
			status, sent = strata.DeliveryDead, time.Time{}
		}
		ds = append(ds, strata.Delivery{EventID: uuidFor(i), Position: strata.Position{Commit: uint64(i + 1), Event: uint64(i + 1)}, Stream: "certificate-1",
			Version: int64(i + 1), Type: "CertificateIssued", Status: status, Attempts: 1, FirstAttemptAt: old, LastAttemptAt: old, SentAt: sent})
	}
	if err := ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl-publisher", Deliveries: ds}); err != nil {
		t.Fatal(err)
	}
	r := &query.Retention{Purgers: []query.Purger{query.DeliveryPurger(ts)}}
	plan, err := r.Plan(ctx, st)
	if err != nil || plan.Purged["deliveries"] != 4 {
		t.Fatalf("plan: %+v, %v", plan, err)
	}
	rep, err := r.Run(ctx, st)
	if err != nil || rep.Purged["deliveries"] != 4 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	left, err := ts.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "crl-publisher"})
	if err != nil || len(left) != 1 || left[0].Status != strata.DeliveryDead {
		t.Fatalf("left: %+v, %v", left, err)
	}
}

func uuidFor(i int) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint(i))) }

// TestHistoryEmptyRange: a range whose end is not after its start selects nothing, and says
// so, as Changes and the event query do, rather than print an empty history.
func TestHistoryEmptyRange(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "certificate-E", strata.EventData{Type: "E", Data: []byte(`{}`)})
	for _, r := range [][2]time.Time{{day(2, 0), day(1, 0)}, {day(1, 0), day(1, 0)}} {
		var err error
		for _, err = range query.History(ctx, st, query.JSONModel(), "certificate-E", query.HistoryOptions{From: r[0], To: r[1]}) {
			break
		}
		if strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("history from %s to %s: %v, want Invalid", r[0], r[1], err)
		}
	}
}
