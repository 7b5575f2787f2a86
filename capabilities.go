package strata

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// The interfaces in this file are optional capabilities of a [Store], in the manner of
// database/sql/driver's optional interfaces: a toolkit package (aggregate, saga, projection)
// checks for one with a type assertion and says clearly what is missing when a backend lacks
// it. Every backend in this module implements all of them, and storetest checks each one.

// Snapshot is a saved state of the aggregate kept in one stream, so that loading it reads only
// the events after Version.
type Snapshot struct {
	// Stream is the stream whose events the state was folded from.
	Stream string
	// Version is the version of the stream's last event folded into the state.
	Version int64
	// Schema is the version of the state's encoding. A loader that expects another schema
	// ignores the snapshot and folds the whole stream.
	Schema int
	// Data is the encoded state.
	Data []byte
	// TakenAt is when the snapshot was saved (store clock, UTC, microseconds); set by the store.
	TakenAt time.Time
}

// SnapshotStore keeps at most one snapshot per stream.
type SnapshotStore interface {
	// SaveSnapshot stores s as the stream's snapshot. It replaces the stored one unless that
	// one has a higher Version (a slow writer never rolls a snapshot back); an older snapshot
	// is dropped without an error. Data may be empty but not larger than MaxDataLen; Version
	// must be positive and Schema not negative; the stream name follows the rules of
	// [ValidateStreamName]. Bad input is an Invalid error and nothing is written (see
	// [PrepareSnapshot]).
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the stream's snapshot, or a NotFound error when it has none.
	LoadSnapshot(ctx context.Context, stream string) (Snapshot, error)
	// DeleteSnapshot removes the stream's snapshot; a stream without one is not an error.
	DeleteSnapshot(ctx context.Context, stream string) error
}

// Timer is a durable timer: it survives restarts of the process that set it, and a worker
// fires it once it is due.
type Timer struct {
	// ID identifies the timer; scheduling a timer whose ID is already scheduled changes nothing.
	ID uuid.UUID
	// Owner names who fires it, e.g. a saga's name; workers ask for their owner's due timers.
	// Owner is required; Owner, Key and Name hold at most MaxTimerFieldLen bytes of UTF-8
	// without control characters.
	Owner string
	// Key says what the timer is for, e.g. the saga instance's stream.
	Key string
	// Name is what the timer means to its owner, e.g. "approval-deadline".
	Name string
	// DueAt is when the timer fires; it is stored in UTC with microseconds, and must lie in the
	// years MinTimerYear to MaxTimerYear.
	DueAt time.Time
	// Data is free bytes for the owner; at most MaxDataLen.
	Data []byte
}

// TimerStore keeps durable timers.
type TimerStore interface {
	// ScheduleTimer stores t. Scheduling an ID that is already stored changes nothing and is
	// not an error, so that a worker that crashed after scheduling can schedule again. A zero
	// ID, an empty Owner, a zero DueAt or other bad input is an Invalid error and nothing is
	// written (see [PrepareTimer]).
	ScheduleTimer(ctx context.Context, t Timer) error
	// DueTimers returns up to limit timers of owner with DueAt at or before now, earliest
	// first (ties by the bytes of the ID). A limit of 0 or less means no limit. It neither
	// removes nor locks them: they stay due until DeleteTimer, so a worker that crashes
	// before deleting a fired timer fires it again (at least once).
	DueTimers(ctx context.Context, owner string, now time.Time, limit int) ([]Timer, error)
	// DeleteTimer removes a timer, once fired or cancelled; an unknown ID is not an error.
	DeleteTimer(ctx context.Context, id uuid.UUID) error
}

// CheckpointStore keeps named cursors into the global log, for readers that resume where they
// stopped: sagas, projections, transmitters.
type CheckpointStore interface {
	// SaveCheckpoint stores pos under name, replacing the stored one, even with a lower
	// Position. A name is 1 to MaxCheckpointNameLen bytes of UTF-8 without control
	// characters; any other is an Invalid error (see [ValidateCheckpointName]).
	SaveCheckpoint(ctx context.Context, name string, pos Position) error
	// LoadCheckpoint returns the Position stored under name, or Start when there is none.
	LoadCheckpoint(ctx context.Context, name string) (Position, error)
}
