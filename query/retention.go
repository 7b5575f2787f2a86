package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// DefaultMaxAge is the default retention: payloads of events older than 90 days are removed.
const DefaultMaxAge = 90 * 24 * time.Hour

// DefaultAuditStream is where retention records its runs. Its events hold no personal data
// (counts, cutoffs, positions) and retention never removes them.
const DefaultAuditStream = "strata-retention"

// DefaultBatch is how many events one retention transaction removes.
const DefaultBatch = 2000

// Policy says how long events are kept. A policy applies to the events of Tenant ("" for every
// tenant) and, when Types is set, of those types only. Each event falls under its most specific
// policy: tenant and type, then tenant, then type, then the catch-all.
type Policy struct {
	Name   string   `json:"name"`
	Tenant string   `json:"tenant,omitempty"`
	Types  []string `json:"types,omitempty"`
	// MaxAge is how long after RecordedAt the payload is kept; 0 means DefaultMaxAge.
	MaxAge time.Duration `json:"maxAge"`
	// Keep keeps these events for ever (MaxAge is ignored).
	Keep bool `json:"keep,omitempty"`
}

func (p Policy) specificity() int {
	n := 0
	if p.Tenant != "" {
		n += 2
	}
	if len(p.Types) > 0 {
		n++
	}
	return n
}

func (p Policy) matches(e *strata.Event) bool {
	return (p.Tenant == "" || p.Tenant == e.Meta.Tenant) && (len(p.Types) == 0 || slices.Contains(p.Types, e.Type))
}

func (p Policy) age() time.Duration {
	if p.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return p.MaxAge
}

// Purger removes other records past their retention, such as delivered transmission records
// and expired dead letters; retention runs each after the events.
type Purger interface {
	// Name names what it purges in the report.
	Name() string
	// Purge removes (or, with dryRun, counts) what is older than before.
	Purge(ctx context.Context, before time.Time, dryRun bool) (int64, error)
}

// Retention is a retention job's configuration.
type Retention struct {
	// Policies; none means one catch-all policy of DefaultMaxAge.
	Policies []Policy
	// Schedule is when Start runs; "" means DefaultSchedule (daily).
	Schedule string
	// Batch is the events per transaction, 1 to strata.MaxTombstoneBatch; 0 means DefaultBatch.
	Batch int
	// AuditStream receives RetentionStarted and RetentionCompleted; "" means DefaultAuditStream.
	AuditStream string
	// Principal is recorded on the audit events (who runs retention).
	Principal string
	// AllowUnsealed lets retention remove events that the ledger has not sealed. Without it,
	// only sealed events are removed, so that every removed event's leaf hash is in the tree.
	AllowUnsealed bool
	// Purgers run after the events, with the cutoff of the catch-all policy (DefaultMaxAge
	// when there is none); a catch-all that keeps runs none.
	Purgers []Purger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger reports scheduled runs; nil means slog.Default().
	Logger *slog.Logger
}

// PolicyReport is what one policy removed (or, in a plan, would remove).
type PolicyReport struct {
	Policy  string    `json:"policy"`
	Cutoff  time.Time `json:"cutoff,omitzero"`
	Keep    bool      `json:"keep,omitempty"`
	Events  int64     `json:"events"`
	Oldest  time.Time `json:"oldest,omitzero"`
	Newest  time.Time `json:"newest,omitzero"`
	Streams int       `json:"streams"`
}

// Report is the outcome of a retention run or plan.
type Report struct {
	Run      uuid.UUID      `json:"run"`
	DryRun   bool           `json:"dryRun"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Removed  int64          `json:"removed"`
	Policies []PolicyReport `json:"policies"`
	// Held is how many streams are under legal hold (never touched).
	Held int `json:"held"`
	// SealedUpTo is the last position retention may touch (the ledger's head), when it applies.
	SealedUpTo string `json:"sealedUpTo,omitempty"`
	// Purged counts what each purger removed.
	Purged map[string]int64 `json:"purged,omitempty"`
	// First and Last are the least and greatest positions of the events removed (a pass may
	// go in recording-time order).
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`
}

type runState struct {
	r        *Retention
	store    strata.Store
	rs       strata.RetentionStore
	policies []Policy
	now      time.Time
	rep      *Report
	byPolicy map[string]*PolicyReport
	streams  map[string]map[string]bool
	// first and last are the least and greatest positions removed.
	first, last strata.Position
}

func (r *Retention) policies() ([]Policy, error) {
	ps := r.Policies
	if len(ps) == 0 {
		ps = []Policy{{Name: "default"}}
	}
	seen := map[string]bool{}
	out := make([]Policy, len(ps))
	for i, p := range ps {
		if p.Name == "" {
			p.Name = fmt.Sprintf("policy-%d", i+1)
		}
		if seen[p.Name] {
			return nil, strata.Errorf(strata.Invalid, "retention", "two policies named %q", p.Name)
		}
		seen[p.Name] = true
		if p.MaxAge < 0 {
			return nil, strata.Errorf(strata.Invalid, "retention", "policy %q: negative age", p.Name)
		}
		out[i] = p
	}
	// Most specific first, so that the first match governs an event.
	slices.SortStableFunc(out, func(a, b Policy) int { return b.specificity() - a.specificity() })
	return out, nil
}

// governing returns the policy an event falls under, or false when none does.
func governing(ps []Policy, e *strata.Event) (Policy, bool) {
	for _, p := range ps {
		if p.matches(e) {
			return p, true
		}
	}
	return Policy{}, false
}

// Plan reports what Run would remove now, removing nothing (a dry run).
func (r *Retention) Plan(ctx context.Context, store strata.Store) (*Report, error) {
	return r.run(ctx, store, true)
}

// Run removes the payloads of the events past their policy's age, in batches of r.Batch, each
// its own short transaction, and records the run in the audit stream: RetentionStarted before
// the first removal and RetentionCompleted after the last. Streams under legal hold, the audit
// stream and (unless AllowUnsealed) events the ledger has not sealed are never touched.
func (r *Retention) Run(ctx context.Context, store strata.Store) (*Report, error) {
	return r.run(ctx, store, false)
}

// Audit event types of retention.
const (
	TypeRetentionStarted   = strata.RetentionStartedType
	TypeRetentionCompleted = "RetentionCompleted"
)

func (r *Retention) run(ctx context.Context, store strata.Store, dry bool) (*Report, error) {
	const op = "retention"
	rs, ok := store.(strata.RetentionStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "the store (%T) has no retention (strata.RetentionStore)", store)
	}
	ps, err := r.policies()
	if err != nil {
		return nil, err
	}
	batch := r.Batch
	if batch == 0 {
		batch = DefaultBatch
	}
	if batch < 1 || batch > strata.MaxTombstoneBatch {
		return nil, strata.Errorf(strata.Invalid, op, "batch %d outside 1-%d", batch, strata.MaxTombstoneBatch)
	}
	audit := r.AuditStream
	if audit == "" {
		audit = DefaultAuditStream
	}
	if err := strata.ValidateStreamName(op, audit); err != nil {
		return nil, err
	}
	clock := r.Now
	if clock == nil {
		clock = time.Now
	}
	now := strata.Timestamp(clock())
	st := &runState{r: r, store: store, rs: rs, policies: ps, now: now,
		rep:      &Report{Run: uuid.Must(uuid.NewV7()), DryRun: dry, Started: now, Purged: map[string]int64{}},
		byPolicy: map[string]*PolicyReport{}, streams: map[string]map[string]bool{}}
	for _, p := range ps {
		pr := &PolicyReport{Policy: p.Name, Keep: p.Keep}
		if !p.Keep {
			pr.Cutoff = now.Add(-p.age())
		}
		st.byPolicy[p.Name] = pr
	}
	for _, err := range rs.LegalHolds(ctx) {
		if err != nil {
			return nil, err
		}
		st.rep.Held++
	}
	started, err := st.removeEvents(ctx, audit, batch, dry)
	if err != nil {
		return st.rep, err
	}
	// The catch-all that governs the events (the first: ps is sorted stably) sets the
	// purgers' cutoff; one that keeps for ever keeps the other records too.
	purgeBefore, keepAll := now.Add(-DefaultMaxAge), false
	for _, p := range ps {
		if p.specificity() == 0 {
			purgeBefore, keepAll = now.Add(-p.age()), p.Keep
			break
		}
	}
	for _, pg := range r.Purgers {
		if keepAll {
			st.rep.Purged[pg.Name()] = 0
			continue
		}
		n, err := pg.Purge(ctx, purgeBefore, dry)
		if err != nil {
			return st.rep, fmt.Errorf("retention: purge %s: %w", pg.Name(), err)
		}
		st.rep.Purged[pg.Name()] = n
	}
	if started {
		return st.finish(ctx, audit, dry)
	}
	st.rep.Finished = strata.Timestamp(clock())
	return st.finishReport(), nil
}

func (st *runState) count(e *strata.Event) {
	p, _ := governing(st.policies, e)
	pr := st.byPolicy[p.Name]
	pr.Events++
	st.rep.Removed++
	if pr.Oldest.IsZero() || e.RecordedAt.Before(pr.Oldest) {
		pr.Oldest = e.RecordedAt
	}
	if e.RecordedAt.After(pr.Newest) {
		pr.Newest = e.RecordedAt
	}
	if st.streams[p.Name] == nil {
		st.streams[p.Name] = map[string]bool{}
	}
	st.streams[p.Name][e.Stream] = true
	// A pass may go in recording-time order: First and Last are the least and greatest.
	if st.first.IsZero() || e.Position.Less(st.first) {
		st.first = e.Position
		st.rep.First = e.Position.String()
	}
	if st.last.Less(e.Position) {
		st.last = e.Position
		st.rep.Last = e.Position.String()
	}
}

func (st *runState) finishReport() *Report {
	st.rep.Policies = st.rep.Policies[:0]
	for _, p := range st.policies {
		pr := st.byPolicy[p.Name]
		pr.Streams = len(st.streams[p.Name])
		st.rep.Policies = append(st.rep.Policies, *pr)
	}
	return st.rep
}

func (st *runState) finish(ctx context.Context, audit string, dry bool) (*Report, error) {
	st.rep.Finished = strata.Timestamp(time.Now())
	if st.r.Now != nil {
		st.rep.Finished = strata.Timestamp(st.r.Now())
	}
	rep := st.finishReport()
	if dry {
		return rep, nil
	}
	// Started was recorded: the run is completed even if a hold placed since left it nothing.
	return rep, st.record(ctx, audit, TypeRetentionCompleted)
}

// record appends an audit event of the run: counts, cutoffs and positions, no personal data.
func (st *runState) record(ctx context.Context, stream, typ string) error {
	body := struct {
		Run      uuid.UUID      `json:"run"`
		Policies []PolicyReport `json:"policies,omitempty"`
		Removed  int64          `json:"removed"`
		First    string         `json:"first,omitempty"`
		Last     string         `json:"last,omitempty"`
		Held     int            `json:"held"`
	}{Run: st.rep.Run, Removed: st.rep.Removed, First: st.rep.First, Last: st.rep.Last, Held: st.rep.Held}
	id := st.rep.Run
	if typ == TypeRetentionCompleted {
		body.Policies = st.rep.Policies
		id = uuid.NewSHA1(st.rep.Run, []byte(typ))
	} else {
		for _, p := range st.policies {
			body.Policies = append(body.Policies, *st.byPolicy[p.Name])
		}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return strata.Errorf(strata.Internal, "retention", "encode audit event: %w", err)
	}
	_, err = st.store.Append(ctx, stream, strata.Any, strata.EventData{ID: id, Type: typ, Data: data,
		Meta: strata.Metadata{Principal: st.r.Principal, Subsystem: "retention", Category: "audit", Correlation: st.rep.Run.String()}})
	return err
}

// Start runs retention on its schedule until ctx is done, logging each run; it returns ctx's
// error, or an Invalid error for a bad schedule.
func (r *Retention) Start(ctx context.Context, store strata.Store) error {
	expr := r.Schedule
	if expr == "" {
		expr = DefaultSchedule
	}
	sched, err := ParseSchedule(expr)
	if err != nil {
		return err
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	clock := r.Now
	if clock == nil {
		clock = time.Now
	}
	for {
		next := sched.Next(clock())
		if next.IsZero() {
			return strata.Errorf(strata.Invalid, "retention", "schedule %q never fires", expr)
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		rep, err := r.Run(ctx, store)
		if err != nil {
			if errors.Is(err, ctx.Err()) {
				return ctx.Err()
			}
			log.ErrorContext(ctx, "strata: retention run failed", "error", err)
			continue
		}
		log.InfoContext(ctx, "strata: retention run", "run", rep.Run, "removed", rep.Removed, "held", rep.Held)
	}
}

// removeEvents removes (or, dry, counts) the events past their policy's age; started reports
// whether RetentionStarted was recorded.
func (st *runState) removeEvents(ctx context.Context, audit string, batch int, dry bool) (started bool, err error) {
	ps, now, rs, store, r := st.policies, st.now, st.rs, st.store, st.r
	// The audit stream is left out by name below, not with sel.ExcludePrefix: that would also
	// keep every stream whose name starts with the audit stream's, for ever.
	sel := strata.RetentionSelect{Limit: batch}
	// The loosest cutoff selects every candidate; each is then checked against its own policy.
	var cutoff time.Time
	tenants := map[string]bool{}
	for _, p := range ps {
		if p.Keep {
			continue
		}
		if c := now.Add(-p.age()); c.After(cutoff) {
			cutoff = c
		}
	}
	for _, p := range ps {
		tenants[p.Tenant] = true
	}
	if cutoff.IsZero() {
		return false, nil // every policy keeps
	}
	sel.RecordedBefore = cutoff
	if !r.AllowUnsealed {
		if ls, ok := store.(strata.LedgerStore); ok {
			h, err := ls.LedgerHead(ctx)
			if err != nil {
				return false, err
			}
			if h.Size == 0 {
				st.rep.SealedUpTo = "none"
				return false, nil
			}
			sel.UpTo = h.Last
			st.rep.SealedUpTo = h.Last.String()
		}
	}
	// One pass per tenant when every policy names a tenant; else one pass over every tenant.
	var scopes []strata.RetentionSelect
	if tenants[""] {
		s := sel
		s.AnyTenant = true
		scopes = append(scopes, s)
	} else {
		for t := range tenants {
			s := sel
			s.Tenant = t
			scopes = append(scopes, s)
		}
		slices.SortFunc(scopes, func(a, b strata.RetentionSelect) int { return strings.Compare(a.Tenant, b.Tenant) })
	}
	// prepare picks a page's events that are due and, unless dry, hashes their leaves for the
	// tombstones: in prefetch's goroutine, so that it overlaps the removal of the page before.
	run := st.rep.Run
	prepare := func(page strata.RetentionPage) (due []*strata.Event, ts []strata.Tombstone) {
		evs := page.Events
		for i := range evs {
			e := &evs[i]
			// The audit stream, and an event that holds nothing to remove (a null payload, its
			// tenant alone for metadata), which PostgreSQL's and SQLite's index of live events
			// never returns either.
			if e.Stream == audit || string(e.Data) == string(strata.TombstoneData) && e.Meta.Equal(strata.TombstoneMeta(e.Meta)) {
				continue
			}
			p, ok := governing(ps, e)
			if !ok || p.Keep || !e.RecordedAt.Before(now.Add(-p.age())) {
				continue
			}
			due = append(due, e)
			if !dry {
				h := ledger.LeafHash(ledger.EncodeLeaf(nil, e))
				ts = append(ts, strata.Tombstone{EventID: e.ID, LeafHash: h[:], Run: run})
			}
		}
		return due, ts
	}
	// A page read ahead is abandoned when the pass stops on an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, sc := range scopes {
		// The next page is read (and prepared) while the current one is removed: it starts
		// after the current page's last candidate, so the two never share a row, and a pass
		// takes the longer of reading and writing rather than their sum.
		next := prefetch(ctx, rs, sc, prepare)
		for next != nil {
			r := <-next
			if r.err != nil {
				return started, r.err
			}
			next = nil
			if r.page.Next != "" {
				sc.Cursor = r.page.Next
				next = prefetch(ctx, rs, sc, prepare)
			}
			if len(r.due) > 0 && !dry && !started {
				if err := st.record(ctx, audit, TypeRetentionStarted); err != nil {
					return started, err
				}
				started = true
			}
			if !dry && len(r.ts) > 0 {
				n, err := rs.TombstoneEvents(ctx, r.ts)
				if err != nil {
					return started, err
				}
				if n < len(r.ts) {
					// Some were left alone (a hold placed since the page was read, or another
					// run): count only the events this run's tombstones removed.
					due := r.due[:0]
					for _, e := range r.due {
						tomb, err := rs.Tombstone(ctx, e.ID)
						if err == nil && tomb.Run == run {
							due = append(due, e)
						} else if err != nil && !errors.Is(err, strata.ErrNotFound) {
							return started, err
						}
					}
					r.due = due
				}
			}
			for _, e := range r.due {
				st.count(e)
			}
		}
	}
	return started, nil
}

// candidates is a page of retention candidates read ahead: the page, its events that are due
// and, unless the run is dry, their tombstones.
type candidates struct {
	page strata.RetentionPage
	due  []*strata.Event
	ts   []strata.Tombstone
	err  error
}

// prefetch reads a page of candidates in the background, and prepares it. The channel is
// buffered, so the goroutine ends when the read does even if nobody receives (a run that
// stopped on an error, which also cancels ctx: a page read then is not prepared).
func prefetch(ctx context.Context, rs strata.RetentionStore, sel strata.RetentionSelect, prepare func(strata.RetentionPage) ([]*strata.Event, []strata.Tombstone)) <-chan candidates {
	ch := make(chan candidates, 1)
	go func() {
		p, err := rs.RetentionCandidates(ctx, sel)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			ch <- candidates{err: err}
			return
		}
		due, ts := prepare(p)
		ch <- candidates{page: p, due: due, ts: ts}
	}()
	return ch
}
