package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// TestPlainTenant evaluates plainTenant in SQLite for a tenant of every byte and some longer
// ones: it holds exactly when every byte of the tenant is in strata.TombstoneTenantBytes.
func TestPlainTenant(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	tenants := []string{"", "acme", "a b~!", "a]b", "a^b", "a-b", "[x]", "a\x00b", "nul\x00<", "é", "a\u2028", "\xc3", "a\x80", "\x7f\x7f",
		strata.TombstoneTenantBytes, strata.TombstoneTenantBytes + `"`}
	for c := range 256 {
		tenants = append(tenants, string([]byte{byte(c)}))
	}
	for _, tenant := range tenants {
		var got bool
		if err := s.r.QueryRowContext(context.Background(), `SELECT `+plainTenant("?1", "?2"), tenant, plainTenantGlob).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := strings.Trim(tenant, strata.TombstoneTenantBytes) == ""; got != want {
			t.Errorf("tenant %q: plain in SQL %v, want %v", tenant, got, want)
		}
	}
}

// TestTombstoneWaitsOnlyForWaiters checks that a batch's writer counts the calls that wait for
// it, which TombstoneEvents leaves a share of the writer to, and only those.
func TestTombstoneWaitsOnlyForWaiters(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	ctx := context.Background()
	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		t.Fatal(err)
	}
	if w.contended() {
		t.Fatal("contended with no other call")
	}
	done := make(chan error)
	go func() {
		_, err := s.Append(ctx, "waiter", strata.Any, strata.EventData{Type: "T", Data: []byte(`{}`)})
		done <- err
	}()
	for !w.contended() {
		time.Sleep(time.Millisecond) // until the append waits; the test's timeout bounds a bug
	}
	w.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.contended() {
		t.Fatal("contended once the waiter is done")
	}
}
