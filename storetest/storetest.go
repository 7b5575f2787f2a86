// Package storetest is the conformance suite that every strata.Store backend runs: one call to
// [Run] checks optimistic concurrency, idempotent appends, stream and global ordering, the
// gap-free guarantee under out-of-order commits, subscriptions, limits and bad input, and the
// optional snapshot, timer and checkpoint interfaces.
//
// Each subtest gets a fresh store from the constructor and runs in parallel with the others:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) strata.Store { return inmem.New() }, storetest.Features{SerialWriters: true})
//	}
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// Features declares what a backend does differently, so that the suite checks the right thing.
type Features struct {
	// SerialWriters is set when the backend commits one writer at a time (SQLite, in-memory): a
	// second writer waits until the first has committed, so the out-of-order scenario becomes
	// "the second writer waits".
	SerialWriters bool
	// Reopen, when set, opens a second Store on the same database as s, as a restarted process
	// would. Leave it nil for a backend that keeps nothing (in-memory).
	Reopen func(t testing.TB, s strata.Store) strata.Store
	// Capabilities is set when the backend must implement every optional interface of
	// capabilities.go (strata.SnapshotStore, strata.TimerStore, strata.CheckpointStore), as
	// every backend of this module does: a store that lacks one then fails its section instead
	// of skipping it. It also makes the sections of keys_capability.go (strata.KeyStore,
	// strata.SchemaStore) and of transmit_capability.go (strata.TransmitStore) required.
	Capabilities bool
	// RawContains, when set, reports whether needle occurs anywhere in what the backend keeps
	// for s: in every column of every row of every table of its database (text columns as the
	// bytes of their text, binary columns as their bytes) and, for a backend that keeps files,
	// in the bytes of those files. It looks below the Store's API, so that a test can prove that
	// erased or protected bytes (an erased subject key, the clear text of an encrypted field)
	// never reached, or no longer remain in, the database. Leave it nil for a backend that
	// cannot be scanned (in-memory); the tests that need it then skip.
	RawContains func(t testing.TB, s strata.Store, needle []byte) bool
}

// NewStore makes a fresh, empty store for one subtest and registers its cleanup with t.
type NewStore func(t testing.TB) strata.Store

// Run runs the whole suite against stores made by newStore. Most subtests run in parallel; the
// memory check runs alone afterwards, because heap figures are process-wide. The sections for
// the optional interfaces ([RunSnapshots], [RunTimers], [RunCheckpoints], [RunKeys]) run for a
// store that implements them.
func Run(t *testing.T, newStore NewStore, f Features) {
	s := suite{newStore: newStore, f: f}
	t.Run("Parallel", func(t *testing.T) { s.runParallel(t) })
	t.Run("ReadAndFollowWithFlatMemory", s.testFlatMemory)
}

func (s suite) runParallel(t *testing.T) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"AppendAndReadBack", s.testAppendAndReadBack},
		{"ExpectedVersion", s.testExpectedVersion},
		{"ConcurrentExactAppendersOneWinnerPerVersion", s.testConcurrentExact},
		{"ConcurrentExactAppendersRaceOneWinner", s.testConcurrentExactRaces},
		{"ConcurrentAnyAppendersContiguous", s.testConcurrentAny},
		{"ConcurrentAnyAppendersRaceAndRetry", s.testConcurrentAnyRaces},
		{"ConcurrentAppendsGetTheirOwnOutcomes", s.testConcurrentAppendsOwnOutcomes},
		{"IdempotentRetry", s.testIdempotentRetry},
		{"IdempotentRetryMustMatch", s.testIdempotentRetryMatches},
		{"AppendMultiAtomic", s.testAppendMulti},
		{"PartlyStoredMultiAppend", s.testPartlyStoredMultiAppend},
		{"ConcurrentMultiAppendConflicts", s.testConcurrentMultiConflicts},
		{"ReadStreamOrderAndPaging", s.testReadStream},
		{"ReadAllOrderCursorAndFilters", s.testReadAll},
		{"ReadAllAfterCursorsBetweenEvents", s.testCursorsBetweenEvents},
		{"OutOfOrderCommitNeverSkipped", s.testOutOfOrderCommit},
		{"OutOfOrderCommitNeverSkippedFiltered", s.testOutOfOrderCommitFiltered},
		{"ConcurrentWritersSubscriberSeesEverything", s.testConcurrentWritersSubscriber},
		{"SubscribeCatchUpThenLive", s.testSubscribe},
		{"SubscribeResumeAfterRestart", s.testResumeAfterRestart},
		{"LargePayload", s.testLargePayload},
		{"LargePayloadsPastAPage", s.testLargePages},
		{"NoSharedMemory", s.testNoSharedMemory},
		{"EveryReadReturnsWhatWasAppended", s.testReadsAgree},
		{"UnicodeStreamNames", s.testUnicode},
		{"TenantsAndNamesAreExact", s.testTenantsAndNamesAreExact},
		{"StreamInfoAndListing", s.testStreams},
		{"StreamsListedAcrossPages", s.testStreamsPaging},
		{"ContextCancellation", s.testCancellation},
		{"UseAfterClose", s.testUseAfterClose},
		{"CloseEndsReadsUnderWay", s.testCloseEndsReads},
		{"BadInputRejected", s.testBadInput},
		{"Snapshots", s.runSnapshots},
		{"Timers", s.runTimers},
		{"Checkpoints", s.runCheckpoints},
		{"Keys", s.runKeys},
		{"Ledger", s.runLedger},
		{"Projections", s.runProjections},
		{"Transmit", s.runTransmit},
		{"APIKeys", s.runAPIKeys},
		{"Query", s.runQuery},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t)
		})
	}
}

type suite struct {
	newStore NewStore
	f        Features
}

// testContext bounds a subtest so that a hang fails instead of blocking the run. It is a
// safety net, not an assertion about speed.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Collect ranges over seq and returns what it yielded, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func mustCollect[T any](t testing.TB, seq iter.Seq2[T, error]) []T {
	t.Helper()
	out, err := Collect(seq)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func ev(typ string, data any) strata.EventData {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err) // test data only
	}
	return strata.EventData{Type: typ, Data: b}
}

func mustAppend(t testing.TB, ctx context.Context, s strata.Store, stream string, exp strata.ExpectedVersion, evs ...strata.EventData) strata.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, exp, evs...)
	if err != nil {
		t.Fatalf("append to %q: %v", stream, err)
	}
	return res
}

func wantCode(t testing.TB, err error, code strata.Code, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, code)
	}
	if got := strata.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q, want %q (%v)", what, got, code, err)
	}
}

func allEvents(t testing.TB, ctx context.Context, s strata.Store) []strata.Event {
	t.Helper()
	return mustCollect(t, s.ReadAll(ctx, strata.ReadAllOptions{}))
}

func checkAscending(t testing.TB, evs []strata.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Position.Less(evs[i].Position) {
			t.Fatalf("global log out of order at %d: %s then %s", i, evs[i-1].Position, evs[i].Position)
		}
	}
}

func certStream(i int) string { return fmt.Sprintf("certificate-%04X", i) }
