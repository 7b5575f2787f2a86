// Package testenv finds the real services that integration tests talk to. A test asks for a
// service by the environment variable that names it; when the service is unreachable the test is
// skipped with a message naming that variable, except under CI=true, where it fails.
package testenv

import (
	"context"
	"os"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where a missing service is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Service returns the DSN from the environment variable env, or def when it is unset, after ping
// succeeds on it. When ping fails it skips the test, or fails it in CI.
func Service(t testing.TB, env, def string, ping func(ctx context.Context, dsn string) error) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		dsn = def
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ping(ctx, dsn); err != nil {
		if InCI() {
			t.Fatalf("%s: service unreachable at %s (CI=true, so this fails): %v", env, dsn, err)
		}
		t.Skipf("%s: service unreachable at %s, skipping (set %s to point at one): %v", env, dsn, env, err)
	}
	return dsn
}
