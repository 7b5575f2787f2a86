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
