package strata

import (
	"context"
	"iter"
	"slices"
	"strings"
)

// Store is an event store. Every backend implements it and passes storetest.Run.
//
// All reads are lazy: the returned iterator does no work until it is ranged over, fetches rows in
// bounded pages, and releases its resources when the loop ends. An iterator stops after yielding a
// non-nil error.
type Store interface {
	// Append atomically appends events to one stream if expected holds for the stream's current
	// version. It returns a Conflict error (with Stream, Expected and Actual set) when it does not,
	// and when an event ID is already stored with other content. Appending the same IDs with the
	// same content again returns the first result with Replayed set.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// AppendMulti appends to several streams in one transaction: all commit or none. Each stream
	// may appear once. Results are in the order of the arguments.
	AppendMulti(ctx context.Context, appends ...StreamAppend) ([]AppendResult, error)

	// ReadStream reads one stream in version order.
	ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) iter.Seq2[Event, error]

	// ReadAll reads the committed global log after opts.After, in Position order, up to what is
	// committed now. It never returns an event while an event that will sort before it may still
	// commit.
	ReadAll(ctx context.Context, opts ReadAllOptions) iter.Seq2[Event, error]

	// Subscribe reads the global log after from, like ReadAll, and then waits for new events and
	// yields them as they commit, until ctx is done (it then yields ctx's error) or the store is
	// closed. Resuming with the Position of the last event handled continues without loss.
	Subscribe(ctx context.Context, from Position, filter Filter) iter.Seq2[Event, error]

	// StreamInfo describes one stream; a stream with no events has Exists false and no error.
	StreamInfo(ctx context.Context, stream string) (StreamInfo, error)

	// Streams lists streams in name order (byte order of their UTF-8 names).
	Streams(ctx context.Context, opts ListStreamsOptions) iter.Seq2[StreamInfo, error]

	// Close releases the store's resources. Calls after Close return an Unavailable error
	// wrapping ErrClosed; running iterators end with that error.
	Close() error
}

// ReadStreamOptions select part of a stream.
type ReadStreamOptions struct {
	// From is the first version to return: reading forwards, 0 means the first event; reading
	// backwards, 0 means the last event.
	From int64
	// Backward reads from From towards version 1.
	Backward bool
	// Limit caps the number of events; 0 means no limit.
	Limit int
}

// ReadAllOptions select part of the global log.
type ReadAllOptions struct {
	// After is the cursor: events strictly after it are returned. Start reads from the beginning.
	After Position
	// Filter selects events; the zero Filter selects all.
	Filter Filter
	// Limit caps the number of events; 0 means no limit.
	Limit int
}

// ListStreamsOptions select streams for [Store.Streams].
type ListStreamsOptions struct {
	// Prefix keeps streams whose names start with it.
	Prefix string
	// After is a stream name; listing starts after it (a cursor for paging).
	After string
	// Limit caps the number of streams; 0 means no limit.
	Limit int
}

// Filter selects events of the global log. Empty fields select everything; set fields must all
// match.
type Filter struct {
	// Types keeps events whose Type is one of these.
	Types []string
	// StreamPrefix keeps events whose stream name starts with it.
	StreamPrefix string
	// Tenant keeps events whose Meta.Tenant equals it.
	Tenant string
}

// IsZero reports whether f selects every event.
func (f Filter) IsZero() bool { return len(f.Types) == 0 && f.StreamPrefix == "" && f.Tenant == "" }

// Match reports whether e passes the filter.
func (f Filter) Match(e *Event) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if f.StreamPrefix != "" && !strings.HasPrefix(e.Stream, f.StreamPrefix) {
		return false
	}
	return f.Tenant == "" || e.Meta.Tenant == f.Tenant
}

// hookKey is the context key of WithBeforeCommit.
type hookKey struct{}

// WithBeforeCommit returns a context that makes an append call fn after its events are written
// and have their places in the log, just before the transaction commits. If fn returns an error
// the append rolls back and returns it. It exists to make commit-order races deterministic in
// tests (storetest uses it) and to inject faults; production code has no use for it.
func WithBeforeCommit(ctx context.Context, fn func(context.Context) error) context.Context {
	return context.WithValue(ctx, hookKey{}, fn)
}

// BeforeCommit runs the hook set by [WithBeforeCommit], if any. Backends call it inside the
// append transaction, after writing the events and before committing.
func BeforeCommit(ctx context.Context) error {
	if fn, ok := ctx.Value(hookKey{}).(func(context.Context) error); ok && fn != nil {
		return fn(ctx)
	}
	return nil
}
