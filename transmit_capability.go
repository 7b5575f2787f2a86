package strata

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Transmitter storage: the optional capability behind package transmit. A transmitter follows
// the global log from its own checkpoint and delivers events to a broker or a webhook; every
// delivery of an event is recorded (a [Delivery]) so that nothing is lost silently: what was
// sent, what is failing and why, and what was given up on (dead letters). The checkpoint and the
// records of a batch commit together, so that a transmitter killed at any moment resumes where
// its last commit left it and re-sends (at least once) only what it had not recorded.
//
// One process at a time delivers for a name: it holds the transmitter's lease ([TransmitLease]),
// renews it before it expires, and passes it to every commit. The lease is fenced by an epoch
// that grows on every claim, so that a process whose lease was taken over (it stalled past the
// expiry, another claimed the name) cannot commit records or move the checkpoint any more.

// Limits of transmitter state, the same on every backend.
const (
	// MaxTransmitterNameLen is the longest transmitter name, in bytes of UTF-8.
	MaxTransmitterNameLen = 200
	// MaxDeliveryErrorLen is the longest LastError stored; longer ones are cut (at a rune
	// boundary) by [PrepareDeliveryCommit].
	MaxDeliveryErrorLen = 4000
	// MaxDeliveriesPerCommit is the most records one [TransmitStore.CommitDeliveries] takes.
	MaxDeliveriesPerCommit = 10000
	// DefaultDeliveryLimit is the page size of [TransmitStore.Deliveries] when none is given.
	DefaultDeliveryLimit = 1000
	// MaxTransmitOwnerLen is the longest lease owner name, in bytes of UTF-8.
	MaxTransmitOwnerLen = 200
)

// ErrTransmitLeaseLost is wrapped by the Conflict error of a commit or a renewal made with a
// lease that is no longer the transmitter's current one: another process claimed the name
// (after the lease expired) or the lease was released.
var ErrTransmitLeaseLost = errors.New("transmitter lease lost")

// ErrTransmitterHeld is wrapped by the Conflict error of a claim while another owner holds a
// live lease on the transmitter.
var ErrTransmitterHeld = errors.New("transmitter held by another owner")

// DeliveryStatus says where a delivery stands.
type DeliveryStatus string

// The delivery statuses.
const (
	// DeliveryPending: queued for (re)delivery, e.g. a dead letter put back by `dlq retry`.
	DeliveryPending DeliveryStatus = "pending"
	// DeliverySent: the destination confirmed the event.
	DeliverySent DeliveryStatus = "sent"
	// DeliveryFailed: the last attempt failed and the transmitter is still retrying.
	DeliveryFailed DeliveryStatus = "failed"
	// DeliveryDead: the destination rejected the event more often than the transmitter's retry
	// limit allows; it sits in the dead-letter queue until it is retried by hand.
	DeliveryDead DeliveryStatus = "dead"
)

// Valid reports whether s is one of the four statuses.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryPending, DeliverySent, DeliveryFailed, DeliveryDead:
		return true
	}
	return false
}

// Delivery is the record of one event's delivery by one transmitter. A transmitter keeps one
// record per event it handled, keyed by (Transmitter, EventID).
type Delivery struct {
	// EventID, Position, Stream, Version and Type identify the event; Stream and Version are
	// enough to read it again (dead letters are re-sent from the store, never from a copy).
	EventID  uuid.UUID
	Position Position
	Stream   string
	Version  int64
	Type     string
	Status   DeliveryStatus
	// Attempts counts every try to deliver the event, the successful one included.
	Attempts int
	// LastError is the error of the last failed attempt ("" when none failed).
	LastError string
	// FirstAttemptAt and LastAttemptAt are when the first and last tries were made; SentAt is
	// when the destination confirmed the event (zero unless Status is DeliverySent). All are
	// UTC with microseconds.
	FirstAttemptAt, LastAttemptAt, SentAt time.Time
}

// DeliveryCommit records deliveries of one transmitter and, optionally, moves its checkpoint,
// in one transaction.
type DeliveryCommit struct {
	Transmitter string
	// Deliveries are stored, replacing any stored record of the same event; an event may
	// appear once.
	Deliveries []Delivery
	// Checkpoint, when not nil, becomes the transmitter's checkpoint: the position in the log
	// up to which every event it selects has a record.
	Checkpoint *Position
	// Lease, when not nil, fences the commit: it is a Conflict error wrapping
	// [ErrTransmitLeaseLost], and nothing is stored, unless Lease is the transmitter's current
	// lease (same owner and epoch; its expiry does not matter as long as nobody claimed the
	// name since). Its Transmitter must be c.Transmitter. A commit without a lease is not
	// fenced: a transmitter always gives one; tools and tests may not.
	Lease *TransmitLease
}

// TransmitLease is one owner's hold on a transmitter's name, returned by
// [TransmitStore.ClaimTransmitter] and [TransmitStore.RenewTransmitLease].
type TransmitLease struct {
	Transmitter string
	// Owner names the process holding the lease; it must be unique per running instance.
	Owner string
	// Epoch grows by one on every claim of the name, by any owner: it fences commits.
	Epoch int64
	// Until is when the lease expires unless renewed (UTC, microseconds, the store's clock).
	// After it another owner may claim the name.
	Until time.Time
}

// DeliveryPrune selects old records of one transmitter for
// [TransmitStore.PruneDeliveryRecords]. At least one of SentBefore and DeadBefore is set.
type DeliveryPrune struct {
	Transmitter string
	// SentBefore, when not zero, selects the sent records whose SentAt is before it.
	SentBefore time.Time
	// DeadBefore, when not zero, selects the dead records (dead letters) whose LastAttemptAt is
	// before it. Pruning a dead letter gives up on the event for good: it stays in the log but
	// can no longer be retried with `dlq retry`.
	DeadBefore time.Time
	// DryRun counts the selected records and deletes nothing.
	DryRun bool
}

// PrunedDeliveries counts the records a prune deleted, or in a dry run would delete.
type PrunedDeliveries struct {
	Sent, Dead int64
}

// DeliveryQuery selects records of one transmitter for [TransmitStore.Deliveries].
type DeliveryQuery struct {
	// Transmitter is required.
	Transmitter string
	// Status keeps records with this status; "" keeps all.
	Status DeliveryStatus
	// After is a cursor: records of events strictly after it in the log are returned.
	After Position
	// Limit caps the page; 0 or less means DefaultDeliveryLimit.
	Limit int
}

// TransmitterState is a transmitter's checkpoint, the counts of its records by status and its
// lease.
type TransmitterState struct {
	Name       string
	Checkpoint Position
	// UpdatedAt is when the transmitter last committed (UTC, microseconds; zero when it only
	// claimed its lease so far).
	UpdatedAt                   time.Time
	Pending, Sent, Failed, Dead int64
	// Owner, Epoch and LeaseUntil describe the lease. Owner is empty when nobody holds it
	// (never claimed, or released by a clean stop); a lease whose LeaseUntil has passed has
	// expired (its holder stalled or died) and the next claim takes it over.
	Owner      string
	Epoch      int64
	LeaseUntil time.Time
}

// TransmitStore keeps transmitters' checkpoints and delivery records.
type TransmitStore interface {
	// CommitDeliveries stores c's records and, when c.Checkpoint is set, the transmitter's
	// checkpoint, all in one transaction. The transmitter's state row is created on its first
	// commit (at Start when no checkpoint is given). Bad input (see [PrepareDeliveryCommit]) is
	// an Invalid error and nothing is written. With c.Lease the commit is fenced (see
	// [DeliveryCommit.Lease]): a lost lease is a Conflict error and nothing is written.
	CommitDeliveries(ctx context.Context, c DeliveryCommit) error
	// TransmitCheckpoint returns the transmitter's checkpoint, or Start when it has none.
	TransmitCheckpoint(ctx context.Context, transmitter string) (Position, error)
	// Deliveries returns up to q.Limit records in log order (by Position).
	Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error)
	// RequeueDeliveries sets the records of the given events that are dead back to pending, so
	// that the running transmitter re-sends them; others are left alone. It returns how many
	// changed. At most MaxDeliveriesPerCommit IDs are taken at once.
	RequeueDeliveries(ctx context.Context, transmitter string, ids []uuid.UUID) (int64, error)
	// TransmitterStates returns every transmitter that has committed or claimed its lease, in
	// name order (bytes). It reads one snapshot: a state's checkpoint, counts and lease are
	// those of the same commits, so that a batch's records never show without the checkpoint
	// committed with them.
	TransmitterStates(ctx context.Context) ([]TransmitterState, error)
	// PruneDeliveryRecords deletes (or, with p.DryRun, counts) the transmitter's sent records
	// older than p.SentBefore and dead records older than p.DeadBefore, in one transaction.
	// Failed and pending records are never pruned. Bad input (see [PrepareDeliveryPrune]) is an
	// Invalid error.
	PruneDeliveryRecords(ctx context.Context, p DeliveryPrune) (PrunedDeliveries, error)

	// ClaimTransmitter gives owner the transmitter's lease for ttl when nobody holds it, the
	// lease has expired, or owner holds it already; the epoch is raised in every case, so that
	// commits with an earlier lease are refused from now on. When another owner holds a live
	// lease it is a Conflict error wrapping [ErrTransmitterHeld], and the returned lease is the
	// holder's (so that a standby knows when to try again).
	ClaimTransmitter(ctx context.Context, transmitter, owner string, ttl time.Duration) (TransmitLease, error)
	// RenewTransmitLease extends a lease to ttl from now and returns it. It is a Conflict error
	// wrapping [ErrTransmitLeaseLost] when the lease is no longer the current one. An expired
	// lease that nobody claimed since is renewed.
	RenewTransmitLease(ctx context.Context, l TransmitLease, ttl time.Duration) (TransmitLease, error)
	// ReleaseTransmitLease ends a lease that is still the current one, so that a standby can
	// claim the name at once; the epoch is kept. A lost lease is not an error.
	ReleaseTransmitLease(ctx context.Context, l TransmitLease) error
}

// ValidateTransmitterName returns an Invalid error unless name is 1 to MaxTransmitterNameLen
// bytes of UTF-8 without control characters.
func ValidateTransmitterName(op, name string) error {
	if err := validateName("transmitter name", name, MaxTransmitterNameLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// PrepareDeliveryCommit validates c for [TransmitStore.CommitDeliveries] and returns a copy
// ready to store: times as [Timestamp] (SentAt zeroed unless the status is sent), LastError cut
// to MaxDeliveryErrorLen bytes. The transmitter name must be valid, every record must have an
// event ID (each at most once), a valid status, a valid stream name and type, a positive
// version, a non-zero position and a non-negative attempt count; at most MaxDeliveriesPerCommit
// records. Every error is Invalid. Backends call it first.
func PrepareDeliveryCommit(op string, c DeliveryCommit) (DeliveryCommit, error) {
	if err := ValidateTransmitterName(op, c.Transmitter); err != nil {
		return DeliveryCommit{}, err
	}
	if len(c.Deliveries) > MaxDeliveriesPerCommit {
		return DeliveryCommit{}, Errorf(Invalid, op, "%d delivery records, more than %d in one commit", len(c.Deliveries), MaxDeliveriesPerCommit)
	}
	out := DeliveryCommit{Transmitter: c.Transmitter, Deliveries: make([]Delivery, len(c.Deliveries))}
	if c.Checkpoint != nil {
		p := *c.Checkpoint
		out.Checkpoint = &p
	}
	if c.Lease != nil {
		if err := ValidateTransmitLease(op, *c.Lease); err != nil {
			return DeliveryCommit{}, err
		}
		if c.Lease.Transmitter != c.Transmitter {
			return DeliveryCommit{}, Errorf(Invalid, op, "the lease of transmitter %q fences a commit of transmitter %q", c.Lease.Transmitter, c.Transmitter)
		}
		l := *c.Lease
		out.Lease = &l
	}
	seen := make(map[uuid.UUID]struct{}, len(c.Deliveries))
	for i, d := range c.Deliveries {
		if err := validateDelivery(d); err != nil {
			return DeliveryCommit{}, Errorf(Invalid, op, "transmitter %q, record %d: %w", c.Transmitter, i, err)
		}
		if _, dup := seen[d.EventID]; dup {
			return DeliveryCommit{}, Errorf(Invalid, op, "transmitter %q: event %s has two records in one commit", c.Transmitter, d.EventID)
		}
		seen[d.EventID] = struct{}{}
		d.FirstAttemptAt, d.LastAttemptAt = Timestamp(d.FirstAttemptAt), Timestamp(d.LastAttemptAt)
		if d.Status == DeliverySent {
			d.SentAt = Timestamp(d.SentAt)
		} else {
			d.SentAt = time.Time{}
		}
		d.LastError = cutUTF8(d.LastError, MaxDeliveryErrorLen)
		out.Deliveries[i] = d
	}
	return out, nil
}

func validateDelivery(d Delivery) error {
	switch {
	case d.EventID == uuid.Nil:
		return fmt.Errorf("no event ID")
	case !d.Status.Valid():
		return fmt.Errorf("event %s: status %q is not pending, sent, failed or dead", d.EventID, d.Status)
	case d.Version <= 0:
		return fmt.Errorf("event %s: version %d is not positive", d.EventID, d.Version)
	case d.Position.IsZero():
		return fmt.Errorf("event %s: no position", d.EventID)
	case d.Attempts < 0:
		return fmt.Errorf("event %s: negative attempts", d.EventID)
	case d.Position.Commit > 1<<63-1 || d.Position.Event > 1<<63-1:
		return fmt.Errorf("event %s: position %s does not fit the store", d.EventID, d.Position)
	}
	if err := validateName("stream name", d.Stream, MaxStreamNameLen); err != nil {
		return fmt.Errorf("event %s: %w", d.EventID, err)
	}
	if err := validateName("event type", d.Type, MaxTypeLen); err != nil {
		return fmt.Errorf("event %s: %w", d.EventID, err)
	}
	return nil
}

// ValidateTransmitOwner returns an Invalid error unless owner is 1 to MaxTransmitOwnerLen
// bytes of UTF-8 without control characters.
func ValidateTransmitOwner(op, owner string) error {
	if err := validateName("lease owner", owner, MaxTransmitOwnerLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateTransmitLease returns an Invalid error unless l names a valid transmitter and owner
// and has a positive epoch (every claimed lease has).
func ValidateTransmitLease(op string, l TransmitLease) error {
	if err := ValidateTransmitterName(op, l.Transmitter); err != nil {
		return err
	}
	if err := ValidateTransmitOwner(op, l.Owner); err != nil {
		return err
	}
	if l.Epoch <= 0 {
		return Errorf(Invalid, op, "transmitter %q: lease epoch %d is not positive (not a claimed lease)", l.Transmitter, l.Epoch)
	}
	return nil
}

// ValidateTransmitClaim checks the arguments of [TransmitStore.ClaimTransmitter]: a valid name
// and owner, and a ttl between a millisecond and a day.
func ValidateTransmitClaim(op, transmitter, owner string, ttl time.Duration) error {
	if err := ValidateTransmitterName(op, transmitter); err != nil {
		return err
	}
	if err := ValidateTransmitOwner(op, owner); err != nil {
		return err
	}
	return ValidateLeaseTTL(op, ttl)
}

// TransmitLeaseLost returns the Conflict error of a commit or renewal with a lost lease.
func TransmitLeaseLost(op string, l TransmitLease) error {
	return Errorf(Conflict, op, "transmitter %q: the lease of %q (epoch %d) was taken over or released: %w", l.Transmitter, l.Owner, l.Epoch, ErrTransmitLeaseLost)
}

// TransmitterHeld returns the Conflict error of a claim refused because holder holds a live
// lease.
func TransmitterHeld(op string, holder TransmitLease) error {
	return Errorf(Conflict, op, "transmitter %q is held by %q until %s: %w", holder.Transmitter, holder.Owner, holder.Until.Format(time.RFC3339Nano), ErrTransmitterHeld)
}

// PrepareDeliveryPrune validates p for [TransmitStore.PruneDeliveryRecords] and returns it with
// its times as [Timestamp]. The transmitter name must be valid and at least one cutoff set.
func PrepareDeliveryPrune(op string, p DeliveryPrune) (DeliveryPrune, error) {
	if err := ValidateTransmitterName(op, p.Transmitter); err != nil {
		return DeliveryPrune{}, err
	}
	if p.SentBefore.IsZero() && p.DeadBefore.IsZero() {
		return DeliveryPrune{}, Errorf(Invalid, op, "transmitter %q: no cutoff (set SentBefore, DeadBefore or both)", p.Transmitter)
	}
	if !p.SentBefore.IsZero() {
		p.SentBefore = Timestamp(p.SentBefore)
	}
	if !p.DeadBefore.IsZero() {
		p.DeadBefore = Timestamp(p.DeadBefore)
	}
	return p, nil
}

// PrepareRequeue validates the arguments of [TransmitStore.RequeueDeliveries].
func PrepareRequeue(op, transmitter string, ids []uuid.UUID) error {
	if err := ValidateTransmitterName(op, transmitter); err != nil {
		return err
	}
	if len(ids) > MaxDeliveriesPerCommit {
		return Errorf(Invalid, op, "%d event IDs, more than %d at once", len(ids), MaxDeliveriesPerCommit)
	}
	return nil
}

// PrepareDeliveryQuery validates q and returns it with its Limit set.
func PrepareDeliveryQuery(op string, q DeliveryQuery) (DeliveryQuery, error) {
	if err := ValidateTransmitterName(op, q.Transmitter); err != nil {
		return DeliveryQuery{}, err
	}
	if q.Status != "" && !q.Status.Valid() {
		return DeliveryQuery{}, Errorf(Invalid, op, "status %q is not pending, sent, failed or dead", q.Status)
	}
	if q.Limit <= 0 {
		q.Limit = DefaultDeliveryLimit
	}
	if q.After.Commit > 1<<63-1 || q.After.Event > 1<<63-1 {
		return DeliveryQuery{}, Errorf(Invalid, op, "cursor %s does not fit the store", q.After)
	}
	return q, nil
}

// cutUTF8 returns s cut to at most n bytes, at a rune boundary, with invalid UTF-8 replaced.
func cutUTF8(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // replaces invalid bytes with U+FFFD
	}
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
