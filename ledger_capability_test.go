package strata_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-events/strata"
)

// sigLine is a signature line of key name, whose key hash is hash, over sig.
func sigLine(name string, hash byte, sig string) string {
	return "— " + name + " " + base64.StdEncoding.EncodeToString(append([]byte{hash, 0, 0, 1}, sig...)) + "\n"
}

func TestMergeLedgerNotes(t *testing.T) {
	const text = "ca.example/strata\n600\nAAAA\n\n"
	log, w1, w1b, w2 := sigLine("ca.example/strata", 1, "log"), sigLine("w1", 2, "first"), sigLine("w1", 2, "again"), sigLine("w2", 3, "w2")
	w1other := sigLine("w1", 9, "another key of the same name")
	cases := []struct {
		name, stored, incoming, want string
	}{
		{"a cosignature added", text + log, text + log + w1, text + log + w1},
		{"the same checkpoint saved again keeps the cosignatures", text + log + w1 + w2, text + log, text + log + w1 + w2},
		{"two witnesses", text + log + w1, text + log + w2, text + log + w1 + w2},
		{"a witness cosigns again", text + log + w1 + w2, text + log + w1b, text + log + w1b + w2},
		{"another key of the same name is another key", text + log + w1, text + log + w1other, text + log + w1 + w1other},
		{"another text replaces", text + log + w1, "ca.example/strata\n601\nBBBB\n\n" + log, "ca.example/strata\n601\nBBBB\n\n" + log},
		{"a stored note that does not parse is replaced", "garbage", text + log, text + log},
		{"an incoming note that does not parse replaces", text + log, "garbage", "garbage"},
		{"a line that is no signature is its own key", text + log + "— odd\n", text + log + "— odd\n" + w1, text + log + "— odd\n" + w1},
		// note.Open refuses a note with a line it cannot read, so such a stored line would
		// break the note for good: a save of the same text drops it.
		{"a stored line that is no signature goes", text + log + "junk\n" + w1, text + log, text + log + w1},
		{"a stored line note.Open refuses goes", text + log + "— w2 !!\n" + w1 + "— w3\x01 AAAAAAA=\n", text + log + w2, text + log + w1 + w2},
		// note.Open reads "— w1  base64" (two spaces) as a bad line, not as w1's: w1's stays.
		{"a bad line does not replace a witness's", text + log + w1, text + log + strings.Replace(w1b, "w1 ", "w1  ", 1), text + log + w1 + strings.Replace(w1b, "w1 ", "w1  ", 1)},
	}
	for _, c := range cases {
		if got := strata.MergeLedgerNotes([]byte(c.stored), []byte(c.incoming)); string(got) != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

// FuzzMergeLedgerNotes checks that a merge never panics, that a note of another text replaces
// the stored one, and that a merge of the same text keeps the text and every signature line
// the incoming note holds.
func FuzzMergeLedgerNotes(f *testing.F) {
	const text = "ca.example/strata\n600\nAAAA\n\n"
	f.Add([]byte(text+sigLine("a", 1, "x")), []byte(text+sigLine("b", 2, "y")))
	f.Add([]byte(text+sigLine("a", 1, "x")+sigLine("a", 1, "x")), []byte(text+sigLine("a", 1, "z")))
	f.Add([]byte("x\n\n\n"), []byte("x\n\n\n— \n"))
	f.Add([]byte(""), []byte("\n\n"))
	f.Fuzz(func(t *testing.T, stored, incoming []byte) {
		got := strata.MergeLedgerNotes(stored, incoming)
		i, j := bytes.LastIndex(stored, []byte("\n\n")), bytes.LastIndex(incoming, []byte("\n\n"))
		same := i >= 0 && j >= 0 && bytes.HasSuffix(stored, []byte("\n")) && bytes.HasSuffix(incoming, []byte("\n")) &&
			string(stored[:i]) == string(incoming[:j])
		if !same {
			if !bytes.Equal(got, incoming) {
				t.Fatalf("merge of notes of different texts is %q, want the incoming %q", got, incoming)
			}
			return
		}
		if !bytes.HasPrefix(got, incoming[:j+2]) {
			t.Fatalf("merge lost the text: %q", got)
		}
		for _, l := range strings.SplitAfter(string(incoming[j+2:]), "\n") {
			if l != "" && !strings.Contains(string(got[j+2:]), l) {
				t.Fatalf("merge of %q and %q lost the incoming signature %q: %q", stored, incoming, l, got)
			}
		}
	})
}

func TestLedgerNoteSignatureLimit(t *testing.T) {
	const text = "ca.example/strata\n600\nAAAA\n\n"
	note := func(from, to int) []byte {
		n := text
		for i := from; i < to; i++ {
			n += sigLine(fmt.Sprintf("w%d", i), byte(i), "sig")
		}
		return []byte(n)
	}
	if err := strata.ValidateLedgerCheckpoint("save", strata.LedgerCheckpoint{Size: 600, Note: note(0, strata.MaxLedgerNoteSignatures)}); err != nil {
		t.Fatalf("a note of %d signatures: %v", strata.MaxLedgerNoteSignatures, err)
	}
	if err := strata.ValidateLedgerCheckpoint("save", strata.LedgerCheckpoint{Size: 600, Note: note(0, strata.MaxLedgerNoteSignatures+1)}); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("a note of %d signatures: %v, want Invalid", strata.MaxLedgerNoteSignatures+1, err)
	}
	// A save whose merge with the stored note would pass the limit is refused, and the stored
	// note stays as it was.
	stored := note(0, strata.MaxLedgerNoteSignatures)
	err := strata.SaveLedgerCheckpointMerged(context.Background(), "save", strata.LedgerCheckpoint{Size: 600, Note: note(strata.MaxLedgerNoteSignatures, strata.MaxLedgerNoteSignatures+1)},
		func(context.Context, uint64) ([]byte, bool, error) { return stored, true, nil },
		func(context.Context, strata.LedgerCheckpoint) (bool, error) {
			t.Fatal("insert of a stored size")
			return false, nil
		},
		func(_ context.Context, _ uint64, _, n []byte) (bool, error) { stored = n; return true, nil })
	if strata.ErrorCode(err) != strata.Invalid || !bytes.Equal(stored, note(0, strata.MaxLedgerNoteSignatures)) {
		t.Fatalf("a save past the limit: %v, the stored note now %d bytes", err, len(stored))
	}
}
