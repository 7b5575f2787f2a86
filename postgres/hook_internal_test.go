package postgres

import (
	"context"
	"testing"

	"github.com/strata-events/strata"
)

// TestHasHook guards the probe that lets appends without a BeforeCommit hook commit in one
// round trip: it must find the hook wherever WithBeforeCommit put it.
func TestHasHook(t *testing.T) {
	if hookKey == nil {
		t.Fatal("strata.BeforeCommit no longer looks its hook up by key; every append now takes two round trips")
	}
	type other struct{}
	ctx := context.WithValue(context.Background(), other{}, 1)
	if hasHook(ctx) {
		t.Error("hook found in a context without one")
	}
	hooked := strata.WithBeforeCommit(ctx, func(context.Context) error { return nil })
	if !hasHook(hooked) || !hasHook(context.WithValue(hooked, other{}, 2)) {
		t.Error("hook not found")
	}
	cancelled, cancel := context.WithCancel(hooked)
	cancel()
	if !hasHook(cancelled) {
		t.Error("hook not found below a cancelled context")
	}
}
