package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/sqlite"
)

// TestOpenRejectsForeignFileWithUserVersion opens databases of other applications that number
// their own schema with PRAGMA user_version (strata has stamped application_id along with
// user_version since its first schema, so no strata file has one without the other): Open
// refuses them as Invalid and leaves them as they were, instead of running strata's later
// migrations on them or stamping strata's application_id on a file whose tables it never made.
func TestOpenRejectsForeignFileWithUserVersion(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for _, v := range []int{1, len(migrationFiles(t))} {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("other-v%d.db", v))
		db := rawConn(t, path)
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE accounts (id INTEGER PRIMARY KEY); PRAGMA user_version = %d", v)); err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(ctx, path)
		if err == nil {
			st.Close()
		}
		wantCode(t, err, strata.Invalid, fmt.Sprintf("open a foreign file at user_version %d", v))
		var appID, tables int
		if err := db.QueryRow("PRAGMA application_id").Scan(&appID); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if appID != 0 || tables != 1 {
			t.Fatalf("user_version %d: after Open the file has application_id %#x and %d schema objects, want 0 and 1", v, appID, tables)
		}
	}
}

// TestOpenLeavesForeignJournalMode opens another application's database, which is in rollback
// journal mode: Open refuses it without switching it to WAL mode first, a change of the file
// that the other application would be left with.
func TestOpenLeavesForeignJournalMode(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "other.db")
	db := rawConn(t, path)
	if _, err := db.Exec("PRAGMA journal_mode = DELETE; CREATE TABLE accounts (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := sqlite.Open(ctx, path)
	if err == nil {
		st.Close()
	}
	wantCode(t, err, strata.Invalid, "open a foreign file")
	db = rawConn(t, path)
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "delete" {
		t.Fatalf("journal mode after a refused Open: %q, want delete", mode)
	}
}
