package shred

import (
	"bytes"
	"testing"
)

// No nonce is handed out twice, across refills of the buffer, and none is all zeros (a buffer
// taken from without being filled).
func TestNoncesAreNotReused(t *testing.T) {
	var s nonceSource
	seen := map[[nonceSize]byte]bool{}
	for range 3 * len(s.buf) / nonceSize {
		var n [nonceSize]byte
		if err := s.read(n[:]); err != nil {
			t.Fatal(err)
		}
		if seen[n] || bytes.Equal(n[:], make([]byte, nonceSize)) {
			t.Fatalf("nonce %x handed out twice, or never filled", n)
		}
		seen[n] = true
	}
}
