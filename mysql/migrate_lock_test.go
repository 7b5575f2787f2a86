package mysql

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// TestMigrationLockTakenIsUnavailable: while another process holds the migration lock, Open
// waits for it and then fails as Unavailable (retrying may help), not as an internal error.
func TestMigrationLockTakenIsUnavailable(t *testing.T) {
	dsn := newDatabase(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got int
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(LEFT(CONCAT('strata-migrate:', DATABASE()), 64), 0)").Scan(&got); err != nil || got != 1 {
		t.Fatalf("take the lock: %d, %v", got, err)
	}
	defer func(w time.Duration) { migrationLockWait = w }(migrationLockWait)
	migrationLockWait = time.Second
	if err := migrate(ctx, db); strata.ErrorCode(err) != strata.Unavailable {
		t.Fatalf("migrate while another holds the lock: %v, want Unavailable", err)
	}
}
