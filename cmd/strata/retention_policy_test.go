package main

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
)

// TestRetentionCatchAllPolicyTakesTheDefaultsPlace: a --policy without tenant= and types=
// applies to every event, as the default policy does. It takes the default's place: "keep
// everything but acme's events, those for 30 days" removes none of beta's events, where the
// default (90 days), ahead of it, used to govern them and remove them once 90 days old. With
// --max-age too, or twice, it is an Invalid error.
func TestRetentionCatchAllPolicyTakesTheDefaultsPlace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := inmem.New()
	defer st.Close()
	for _, tenant := range []string{"acme", "beta"} {
		if _, err := st.Append(ctx, "certificate-"+tenant, strata.Any, strata.EventData{Type: "Issued", Meta: strata.Metadata{Tenant: tenant}}); err != nil {
			t.Fatal(err)
		}
	}
	fl := retentionFlags{policies: []string{"name=all,keep", "name=acme,tenant=acme,age=30d"}}
	r, err := fl.config()
	if err != nil {
		t.Fatal(err)
	}
	r.AllowUnsealed = true
	r.Now = func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }
	plan, err := r.Plan(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, p := range plan.Policies {
		got[p.Policy] = p.Events
	}
	if plan.Removed != 1 || got["acme"] != 1 || got["all"] != 0 {
		t.Errorf("plan removes %d events, by policy %v; want acme's one event only", plan.Removed, got)
	}
	for _, bad := range []retentionFlags{
		{maxAge: "30d", policies: []string{"name=all,keep"}},
		{policies: []string{"name=all,keep", "name=short,age=1d"}},
	} {
		if _, err := bad.config(); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("flags %+v: %v, want an Invalid error", bad, err)
		}
	}
}

// TestRetentionHoldCommandsTakeNoPolicyFlags: the policy flags were persistent flags of
// strata retention, so hold, release and holds accepted --policy, --max-age and the rest,
// even malformed, did nothing with them and exited 0.
func TestRetentionHoldCommandsTakeNoPolicyFlags(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "s", "E", `{}`)
	for _, args := range [][]string{
		{"hold", "s", "--reason", "case 1", "--max-age", "1d"},
		{"release", "s", "--policy", "name=x,keep"},
		{"holds", "--allow-unsealed"},
		{"holds", "--batch", "10"},
	} {
		r := cli(t, testContext(t), db, "", append([]string{"retention"}, args...)...)
		wantErr(t, r, exitInvalid, "unknown flag")
	}
	if out := mustCLI(t, db, "retention", "holds"); out != "" {
		t.Errorf("a refused hold was placed: %s", out)
	}
	mustCLI(t, db, "retention", "plan", "--max-age", "1d", "--batch", "10", "--allow-unsealed", "--principal", "dpo")
}
