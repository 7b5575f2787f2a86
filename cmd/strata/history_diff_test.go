package main

import (
	"testing"
)

// TestHistoryDiffIsAlwaysAList: every line of strata history carries diff as a JSON array,
// empty for an event that changed nothing (as the HTTP API does), not null, which a consumer
// iterating over it (jq '.diff[]') fails on.
func TestHistoryDiffIsAlwaysAList(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`, "--meta", "tenant=acme")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateNoted", `{"serial":"7F3A"}`, "--meta", "tenant=acme")
	for _, args := range [][]string{{"history", "certificate-7F3A"}, {"history", "--entity", "7F3A", "--tenant", "acme"}} {
		h := lines(t, mustCLI(t, db, args...))
		if len(h) != 2 {
			t.Fatalf("%v: %d lines, want 2", args, len(h))
		}
		if d, ok := h[1]["diff"].([]any); !ok || len(d) != 0 {
			t.Errorf("%v: the unchanging event's diff is %#v, want []", args, h[1]["diff"])
		}
	}
}
