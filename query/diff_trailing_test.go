package query_test

import (
	"errors"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

// TestDiffRefusesTrailingData: a document followed by anything but white space is not JSON,
// and Diff says so (an Invalid error) rather than comparing its first value alone.
func TestDiffRefusesTrailingData(t *testing.T) {
	for _, c := range [][2]string{{`{} {"a":1}`, `{}`}, {`{}`, `{"a":1}]`}, {`1 2`, `1`}, {`{}`, `{} x`}} {
		if d, err := query.Diff([]byte(c[0]), []byte(c[1])); !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("diff %s → %s: %+v, %v; want an Invalid error", c[0], c[1], d, err)
		}
	}
	if d, err := query.Diff([]byte(" {\"a\":1}\n"), []byte("{}\n")); err != nil || len(d) != 1 {
		t.Errorf("diff with white space around: %+v, %v", d, err)
	}
}
