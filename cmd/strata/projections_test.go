package main

import (
	"strings"
	"testing"
)

func TestProjectionsCLI(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "demo")
	wantErr(t, cli(t, testContext(t), db, "", "projections", "status", "certificate_status"), exitNotFound, "no projection")
	wantErr(t, cli(t, testContext(t), db, "", "projections", "rebuild", "other", "--run"), exitInvalid, "--run knows only")

	r := cli(t, testContext(t), db, "", "projections", "rebuild", "certificate_status", "--run")
	if r.code != 0 || !strings.Contains(r.stderr, "100.0%") || !strings.Contains(r.stderr, "[#") {
		t.Fatalf("rebuild: exit %d, stderr %q", r.code, r.stderr)
	}
	list := lines(t, mustCLI(t, db, "projections", "list"))
	if len(list) != 1 || list[0]["name"] != "certificate_status" || list[0]["active"] != true || list[0]["lagEvents"] != 0.0 || list[0]["processed"].(float64) == 0 {
		t.Fatalf("list: %v", list)
	}
	mustCLI(t, db, "projections", "pause", "certificate_status")
	if st := lines(t, mustCLI(t, db, "projections", "status", "certificate_status")); len(st) != 1 || st[0]["state"] != "paused" {
		t.Fatalf("status after pause: %v", st)
	}
	mustCLI(t, db, "projections", "resume", "certificate_status")
	mustCLI(t, db, "projections", "reset", "certificate_status")
	st := lines(t, mustCLI(t, db, "projections", "status", "certificate_status"))
	if len(st) != 1 || st[0]["state"] != "stopped" || st[0]["checkpoint"] != "0" || st[0]["lagEvents"].(float64) == 0 {
		t.Fatalf("status after reset: %v", st)
	}
	// Rebuild again, with the same result.
	if r := cli(t, testContext(t), db, "", "projections", "rebuild", "certificate_status", "--run"); r.code != 0 {
		t.Fatalf("second rebuild: %d %s", r.code, r.stderr)
	}
	wantErr(t, cli(t, testContext(t), db, "", "projections", "pause", "nope"), exitNotFound, "no projection")
}

// TestProjectionsRebuildRunRefusesNoWait: --run works until the rebuild has caught up, which
// --no-wait says not to do; the pair ran the whole rebuild, ignoring --no-wait, and exited 0.
func TestProjectionsRebuildRunRefusesNoWait(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustCLI(t, db, "append", "certificate-1", "CertificateIssued", `{"serial":"1"}`)
	wantErr(t, cli(t, testContext(t), db, "", "projections", "rebuild", "certificate_status", "--run", "--no-wait"), exitInvalid, "--no-wait")
	if out := mustCLI(t, db, "projections", "list"); out != "" {
		t.Errorf("the refused rebuild built the projection:\n%s", out)
	}
}
