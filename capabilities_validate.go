package strata

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// Limits of the optional capabilities, the same on every backend.
const (
	// MaxCheckpointNameLen is the longest checkpoint name, in bytes of UTF-8.
	MaxCheckpointNameLen = 255
	// MaxTimerFieldLen is the longest timer Owner, Key or Name, in bytes of UTF-8.
	MaxTimerFieldLen = 255
	// MinTimerYear and MaxTimerYear bound a timer's DueAt (in UTC) to what MySQL's DATETIME
	// holds, so that a timer can move between backends.
	MinTimerYear, MaxTimerYear = 1000, 9999
)

// PrepareSnapshot validates a snapshot for [SnapshotStore.SaveSnapshot] and returns a copy
// ready to store: Data copied and never nil (an empty state is stored as zero bytes, not NULL),
// TakenAt cleared for the store to set. Every error is Invalid, so that nothing is written for
// bad input. Backends call it first in SaveSnapshot.
func PrepareSnapshot(op string, s Snapshot) (Snapshot, error) {
	if err := ValidateStreamName(op, s.Stream); err != nil {
		return Snapshot{}, err
	}
	if s.Version <= 0 {
		return Snapshot{}, Errorf(Invalid, op, "stream %q: snapshot version %d is not positive", s.Stream, s.Version)
	}
	if s.Schema < 0 {
		return Snapshot{}, Errorf(Invalid, op, "stream %q: negative snapshot schema %d", s.Stream, s.Schema)
	}
	if len(s.Data) > MaxDataLen {
		return Snapshot{}, Errorf(Invalid, op, "stream %q: snapshot data is %d bytes, more than %d", s.Stream, len(s.Data), MaxDataLen)
	}
	s.Data = cloneBytes(s.Data)
	s.TakenAt = time.Time{}
	return s, nil
}

// PrepareTimer validates a timer for [TimerStore.ScheduleTimer] and returns a copy ready to
// store: DueAt as a [Timestamp], Data copied and never nil. The ID must be set, Owner must be a
// valid owner name (see [ValidateTimerOwner]), Key and Name may be empty but are otherwise held
// to the same rules, DueAt must be set and lie in the years MinTimerYear to MaxTimerYear, and
// Data may hold at most MaxDataLen bytes. Every error is
// Invalid. Backends call it first in ScheduleTimer.
func PrepareTimer(op string, t Timer) (Timer, error) {
	if t.ID == uuid.Nil {
		return Timer{}, Errorf(Invalid, op, "timer has no ID")
	}
	if err := ValidateTimerOwner(op, t.Owner); err != nil {
		return Timer{}, err
	}
	if t.Key != "" {
		if err := validateName("timer key", t.Key, MaxTimerFieldLen); err != nil {
			return Timer{}, Errorf(Invalid, op, "timer %s: %w", t.ID, err)
		}
	}
	if t.Name != "" {
		if err := validateName("timer name", t.Name, MaxTimerFieldLen); err != nil {
			return Timer{}, Errorf(Invalid, op, "timer %s: %w", t.ID, err)
		}
	}
	if t.DueAt.IsZero() {
		return Timer{}, Errorf(Invalid, op, "timer %s has no due time", t.ID)
	}
	if y := t.DueAt.UTC().Year(); y < MinTimerYear || y > MaxTimerYear {
		return Timer{}, Errorf(Invalid, op, "timer %s is due at %s, outside the years %d-%d that every backend can store", t.ID, t.DueAt.UTC().Format(time.RFC3339), MinTimerYear, MaxTimerYear)
	}
	if len(t.Data) > MaxDataLen {
		return Timer{}, Errorf(Invalid, op, "timer %s: data is %d bytes, more than %d", t.ID, len(t.Data), MaxDataLen)
	}
	t.DueAt = Timestamp(t.DueAt)
	t.Data = cloneBytes(t.Data)
	return t, nil
}

// ValidateTimerOwner returns an Invalid error unless owner is non-empty, valid UTF-8, at most
// MaxTimerFieldLen bytes, and free of control characters. Backends call it in DueTimers.
func ValidateTimerOwner(op, owner string) error {
	if err := validateName("timer owner", owner, MaxTimerFieldLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateCheckpointName returns an Invalid error unless name is non-empty, valid UTF-8, at most
// MaxCheckpointNameLen bytes, and free of control characters. Backends call it in
// SaveCheckpoint and LoadCheckpoint.
func ValidateCheckpointName(op, name string) error {
	if err := validateName("checkpoint name", name, MaxCheckpointNameLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// SnapshotNotFound returns the NotFound error of [SnapshotStore.LoadSnapshot] for a stream
// without a snapshot.
func SnapshotNotFound(op, stream string) error {
	return Errorf(NotFound, op, "stream %q has no snapshot", stream)
}

// cloneBytes returns a copy of b that is never nil.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return slices.Clone(b)
}
