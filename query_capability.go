package strata

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The optional capabilities of package query: a tenant-scoped search of the log with keyset
// pagination (QueryStore), snapshots kept by the time they are valid for (TemporalSnapshotStore),
// and retention with tombstones and legal holds (RetentionStore). Every backend of this module
// implements them and storetest's Query section checks them.

// Limits of the query capabilities.
const (
	// MaxQueryLimit is the largest page QueryEvents returns.
	MaxQueryLimit = 1000
	// DefaultQueryLimit is the page size when EventQuery.Limit is 0.
	DefaultQueryLimit = 100
	// MaxQueryTypes bounds EventQuery.Types.
	MaxQueryTypes = 64
	// MaxTombstoneBatch is the most events one TombstoneEvents call may remove.
	MaxTombstoneBatch = 10_000
	// MaxRetentionBatch is the most candidates one RetentionCandidates call returns.
	MaxRetentionBatch = 10_000
)

// EventQuery selects events of one tenant. Tenant is required; every other set field must
// match. Results are ordered by (RecordedAt, Position), oldest first, and paged by Cursor.
type EventQuery struct {
	// Tenant is the tenant whose events are searched; an empty Tenant is an Invalid error, so
	// that no query can ever read across tenants.
	Tenant string
	// Types keeps events whose Type is one of these.
	Types []string
	// Subsystem, Category, Principal, Session, Correlation and Causation keep events whose
	// metadata field of that name equals the value.
	Subsystem, Category, Principal, Session, Correlation, Causation string
	// StreamPrefix keeps events whose stream name starts with it.
	StreamPrefix string
	// RecordedFrom and RecordedTo keep events with From <= RecordedAt < To; zero means open.
	RecordedFrom, RecordedTo time.Time
	// Cursor is the Next of the previous page; "" starts at the beginning.
	Cursor string
	// Limit is the page size: 0 means DefaultQueryLimit, at most MaxQueryLimit.
	Limit int
}

// EventPage is one page of a query.
type EventPage struct {
	Events []Event
	// Next is the cursor of the following page; "" when this page is the last one known now.
	// A cursor stays valid while events are appended: later pages never repeat an event and
	// never skip one that was committed when the first page was read.
	Next string
}

// QueryCursor is what an opaque query cursor holds: the sort key of the last event returned.
type QueryCursor struct {
	RecordedAt time.Time
	Position   Position
}

// cursorVersion is the first byte of an encoded cursor.
const cursorVersion = 1

// Encode returns the opaque, URL-safe form of c.
func (c QueryCursor) Encode() string {
	b := make([]byte, 0, 25)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.RecordedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, c.Position.Commit)
	b = binary.BigEndian.AppendUint64(b, c.Position.Event)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CursorAfter returns the cursor that follows e.
func CursorAfter(e *Event) string {
	return QueryCursor{RecordedAt: e.RecordedAt, Position: e.Position}.Encode()
}

// DecodeQueryCursor parses a cursor made by [QueryCursor.Encode]; "" is the zero cursor (the
// beginning). Anything else is an Invalid error, and so is a cursor whose time lies outside the
// years MinTimerYear to MaxTimerYear: a cursor is the sort key of a stored event, and no event
// is recorded outside them (the databases cannot take every such time, and one past year
// 294,247 does not even survive the encoding).
func DecodeQueryCursor(s string) (QueryCursor, bool, error) {
	if s == "" {
		return QueryCursor{}, false, nil
	}
	// The length check also refuses "\r" and "\n", which the base64 decoder skips.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(s) != base64.RawURLEncoding.EncodedLen(25) || len(b) != 25 || b[0] != cursorVersion {
		return QueryCursor{}, false, Errorf(Invalid, "decode cursor", "not a query cursor")
	}
	c := QueryCursor{
		RecordedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:]))).UTC(),
		Position:   Position{Commit: binary.BigEndian.Uint64(b[9:]), Event: binary.BigEndian.Uint64(b[17:])},
	}
	if y := c.RecordedAt.Year(); y < MinTimerYear || y > MaxTimerYear {
		return QueryCursor{}, false, Errorf(Invalid, "decode cursor", "a cursor at %s, outside the years %d-%d", c.RecordedAt.Format(time.RFC3339Nano), MinTimerYear, MaxTimerYear)
	}
	return c, true, nil
}

// Before reports whether e sorts before or at c in query order, so that a page after c leaves it
// out.
func (c QueryCursor) Before(e *Event) bool {
	if !e.RecordedAt.Equal(c.RecordedAt) {
		return e.RecordedAt.Before(c.RecordedAt)
	}
	return e.Position.Compare(c.Position) <= 0
}

// CompareQueryOrder orders events as query results are ordered: by RecordedAt, then Position.
func CompareQueryOrder(a, b *Event) int {
	if c := a.RecordedAt.Compare(b.RecordedAt); c != 0 {
		return c
	}
	return a.Position.Compare(b.Position)
}

// PrepareEventQuery validates q and returns it with Limit resolved and the decoded cursor
// (ok false for the first page). Every error is Invalid. Backends call it first.
func PrepareEventQuery(op string, q EventQuery) (EventQuery, QueryCursor, bool, error) {
	if q.Tenant == "" {
		return q, QueryCursor{}, false, Errorf(Invalid, op, "a query needs a tenant")
	}
	switch {
	case q.Limit < 0 || q.Limit > MaxQueryLimit:
		return q, QueryCursor{}, false, Errorf(Invalid, op, "limit %d outside 0-%d", q.Limit, MaxQueryLimit)
	case q.Limit == 0:
		q.Limit = DefaultQueryLimit
	}
	if len(q.Types) > MaxQueryTypes {
		return q, QueryCursor{}, false, Errorf(Invalid, op, "%d types, at most %d", len(q.Types), MaxQueryTypes)
	}
	for _, t := range q.Types {
		if t == "" {
			return q, QueryCursor{}, false, Errorf(Invalid, op, "an empty type in the type filter")
		}
	}
	if !q.RecordedFrom.IsZero() && !q.RecordedTo.IsZero() && !q.RecordedFrom.Before(q.RecordedTo) {
		return q, QueryCursor{}, false, Errorf(Invalid, op, "time range %s to %s is empty", q.RecordedFrom.Format(time.RFC3339Nano), q.RecordedTo.Format(time.RFC3339Nano))
	}
	for _, t := range []time.Time{q.RecordedFrom, q.RecordedTo} {
		if !t.IsZero() && (t.Year() < MinTimerYear || t.Year() > MaxTimerYear) {
			return q, QueryCursor{}, false, Errorf(Invalid, op, "time %s outside the years %d-%d", t.Format(time.RFC3339), MinTimerYear, MaxTimerYear)
		}
	}
	// Stored times are whole microseconds, so From <= RecordedAt < To holds exactly when it
	// holds of the ends rounded up to the microsecond (truncating them would keep an event
	// recorded just before From and drop one recorded just before To).
	q.RecordedFrom, q.RecordedTo = ceilMicro(q.RecordedFrom), ceilMicro(q.RecordedTo)
	c, ok, err := DecodeQueryCursor(q.Cursor)
	if err != nil {
		return q, QueryCursor{}, false, Errorf(Invalid, op, "cursor: %w", err)
	}
	return q, c, ok, nil
}

// ceilMicro returns t in UTC rounded up to the microsecond; the zero time stays zero.
func ceilMicro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return Timestamp(t.Add(time.Microsecond - 1))
}

// Match reports whether e passes every filter of q (the cursor aside). Backends whose indexes
// select a superset (a truncated or normalized index key) check each row with it.
func (q *EventQuery) Match(e *Event) bool {
	if e.Meta.Tenant != q.Tenant {
		return false
	}
	if len(q.Types) > 0 && !slices.Contains(q.Types, e.Type) {
		return false
	}
	if q.StreamPrefix != "" && !strings.HasPrefix(e.Stream, q.StreamPrefix) {
		return false
	}
	for _, f := range [...]struct{ want, got string }{
		{q.Subsystem, e.Meta.Subsystem}, {q.Category, e.Meta.Category}, {q.Principal, e.Meta.Principal},
		{q.Session, e.Meta.Session}, {q.Correlation, e.Meta.Correlation}, {q.Causation, e.Meta.Causation},
	} {
		if f.want != "" && f.want != f.got {
			return false
		}
	}
	if !q.RecordedFrom.IsZero() && e.RecordedAt.Before(q.RecordedFrom) {
		return false
	}
	return q.RecordedTo.IsZero() || e.RecordedAt.Before(q.RecordedTo)
}

// MetaFilters returns the metadata filters of q that are set, as (key, value) pairs in a fixed
// order: the first is the one a backend should drive its index scan with.
func (q *EventQuery) MetaFilters() [][2]string {
	var out [][2]string
	for _, f := range [...][2]string{
		{MetaCorrelation, q.Correlation}, {MetaCausation, q.Causation}, {MetaSession, q.Session},
		{MetaPrincipal, q.Principal}, {MetaSubsystem, q.Subsystem}, {MetaCategory, q.Category},
	} {
		if f[1] != "" {
			out = append(out, f)
		}
	}
	return out
}

// QueryStore searches the log of one tenant.
type QueryStore interface {
	// QueryEvents returns one page of the events that match q, in (RecordedAt, Position)
	// order, after q.Cursor. Bad input (no tenant, a bad cursor, a limit out of range) is an
	// Invalid error (see [PrepareEventQuery]).
	QueryEvents(ctx context.Context, q EventQuery) (EventPage, error)
	// CountEvents returns how many events match q; Cursor and Limit are ignored.
	CountEvents(ctx context.Context, q EventQuery) (int64, error)
}

// TemporalSnapshot is a saved state of a stream that says for which times it holds: the state
// after every event up to Version, all of which were recorded at or before RecordedUpTo and
// occurred at or before OccurredUpTo (the running maximum of each time over versions 1 to
// Version).
type TemporalSnapshot struct {
	Stream string
	// Model names the fold that made Data, with its encoding version (e.g. "pki.certificate/1"):
	// one stream may have snapshots of several models.
	Model        string
	Version      int64
	RecordedUpTo time.Time
	OccurredUpTo time.Time
	Data         []byte
}

// TemporalSnapshotStore keeps many snapshots per stream and model, so that the state at a past
// time starts from the latest snapshot valid for that time.
type TemporalSnapshotStore interface {
	// SaveTemporalSnapshot stores s; saving the same stream, model and version again replaces
	// it. Bad input is an Invalid error (see [PrepareTemporalSnapshot]).
	SaveTemporalSnapshot(ctx context.Context, s TemporalSnapshot) error
	// TemporalSnapshotAt returns the snapshot of stream and model with the highest version
	// whose RecordedUpTo is at or before recordedBy and, unless occurredBy is zero, whose
	// OccurredUpTo is at or before occurredBy; a NotFound error when there is none.
	TemporalSnapshotAt(ctx context.Context, stream, model string, recordedBy, occurredBy time.Time) (TemporalSnapshot, error)
}

// MaxModelNameLen bounds TemporalSnapshot.Model.
const MaxModelNameLen = 255

// PrepareTemporalSnapshot validates s and returns it with its times in store precision.
func PrepareTemporalSnapshot(op string, s TemporalSnapshot) (TemporalSnapshot, error) {
	if err := ValidateStreamName(op, s.Stream); err != nil {
		return s, err
	}
	if s.Model == "" || len(s.Model) > MaxModelNameLen || strings.ContainsFunc(s.Model, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s, Errorf(Invalid, op, "model name %q: want 1-%d bytes without control characters", s.Model, MaxModelNameLen)
	}
	if s.Version <= 0 {
		return s, Errorf(Invalid, op, "snapshot version %d, want > 0", s.Version)
	}
	if len(s.Data) > MaxDataLen {
		return s, Errorf(Invalid, op, "snapshot of %d bytes, more than %d", len(s.Data), MaxDataLen)
	}
	if s.RecordedUpTo.IsZero() || s.OccurredUpTo.IsZero() {
		return s, Errorf(Invalid, op, "a temporal snapshot needs both times")
	}
	s.RecordedUpTo, s.OccurredUpTo = Timestamp(s.RecordedUpTo), Timestamp(s.OccurredUpTo)
	if s.Data == nil {
		s.Data = []byte{}
	}
	return s, nil
}

// RetentionStartedType is the type of the audit event a retention run records before it
// removes anything; its ID is the run's, which every Tombstone of the run names.
const RetentionStartedType = "RetentionStarted"

// TombstoneData is the Data of a tombstoned event: its payload was removed by retention.
var TombstoneData = []byte("null")

// Tombstone records that retention removed an event's payload and metadata (all but the
// tenant). The event's row keeps its ID, stream, version, position, type, schema and times, so
// that the stream's version, the order of the log and every Merkle proof stay as they were;
// LeafHash is the event's ledger leaf hash before removal, which the ledger audit accepts in
// place of the removed content.
type Tombstone struct {
	EventID uuid.UUID
	// LeafHash is the event's RFC 6962 leaf hash (32 bytes), computed before removal.
	LeafHash []byte
	// Run identifies the retention run that removed it: the ID of the run's audit event, of type
	// RetentionStartedType, which the ledger audit looks for in the log.
	Run uuid.UUID
	// RemovedAt is set by the store.
	RemovedAt time.Time
}

// RetentionSelect selects candidates for [RetentionStore.RetentionCandidates].
type RetentionSelect struct {
	// Tenant, when not empty, keeps that tenant's events only; AnyTenant keeps every tenant's.
	Tenant string
	// AnyTenant selects every tenant (and events without one); Tenant must then be empty.
	AnyTenant bool
	// Types, when set, keeps events of these types; ExcludeTypes leaves these out.
	Types, ExcludeTypes []string
	// RecordedBefore is the cutoff: events recorded strictly before it are candidates. Required,
	// in the years MinTimerYear to MaxTimerYear.
	RecordedBefore time.Time
	// Cursor is the Next of the previous page of this pass; "" starts the pass.
	Cursor string
	// UpTo, when not Start, is the last position that may be removed (the ledger's sealed head).
	UpTo Position
	// ExcludePrefix leaves out streams whose names start with it.
	ExcludePrefix string
	// Limit caps the result, 1 to MaxRetentionBatch.
	Limit int
}

// LegalHold keeps a stream from retention: no payload of a held stream is ever removed.
type LegalHold struct {
	Stream string
	Reason string
	// HeldBy names who placed it.
	HeldBy string
	// HeldAt is set by the store.
	HeldAt time.Time
}

// RetentionPage is one page of retention candidates.
type RetentionPage struct {
	Events []Event
	// Next continues the pass (as RetentionSelect.Cursor); "" when the pass is over.
	Next string
}

// RetentionStore removes payloads and keeps tombstones; see [Tombstone].
type RetentionStore interface {
	// RetentionCandidates returns a page of the events that sel selects and that are not
	// tombstoned yet and not in a stream under legal hold. A pass (pages chained by Next, from
	// Cursor "") returns each such event once, in an order of the backend's index: Position
	// order, or (RecordedAt, Position) order where an index on the recording time of the events
	// not yet tombstoned lets a pass stop at the cutoff. A page may hold fewer than sel.Limit
	// events and still have a Next.
	RetentionCandidates(ctx context.Context, sel RetentionSelect) (RetentionPage, error)
	// TombstoneEvents replaces the data of the given events with TombstoneData and their
	// metadata with their tenant alone, and stores the tombstones, in short transactions that
	// take no lock an append waits for: one, or one per part of the batch where a backend
	// cuts it in parts, each blanking exactly the events it stores the tombstones of. Events
	// already tombstoned or whose stream is under legal hold when a transaction runs are left
	// alone. The temporal snapshots of the streams of the removed events are deleted with
	// them (they hold states folded from the removed payloads). It returns how many were
	// removed; after an error, some may have been, each with its tombstone, and a call again
	// removes the rest. An event named more than once gets its last tombstone. At most
	// MaxTombstoneBatch per call; a leaf hash must be 32 bytes.
	TombstoneEvents(ctx context.Context, ts []Tombstone) (int, error)
	// Tombstone returns the tombstone of an event, or a NotFound error when it has none.
	Tombstone(ctx context.Context, eventID uuid.UUID) (Tombstone, error)
	// PlaceLegalHold puts a stream under legal hold (again: the reason is replaced).
	PlaceLegalHold(ctx context.Context, h LegalHold) error
	// ReleaseLegalHold lifts a hold; a stream without one is not an error.
	ReleaseLegalHold(ctx context.Context, stream string) error
	// LegalHolds lists the holds in stream name order.
	LegalHolds(ctx context.Context) iter.Seq2[LegalHold, error]
}

// ValidateRetentionSelect checks sel; every error is Invalid.
func ValidateRetentionSelect(op string, sel RetentionSelect) error {
	if sel.RecordedBefore.IsZero() {
		return Errorf(Invalid, op, "retention needs a cutoff time")
	}
	// As an event query's time range: the databases cannot take every time, and one past
	// year 294,247 has no microseconds in an int64.
	if y := sel.RecordedBefore.Year(); y < MinTimerYear || y > MaxTimerYear {
		return Errorf(Invalid, op, "cutoff %s outside the years %d-%d", sel.RecordedBefore.Format(time.RFC3339), MinTimerYear, MaxTimerYear)
	}
	if sel.Tenant == "" && !sel.AnyTenant || sel.Tenant != "" && sel.AnyTenant {
		return Errorf(Invalid, op, "select one tenant or, explicitly, every tenant")
	}
	if sel.Limit < 1 || sel.Limit > MaxRetentionBatch {
		return Errorf(Invalid, op, "limit %d outside 1-%d", sel.Limit, MaxRetentionBatch)
	}
	return nil
}

// RetentionCursor decodes RetentionSelect.Cursor: the sort key of the last candidate of the
// previous page (a zero key when ok is false, at the start of a pass). A cursor not made by
// [RetentionPageOf] is an Invalid error.
func RetentionCursor(op string, sel RetentionSelect) (c QueryCursor, ok bool, err error) {
	c, ok, err = DecodeQueryCursor(sel.Cursor)
	if err != nil {
		return c, false, Errorf(Invalid, op, "retention cursor: %w", err)
	}
	return c, ok, nil
}

// RetentionPageOf makes the page of the candidates evs of a read with LIMIT sel.Limit: when
// more (the read returned its limit, or stopped early at a byte budget) the pass continues
// after last, the last row read (even when a Go filter then dropped it); otherwise it ends.
func RetentionPageOf(evs []Event, more bool, last *Event) RetentionPage {
	p := RetentionPage{Events: evs}
	if more && last != nil {
		p.Next = CursorAfter(last)
	}
	return p
}

// PrepareTombstones validates a batch for TombstoneEvents.
func PrepareTombstones(op string, ts []Tombstone) error {
	if len(ts) > MaxTombstoneBatch {
		return Errorf(Invalid, op, "%d tombstones in one batch, more than %d", len(ts), MaxTombstoneBatch)
	}
	for i, t := range ts {
		if t.EventID == uuid.Nil || len(t.LeafHash) != LedgerHashSize {
			return Errorf(Invalid, op, "tombstone %d needs an event ID and a %d-byte leaf hash", i, LedgerHashSize)
		}
	}
	return nil
}

// TombstonesInParts is how a backend whose statements each run on one server core spreads a
// TombstoneEvents batch over several: it keeps the last of each event's tombstones, sorts them
// by event ID, cuts them into at most parts parts of at least minPart tombstones, and removes
// the parts at once, each with its own call of remove (its own transaction). It returns how
// many they removed in all, with their errors joined: a part that fails leaves the others'
// removals in place. A remove that locks its events in the order it is given them never
// deadlocks with another call's: every transaction then locks in the order of event IDs.
func TombstonesInParts(ctx context.Context, ts []Tombstone, parts, minPart int, remove func(context.Context, []Tombstone) (int, error)) (int, error) {
	last := make([]Tombstone, 0, len(ts))
	seen := make(map[uuid.UUID]bool, len(ts))
	for i := len(ts) - 1; i >= 0; i-- {
		if !seen[ts[i].EventID] {
			seen[ts[i].EventID] = true
			last = append(last, ts[i])
		}
	}
	slices.SortFunc(last, func(a, b Tombstone) int { return bytes.Compare(a.EventID[:], b.EventID[:]) })
	parts = max(1, min(parts, len(last)/max(minPart, 1)))
	if parts == 1 {
		return remove(ctx, last)
	}
	var (
		wg   sync.WaitGroup
		ns   = make([]int, parts)
		errs = make([]error, parts)
	)
	for p := range parts {
		part := last[p*len(last)/parts : (p+1)*len(last)/parts]
		wg.Go(func() { ns[p], errs[p] = remove(ctx, part) })
	}
	wg.Wait()
	n := 0
	for _, k := range ns {
		n += k
	}
	return n, errors.Join(errs...)
}

// ValidateLegalHold checks a hold; every error is Invalid.
func ValidateLegalHold(op string, h LegalHold) error {
	if err := ValidateStreamName(op, h.Stream); err != nil {
		return err
	}
	if len(h.Reason) > 4096 || len(h.HeldBy) > 255 {
		return Errorf(Invalid, op, "legal hold reason or holder too long")
	}
	return nil
}

// TombstoneMeta returns the metadata a tombstoned event keeps: its tenant.
func TombstoneMeta(m Metadata) Metadata { return Metadata{Tenant: m.Tenant} }

// TombstoneTenantBytes holds the bytes of a plain tenant: one whose tombstone metadata, as
// [Metadata.MarshalJSON] writes it, is {"tenant":"<the tenant>"}, the tenant's bytes as they
// are (printable ASCII and DEL, but for the five that JSON escapes: " \ < > &). A backend may
// build such metadata in SQL, and must build that of any other tenant from MarshalJSON.
const TombstoneTenantBytes = " !#$%'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f"

// TombstoneNotFound returns the NotFound error of Tombstone.
func TombstoneNotFound(op string, id uuid.UUID) error {
	return Errorf(NotFound, op, "event %s has no tombstone", id)
}

// TemporalSnapshotNotFound returns the NotFound error of TemporalSnapshotAt.
func TemporalSnapshotNotFound(op, stream, model string) error {
	return Errorf(NotFound, op, "no snapshot of %q (%s) for that time", stream, model)
}

// QueryPage makes the page of q from rows a backend read in query order with LIMIT q.Limit+1
// (q as [PrepareEventQuery] returned it): a row beyond the limit means another page follows.
// cut says the backend stopped reading early (a page of large payloads): the page then ends at
// the last row read and another follows. Rows that fail q.Match are dropped, for backends
// whose indexes select a superset.
func QueryPage(q *EventQuery, rows []Event, cut bool) EventPage {
	var p EventPage
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		p.Next = CursorAfter(&rows[len(rows)-1])
	} else if cut && len(rows) > 0 {
		p.Next = CursorAfter(&rows[len(rows)-1])
	}
	out := rows[:0]
	for i := range rows {
		if q.Match(&rows[i]) {
			out = append(out, rows[i])
		}
	}
	p.Events = out
	return p
}

// PrefixEnd returns the least string above every string that starts with prefix, for a range
// scan stream >= prefix AND stream < end; ok is false when there is none (no upper bound). It
// works on UTF-8 in code point order, which is the byte order of valid UTF-8.
func PrefixEnd(prefix string) (end string, ok bool) {
	rs := []rune(prefix)
	for len(rs) > 0 {
		r := rs[len(rs)-1] + 1
		if r == 0xD800 {
			r = 0xE000
		}
		if r <= 0x10FFFF {
			rs[len(rs)-1] = r
			return string(rs), true
		}
		rs = rs[:len(rs)-1]
	}
	return "", false
}

// QueryIndexer is implemented by stores whose search indexes are created on request rather
// than by their migrations, because each index costs appends: a store that is searched calls
// CreateQueryIndexes once (it is idempotent, and builds without blocking appends where the
// database can). Without the indexes every query still answers correctly, only slower.
type QueryIndexer interface {
	CreateQueryIndexes(ctx context.Context) error
}
