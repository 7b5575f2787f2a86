package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// LeafVersion is the version of the leaf encoding that EncodeLeaf writes (the first byte).
const LeafVersion = 1

// Leaf is the content of one leaf: the parts of an event that the ledger commits to. The
// event's Position is not part of it (it may change when a PostgreSQL log is restored into
// another cluster); the leaf's index in the tree orders the log instead.
type Leaf struct {
	ID         uuid.UUID
	Stream     string
	Version    int64
	Type       string
	Schema     int
	OccurredAt time.Time
	RecordedAt time.Time
	Meta       strata.Metadata
	Data       []byte
}

// LeafOf returns the leaf of a stored event.
func LeafOf(e *strata.Event) Leaf {
	return Leaf{
		ID: e.ID, Stream: e.Stream, Version: e.Version, Type: e.Type, Schema: e.Schema,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Meta: e.Meta, Data: e.Data,
	}
}

// EncodeLeaf appends the canonical encoding of e's leaf (docs/LEDGER.md, "Leaves") to dst.
func EncodeLeaf(dst []byte, e *strata.Event) []byte {
	l := LeafOf(e)
	return l.Append(dst)
}

// Append appends the canonical encoding of l to dst. All integers are big-endian:
//
//	u8  version (1)
//	16  event ID
//	str stream            (str = u32 length, then that many bytes of UTF-8)
//	u64 stream version
//	str type
//	u32 schema (see strata.Schema32)
//	i64 occurred at, Unix microseconds, UTC
//	i64 recorded at, Unix microseconds, UTC
//	u32 number of metadata entries, then per entry: str key, str value, keys in byte order
//	    (well-known fields by their JSON names, left out when empty; every extra key)
//	u32 data length, then the data bytes exactly as stored
func (l *Leaf) Append(dst []byte) []byte {
	dst = append(dst, LeafVersion)
	dst = append(dst, l.ID[:]...)
	dst = appendStr(dst, l.Stream)
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.Version))
	dst = appendStr(dst, l.Type)
	dst = binary.BigEndian.AppendUint32(dst, strata.Schema32(l.Schema))
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.OccurredAt.UnixMicro()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.RecordedAt.UnixMicro()))
	kv := metaEntries(&l.Meta)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(kv)))
	for _, e := range kv {
		dst = appendStr(dst, e.key)
		dst = appendStr(dst, e.val)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l.Data)))
	return append(dst, l.Data...)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

type kv struct{ key, val string }

// metaEntries returns m's set well-known fields and every extra key, in key order.
func metaEntries(m *strata.Metadata) []kv {
	out := make([]kv, 0, 8+len(m.Extra))
	for _, k := range [...]string{strata.MetaCategory, strata.MetaCausation, strata.MetaCorrelation,
		strata.MetaPrincipal, strata.MetaSession, strata.MetaSubject, strata.MetaSubsystem, strata.MetaTenant} {
		if v := m.Get(k); v != "" {
			out = append(out, kv{k, v})
		}
	}
	if len(m.Extra) > 0 {
		for k, v := range m.Extra {
			if !strata.IsWellKnownMetaKey(k) {
				out = append(out, kv{k, v})
			}
		}
		slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	}
	return out
}

// DecodeLeaf parses a leaf encoding. It accepts only the canonical form: the version it knows,
// valid UTF-8, a schema as Append writes it, metadata keys in strictly increasing order, no
// empty well-known field and no trailing bytes. Every error is Invalid.
func DecodeLeaf(b []byte) (Leaf, error) {
	const op = "decode leaf"
	d := decoder{b: b}
	var l Leaf
	if v := d.u8(); d.err == nil && v != LeafVersion {
		return Leaf{}, strata.Errorf(strata.Invalid, op, "leaf encoding version %d, this strata knows %d", v, LeafVersion)
	}
	copy(l.ID[:], d.bytes(16))
	l.Stream = d.str("stream")
	l.Version = int64(d.u64())
	l.Type = d.str("type")
	if v := d.u32(); strata.Schema32(int(v)) == v {
		l.Schema = int(v)
	} else {
		// Append writes every schema above strata.MaxSchema as 0xFFFFFFFF.
		d.fail("schema %d is above %d and not written as %d", v, strata.MaxSchema, uint32(math.MaxUint32))
	}
	l.OccurredAt = time.UnixMicro(int64(d.u64())).UTC()
	l.RecordedAt = time.UnixMicro(int64(d.u64())).UTC()
	n := d.u32()
	if d.err == nil && uint64(n)*8 > uint64(len(d.b)) {
		d.fail("%d metadata entries cannot fit in %d bytes", n, len(d.b))
	}
	prev := ""
	for i := uint32(0); i < n && d.err == nil; i++ {
		k, v := d.str("metadata key"), d.str("metadata value")
		switch {
		case d.err != nil:
		case i > 0 && k <= prev:
			d.fail("metadata keys out of order: %q after %q", k, prev)
		case strata.IsWellKnownMetaKey(k) && v == "":
			d.fail("metadata field %q is empty (empty fields are left out)", k)
		default:
			l.Meta.Set(k, v)
		}
		prev = k
	}
	dl := d.u32()
	l.Data = bytes.Clone(d.bytes(int(dl)))
	switch {
	case d.err != nil:
		return Leaf{}, strata.Errorf(strata.Invalid, op, "%w", d.err)
	case len(d.b) != 0:
		return Leaf{}, strata.Errorf(strata.Invalid, op, "%d bytes after the data", len(d.b))
	case l.Version <= 0:
		return Leaf{}, strata.Errorf(strata.Invalid, op, "stream version %d is not positive", l.Version)
	}
	if l.Data == nil {
		l.Data = []byte{}
	}
	return l, nil
}

type decoder struct {
	b   []byte
	err error
}

type decodeError string

func (e decodeError) Error() string { return string(e) }

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = decodeError(fmt.Sprintf(format, args...))
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated: want %d bytes, %d left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) str(what string) string {
	n := d.u32()
	b := d.bytes(int(n))
	if d.err == nil && !utf8.Valid(b) {
		d.fail("%s is not valid UTF-8", what)
	}
	return string(b)
}

// LeafHash returns the RFC 6962 hash of a leaf encoding: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Hash is a SHA-256 hash of the tree.
type Hash [strata.LedgerHashSize]byte
