package transmit_test

import (
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// TestParseConfigRejectsTrailingData: anything after the configuration object is an error, a
// stray closing brace or bracket (a file cut or pasted badly) included.
func TestParseConfigRejectsTrailingData(t *testing.T) {
	const ok = `{"transmitters":[{"name":"a","type":"nats"}]}`
	if _, err := transmit.ParseConfig([]byte(ok + " \n")); err != nil {
		t.Fatalf("ParseConfig(%s) = %v", ok, err)
	}
	for _, bad := range []string{ok + "}", ok + "]", ok + " ]}", ok + " x", ok + ok} {
		if _, err := transmit.ParseConfig([]byte(bad)); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("ParseConfig(%s) = %v, want Invalid", bad, err)
		}
	}
}
