package mysql

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/strata-events/strata"
)

// TestSaveLedgerCheckpointClientFoundRows has two saves of a new checkpoint size race, each with
// another cosignature, on a store whose DSN asks for clientFoundRows=true: the driver then
// counts the row that INSERT ... ON DUPLICATE KEY UPDATE found, and the save that lost the
// insert race took that for its insert and returned without storing its line.
func TestSaveLedgerCheckpointClientFoundRows(t *testing.T) {
	cfg, err := mysqldrv.ParseDSN(newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientFoundRows = true
	s := openStore(t, cfg.FormatDSN())
	ctx := testCtx(t)
	line := func(name string, hash byte) string {
		return "— " + name + " " + base64.StdEncoding.EncodeToString([]byte{hash, 0, 0, 1, 'x'}) + "\n"
	}
	for size := uint64(1); size <= 40; size++ {
		text := fmt.Sprintf("ca.example/strata\n%d\nAAAA\n\n", size) + line("ca.example/strata", 1)
		notes := []string{text + line("w1", 2), text + line("w2", 3)}
		var wg sync.WaitGroup
		errs := make([]error, len(notes))
		start := make(chan struct{})
		for i, n := range notes {
			wg.Go(func() {
				<-start
				errs[i] = s.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: size, Note: []byte(n)})
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var got []byte
		if err := s.db.QueryRowContext(ctx, "SELECT note FROM ledger_checkpoints WHERE size = ?", size).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), line("w1", 2)) || !strings.Contains(string(got), line("w2", 3)) {
			t.Fatalf("size %d: two saves at once keep one cosignature:\n%s", size, got)
		}
	}
}
