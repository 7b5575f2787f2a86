package shred

import (
	"crypto/rand"
	"sync"
)

// nonces hands out the random nonces of sealed fields from a buffer that one read of the
// system's generator fills, 4 KiB at a time: a read per field cost about 100 ns here, more
// than a third of sealing a short value. Nonces are stored in the clear beside their box; what
// matters is that none is handed out twice, so each is cleared from the buffer as it is taken.
var nonces nonceSource

type nonceSource struct {
	mu   sync.Mutex
	buf  [4096]byte
	left int // the unused bytes at the end of buf
}

// read fills b, of at most 4 KiB, with random bytes.
func (s *nonceSource) read(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(b) > s.left {
		if _, err := rand.Read(s.buf[:]); err != nil {
			return err
		}
		s.left = len(s.buf)
	}
	off := len(s.buf) - s.left
	copy(b, s.buf[off:off+len(b)])
	clear(s.buf[off : off+len(b)])
	s.left -= len(b)
	return nil
}
