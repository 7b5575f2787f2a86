package strata

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Projection storage: the optional capability behind package projection. A projection is
// named, versioned and split into partitions; each partition (a [ProjectionKey]) has one row of
// state: its checkpoint in the global log, its mode, its failure record, its pause flag and the
// lease of the worker that runs it. Leases are fenced by an epoch that grows on every claim and
// every reset: a worker whose lease was taken over cannot commit, because its epoch is stale.

// Limits of projection state, the same on every backend.
const (
	// MaxProjectionNameLen is the longest projection name, in bytes of UTF-8.
	MaxProjectionNameLen = 200
	// MaxProjectionOwnerLen is the longest worker (lease owner) name, in bytes of UTF-8.
	MaxProjectionOwnerLen = 200
	// MaxProjectionPartitions is the most partitions one projection version may have.
	MaxProjectionPartitions = 4096
	// MaxProjectionErrorLen is the longest failure message stored; longer ones are cut.
	MaxProjectionErrorLen = 4000
)

// ProjectionKey names one partition of one version of a projection.
type ProjectionKey struct {
	Name string
	// Version is 1 or more; versions of a name are built side by side (blue-green).
	Version int
	// Partition is 0 to Partitions-1; an unpartitioned projection has partition 0 of 1.
	Partition int
}

// ProjectionFailure records the event a projection stopped at after its handler failed as
// many times as it was allowed to.
type ProjectionFailure struct {
	EventID   uuid.UUID
	Position  Position
	EventType string
	Stream    string
	Error     string
	Attempts  int
	At        time.Time
}

// ProjectionState is one partition's stored state.
type ProjectionState struct {
	Key        ProjectionKey
	Partitions int
	// Filter is the filter the version reads the log with, as given to InitProjection; status
	// tools measure lag with it.
	Filter Filter
	// Position is the checkpoint: the partition has handled every event up to it.
	Position Position
	// Processed counts the events handled since the partition was created or last reset.
	Processed int64
	// Rebuilding is set while the partition replays history after a reset (emission is
	// suppressed then); it is cleared once Position reaches RebuildTarget.
	Rebuilding    bool
	RebuildTarget Position
	Paused        bool
	// Failure is set when the partition stopped on an event; nil otherwise.
	Failure *ProjectionFailure
	// Pending holds events the partition decided to emit in its last commit and has not yet
	// appended (an outbox, so that a crash between commit and append loses none).
	Pending []byte
	// Owner, Epoch and LeaseUntil describe the lease; Owner is empty when nobody holds it.
	Owner      string
	Epoch      int64
	LeaseUntil time.Time
	UpdatedAt  time.Time
}

// ProjectionLease is a worker's hold on one partition.
type ProjectionLease struct {
	Key   ProjectionKey
	Owner string
	Epoch int64
}

// ProjectionInit creates a projection version's partitions.
type ProjectionInit struct {
	Name       string
	Version    int
	Partitions int
	// Filter is stored with the partitions for status tools (see ProjectionState.Filter).
	Filter Filter
	// Rebuilding and RebuildTarget are the mode new partitions start in.
	Rebuilding    bool
	RebuildTarget Position
}

// ProjectionCommit moves a partition's checkpoint, fenced by its lease and its expected
// checkpoint From. Every runner-owned field is written as given.
type ProjectionCommit struct {
	Lease     ProjectionLease
	From, To  Position
	Processed int64
	// Rebuilding is the mode after this commit.
	Rebuilding bool
	Failure    *ProjectionFailure
	// Pending is the outbox this commit stores: events the batch's handlers emitted, to be
	// appended after the commit (see ProjectionState.Pending).
	Pending []byte
	// Emitted, when set, is called after apply returns and gives Pending instead: the handlers
	// that emit run inside apply, in the commit's transaction, so their outbox is known only
	// then.
	Emitted func() ([]byte, error)
}

// ProjectionControl changes every partition of a projection version from outside its workers.
type ProjectionControl struct {
	// Pause, when not nil, sets the pause flag.
	Pause *bool
	// Reset moves every partition back to Start in rebuild mode up to RebuildTarget, clears
	// failures and counters, and ends every lease (raising the epoch), so that running workers
	// stop committing and claim again. It keeps outboxes: their events were emitted by handled
	// events and are appended still, whatever the rebuild replays.
	Reset         bool
	RebuildTarget Position
}

// ProjectionLag is what is left of the log after a checkpoint.
type ProjectionLag struct {
	// Events counts committed events after the checkpoint that the filter selects.
	Events int64
	// Last is the Position of the last of them (the checkpoint itself when there are none).
	Last Position
}

// ProjectionStore keeps the state of projections. Times are the store's clock.
type ProjectionStore interface {
	// InitProjection creates the partitions of a projection version that do not exist. It is a
	// Conflict error when the version exists with another number of partitions.
	InitProjection(ctx context.Context, init ProjectionInit) error

	// ClaimProjection gives owner the partition's lease for ttl when nobody holds it, the lease
	// has expired, or owner holds it already; the epoch is raised in every case. It returns the
	// state with the new lease, a Conflict error when another owner holds a live lease, or a
	// NotFound error when the partition does not exist.
	ClaimProjection(ctx context.Context, key ProjectionKey, owner string, ttl time.Duration) (ProjectionState, error)
	// RenewProjectionLease extends a lease by ttl and returns the state. It is a Conflict error
	// when the lease was lost (another claim or a reset raised the epoch).
	RenewProjectionLease(ctx context.Context, lease ProjectionLease, ttl time.Duration) (ProjectionState, error)
	// ReleaseProjectionLease ends a lease that is still held; a lost lease is not an error.
	ReleaseProjectionLease(ctx context.Context, lease ProjectionLease) error

	// CommitProjection runs apply, if not nil, and stores c in one database transaction. apply
	// gets the backend's transaction (*sql.Tx for SQLite and MySQL, pgx.Tx for PostgreSQL, nil
	// for the in-memory store) so that a read model in the same database changes exactly when
	// the checkpoint does. It is a Conflict error, and nothing is stored, when the lease is not
	// the partition's current one or its checkpoint is not c.From. An error of apply rolls back
	// and is returned as it is.
	CommitProjection(ctx context.Context, c ProjectionCommit, apply func(tx any) error) error

	// ProjectionStates lists the partitions of name (every projection when name is empty), by
	// name, version and partition.
	ProjectionStates(ctx context.Context, name string) ([]ProjectionState, error)
	// ControlProjection applies ctl to every partition of name at version; a NotFound error when
	// there is none.
	ControlProjection(ctx context.Context, name string, version int, ctl ProjectionControl) error
	// DropProjection runs apply, if not nil (to drop the version's read model), and deletes the
	// version's state, in one transaction. It is a Conflict error to drop the active version.
	DropProjection(ctx context.Context, name string, version int, apply func(tx any) error) error

	// ActivateProjection makes version the one readers of name use. With onlyNewer it changes
	// nothing when the active version is version or newer. It reports whether it changed.
	ActivateProjection(ctx context.Context, name string, version int, onlyNewer bool) (bool, error)
	// ActiveProjection returns the version readers of name use, 0 when none was activated.
	ActiveProjection(ctx context.Context, name string) (int, error)

	// ProjectionHeartbeat records that owner works on name at version until ttl from now, and
	// returns the owners whose heartbeats are live, in byte order (owner among them).
	ProjectionHeartbeat(ctx context.Context, name string, version int, owner string, ttl time.Duration) ([]string, error)

	// ProjectionLag measures the log after a checkpoint.
	ProjectionLag(ctx context.Context, after Position, filter Filter) (ProjectionLag, error)

	// QueryProjection runs fn in a read-only transaction of the store's database, for readers of
	// read models kept there; fn gets the transaction as apply does in CommitProjection.
	QueryProjection(ctx context.Context, fn func(tx any) error) error
}

// ValidateProjectionKey returns an Invalid error unless the name is a valid name of at most
// MaxProjectionNameLen bytes, the version is 1 or more and the partition is not negative.
func ValidateProjectionKey(op string, k ProjectionKey) error {
	if err := ValidateProjectionName(op, k.Name); err != nil {
		return err
	}
	if k.Version < 1 {
		return Errorf(Invalid, op, "projection %q: version %d is not positive", k.Name, k.Version)
	}
	if k.Partition < 0 || k.Partition >= MaxProjectionPartitions {
		return Errorf(Invalid, op, "projection %q: partition %d is out of range", k.Name, k.Partition)
	}
	return nil
}

// ValidateProjectionName returns an Invalid error unless name is non-empty, valid UTF-8, at
// most MaxProjectionNameLen bytes and free of control characters.
func ValidateProjectionName(op, name string) error {
	if err := validateName("projection name", name, MaxProjectionNameLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateProjectionOwner returns an Invalid error for a bad lease owner name.
func ValidateProjectionOwner(op, owner string) error {
	if err := validateName("projection owner", owner, MaxProjectionOwnerLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateProjectionInit checks an InitProjection request.
func ValidateProjectionInit(op string, in ProjectionInit) error {
	if err := ValidateProjectionKey(op, ProjectionKey{Name: in.Name, Version: in.Version}); err != nil {
		return err
	}
	if in.Partitions < 1 || in.Partitions > MaxProjectionPartitions {
		return Errorf(Invalid, op, "projection %q: %d partitions (want 1 to %d)", in.Name, in.Partitions, MaxProjectionPartitions)
	}
	return nil
}

// ValidateLeaseTTL returns an Invalid error unless ttl lies between a millisecond and a day.
func ValidateLeaseTTL(op string, ttl time.Duration) error {
	if ttl < time.Millisecond || ttl > 24*time.Hour {
		return Errorf(Invalid, op, "lease duration %s is not between 1ms and 24h", ttl)
	}
	return nil
}

// TruncateProjectionError cuts a failure message to MaxProjectionErrorLen bytes on a rune
// boundary, so that every backend stores it.
func TruncateProjectionError(s string) string {
	if len(s) <= MaxProjectionErrorLen {
		return s
	}
	cut := MaxProjectionErrorLen
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}

// ProjectionLeaseLost returns the Conflict error of a commit or renewal with a lost lease.
func ProjectionLeaseLost(op string, k ProjectionKey) error {
	return Errorf(Conflict, op, "projection %q version %d partition %d: the lease was lost (taken over or reset)", k.Name, k.Version, k.Partition)
}

// ProjectionNotFound returns the NotFound error for a partition or version that does not exist.
func ProjectionNotFound(op string, name string, version int) error {
	return Errorf(NotFound, op, "projection %q version %d does not exist", name, version)
}
