// Package projection runs checkpointed projections of the global log into read models: gap-free
// catch-up then live following, batches whose read-model writes commit with the checkpoint in
// one transaction, retries with backoff and a recorded failed state, emitted events, rebuilds,
// blue-green versions, and partitions shared by workers in several processes through leases.
//
// A [Projection] names its handlers by event type. A [Worker] runs it: it claims the
// projection's partitions through leases kept in the store ([strata.ProjectionStore]), follows
// the log from each partition's checkpoint with Store.Subscribe (woken by the store's live
// signal, never by polling the log), and hands each batch of events to the handlers inside the
// store's transaction, together with the checkpoint: a read model in the same database changes
// exactly once per event. See docs/PROJECTIONS.md.
package projection

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// Handler applies one event to the read model. It must be deterministic in what it writes given
// the read model and the event, because a batch that fails is rolled back and run again.
type Handler func(ctx context.Context, c *Context, e strata.Event) error

// Projection describes a projection.
type Projection struct {
	// Name identifies the projection; keep it stable. Emitted event IDs derive from it.
	Name string
	// Version is 1 or more (0 means 1). A new version is built beside the old one (blue-green):
	// give it its own tables, and readers switch when it has caught up.
	Version int
	// Handlers maps event types to handlers; the projection reads only these types.
	Handlers map[string]Handler
	// Filter narrows the events further (StreamPrefix, Tenant); its Types are ignored.
	Filter strata.Filter
	// Partitions splits the projection by stream into this many partitions (0 means 1), which
	// workers run in parallel. An event belongs to partition fnv1a32(PartitionKey(event)) mod
	// Partitions, so the events of one stream are always handled in order by one partition.
	Partitions int
	// PartitionKey returns the key an event is partitioned by; nil means its stream.
	PartitionKey func(e *strata.Event) string
	// External says the read model lives outside the store's database. Handlers then run
	// outside the store's transaction (Context.Tx is nil) before the checkpoint commits, so
	// delivery is at least once: handlers must be idempotent (see docs/PROJECTIONS.md).
	External bool
	// Setup, if set, runs in a transaction of the store whenever a worker claims a partition,
	// before any event: create the read model's tables there (IF NOT EXISTS).
	Setup func(ctx context.Context, tx any) error
	// Clear, if set, runs in the transaction of a partition's first batch after it was created
	// or reset, to empty that partition's part of the read model (for a rebuild in place).
	Clear func(ctx context.Context, tx any, key strata.ProjectionKey) error
	// Drop, if set, removes the version's read model when the version is dropped ([Drop]).
	Drop func(ctx context.Context, tx any) error
}

// Context is what a handler gets besides the event.
type Context struct {
	// Tx is the store's transaction the batch runs in: *sql.Tx on SQLite and MySQL, pgx.Tx on
	// PostgreSQL, nil on the in-memory store and for External projections.
	Tx any
	// Key is the partition handling the event.
	Key strata.ProjectionKey
	// Rebuilding is true while the partition replays history; emitted events are dropped then.
	Rebuilding bool

	source *strata.Event
	name   string
	n      int
	out    []emitted
}

// Emit appends an event to stream after the batch commits, unless the projection is
// rebuilding. Its ID derives from the projection's name, the source event's ID and the order of
// the Emit calls for that event, so that a batch run again emits the same IDs and the store
// appends each once. Causation is the source event; tenant and correlation carry over.
func (c *Context) Emit(stream string, e strata.EventData) {
	idx := c.n
	c.n++
	if c.Rebuilding || c.source == nil {
		return
	}
	e.ID = EmittedID(c.name, c.source.ID, idx)
	m := e.Meta
	if m.Tenant == "" {
		m.Tenant = c.source.Meta.Tenant
	}
	if m.Correlation == "" {
		m.Correlation = c.source.Meta.Correlation
		if m.Correlation == "" {
			m.Correlation = c.source.ID.String()
		}
	}
	if m.Causation == "" {
		m.Causation = c.source.ID.String()
	}
	if m.Principal == "" {
		m.Principal = "projection:" + c.name
	}
	e.Meta = m
	c.out = append(c.out, emitted{Stream: stream, Event: e})
}

// EmittedID is the ID of the index-th event (0-based) a projection emitted for the event source.
// Versions of one projection share it, so that a new version running beside the old one does not
// emit twice.
func EmittedID(projection string, source uuid.UUID, index int) uuid.UUID {
	return uuid.NewSHA1(source, []byte("strata projection emit\x00"+projection+"\x00"+strconv.Itoa(index)))
}

// emitted is one event of a partition's outbox.
type emitted struct {
	Stream string           `json:"stream"`
	Event  strata.EventData `json:"event"`
}

func encodeOutbox(out []emitted) ([]byte, error) {
	if len(out) == 0 {
		return nil, nil
	}
	return json.Marshal(out)
}

func decodeOutbox(b []byte) ([]emitted, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []emitted
	err := json.Unmarshal(b, &out)
	return out, err
}

// Partition returns the partition of key among n: FNV-1a (32 bits) of the key's bytes mod n.
func Partition(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// normalize validates p and fills in its defaults.
func (p Projection) normalize(op string) (Projection, error) {
	if p.Version == 0 {
		p.Version = 1
	}
	if p.Partitions == 0 {
		p.Partitions = 1
	}
	if err := strata.ValidateProjectionInit(op, strata.ProjectionInit{Name: p.Name, Version: p.Version, Partitions: p.Partitions}); err != nil {
		return p, err
	}
	if len(p.Handlers) == 0 {
		return p, strata.Errorf(strata.Invalid, op, "projection %q has no handlers", p.Name)
	}
	for typ, h := range p.Handlers {
		if h == nil {
			return p, strata.Errorf(strata.Invalid, op, "projection %q: the handler of %q is nil", p.Name, typ)
		}
		if err := strata.ValidateEventType(op, typ); err != nil {
			return p, err
		}
	}
	return p, nil
}

// filter is the filter the projection reads the log with.
func (p Projection) filter() strata.Filter {
	f := p.Filter
	f.Types = make([]string, 0, len(p.Handlers))
	for t := range p.Handlers {
		f.Types = append(f.Types, t)
	}
	slices.Sort(f.Types)
	return f
}

func (p Projection) partitionOf(e *strata.Event) int {
	if p.Partitions <= 1 {
		return 0
	}
	key := e.Stream
	if p.PartitionKey != nil {
		key = p.PartitionKey(e)
	}
	return Partition(key, p.Partitions)
}

// projectionStore returns the store's ProjectionStore or says what is missing.
func projectionStore(op string, store strata.Store) (strata.ProjectionStore, error) {
	if store == nil {
		return nil, strata.Errorf(strata.Invalid, op, "no store")
	}
	ps, ok := store.(strata.ProjectionStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "projections need a store that implements strata.ProjectionStore; %T does not", store)
	}
	return ps, nil
}

// backoff returns the wait before attempt n (1-based) after a failure: base doubling up to max.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// truncate shortens s for a one-line message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
