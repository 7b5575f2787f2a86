package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

// The temporal and audit reads of package query: a stream's state at a time (bitemporal),
// its history with the JSON diff of each event, an entity's history across streams, and the
// tenant-scoped search. States and diffs are those of query.JSONModel, the model `strata
// state` and `strata history` use for any stream: the events' JSON objects merged in order.

// MaxEntityPrefixes bounds the prefix parameters of an entity history.
const MaxEntityPrefixes = 16

// StateResponse is a stream's state at a time, the same as `strata state` prints.
type StateResponse struct {
	Stream string `json:"stream"`
	// At is the time asked about: the transaction time, or with KnownAt the valid time.
	At string `json:"at"`
	// KnownAt, when set, is the transaction time: the state at At as known at KnownAt.
	KnownAt string `json:"knownAt,omitempty"`
	// Version is the last version of the stream known at the transaction time (0: none).
	Version        int64  `json:"version"`
	LastRecordedAt string `json:"lastRecordedAt,omitempty"`
	// FromSnapshot is the version of the temporal snapshot the fold started from (0: none);
	// Folded counts the events folded after it.
	FromSnapshot int64 `json:"fromSnapshot,omitempty"`
	Folded       int   `json:"folded"`
	// Skipped counts the events known at KnownAt that occurred after At.
	Skipped int             `json:"skippedLaterOccurring,omitempty"`
	State   json.RawMessage `json:"state"`
}

// HistoryEntry is one event of a history: who, when (both times), why, and the change it made
// to its stream's state.
type HistoryEntry struct {
	ID          string         `json:"id"`
	Stream      string         `json:"stream"`
	Version     int64          `json:"version"`
	Position    string         `json:"position"`
	Type        string         `json:"type"`
	RecordedAt  string         `json:"recordedAt"`
	OccurredAt  string         `json:"occurredAt"`
	Principal   string         `json:"principal,omitempty"`
	Session     string         `json:"session,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	Correlation string         `json:"correlation,omitempty"`
	Causation   string         `json:"causation,omitempty"`
	Tombstoned  bool           `json:"tombstoned,omitempty"`
	Diff        []query.Change `json:"diff"`
}

// HistoryPage is a page of a history. Next, when set, is the cursor to pass as after: a
// version for a stream's history, an opaque cursor for an entity's.
type HistoryPage struct {
	Entries []HistoryEntry `json:"entries"`
	Next    string         `json:"next,omitempty"`
}

// CountResponse is the number of events a search matches.
type CountResponse struct {
	Count int64 `json:"count"`
}

func historyEntry(en query.Entry) HistoryEntry {
	diff := en.Diff
	if diff == nil {
		diff = []query.Change{}
	}
	return HistoryEntry{
		ID: en.ID, Stream: en.Stream, Version: en.Version, Position: en.Position.String(), Type: en.Type,
		RecordedAt: timeString(en.RecordedAt), OccurredAt: timeString(en.OccurredAt),
		Principal: en.Principal, Session: en.Session, Reason: en.Reason, Correlation: en.Correlation, Causation: en.Causation,
		Tombstoned: en.Tombstoned, Diff: diff,
	}
}

// timeParam reads a time parameter in the forms of query.ParseTime (RFC 3339, 2006-01-02[T15:04]
// in UTC, now, or relative such as -90d); ok is false when it is absent.
func timeParam(r *http.Request, op, name string, now time.Time) (t time.Time, ok bool, err error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, false, nil
	}
	t, err = query.ParseTime(s, now)
	if err != nil {
		return time.Time{}, false, invalidf(op, "%s=%q: want RFC 3339 (escape + as %%2B), 2006-01-02[T15:04] (UTC), now, or relative such as -90d", name, s)
	}
	return t, true, nil
}

// visibleStream is nil when the stream has events of tenant's; NotFound otherwise, the same for
// another tenant's stream as for one that does not exist.
func (s *Server) visibleStream(r *http.Request, op, stream, tenant string) error {
	ok, err := s.owners.visible(r.Context(), stream, tenant)
	if err != nil {
		return err
	}
	if !ok {
		return notFoundStream(op, stream)
	}
	return nil
}

// jsonModel is query.JSONModel, with the valid time read from a payload field when asked.
func jsonModel(validField string) query.Model[map[string]any] {
	if validField != "" {
		return query.JSONFieldModel(validField)
	}
	return query.JSONModel()
}

// revealing is m folding revealed events when the server reveals personal data (see
// Config.Reveal and query.Revealing): states and diffs then show what reads show.
func (s *Server) revealing(m query.Model[map[string]any]) query.Model[map[string]any] {
	if s.cfg.Protector == nil || !s.cfg.Reveal {
		return m
	}
	return query.Revealing(m, s.reveal)
}

func (s *Server) handleState(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "state"
	stream := r.PathValue("stream")
	now := time.Now()
	at, hasAt, err := timeParam(r, op, "at", now)
	if err != nil {
		return err
	}
	knownAt, hasKnown, err := timeParam(r, op, "knownAt", now)
	if err != nil {
		return err
	}
	if hasKnown && !hasAt {
		return invalidf(op, "knownAt needs at (the time the state is asked about)")
	}
	validField := r.URL.Query().Get("validField")
	if validField != "" && !hasKnown {
		return invalidf(op, "validField needs knownAt: it sets the valid time of a bitemporal state")
	}
	var qa query.At
	if hasAt {
		qa.Recorded = at
	}
	if hasKnown {
		qa = query.At{Recorded: knownAt, Occurred: at}
	}
	if err := s.visibleStream(r, op, stream, p.Tenant); err != nil {
		return err
	}
	st, err := query.StateAt(r.Context(), s.store, s.revealing(jsonModel(validField)), stream, qa)
	if err != nil {
		return err
	}
	b, err := json.Marshal(st.State)
	if err != nil {
		return strata.Errorf(strata.Internal, op, "encode state: %w", err)
	}
	resp := StateResponse{
		Stream: stream, Version: st.Version, LastRecordedAt: timeString(st.LastRecordedAt),
		FromSnapshot: st.FromSnapshot, Folded: st.Events, Skipped: st.Skipped, State: b,
		At: timeString(qa.Recorded),
	}
	if hasKnown {
		resp.At, resp.KnownAt = timeString(qa.Occurred), timeString(qa.Recorded)
	}
	if resp.At == "" {
		resp.At = timeString(strata.Timestamp(now))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "history"
	stream := r.PathValue("stream")
	now := time.Now()
	var opts query.HistoryOptions
	var err error
	if opts.From, _, err = timeParam(r, op, "from", now); err != nil {
		return err
	}
	if opts.To, _, err = timeParam(r, op, "to", now); err != nil {
		return err
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		return invalidf(op, "the time range from=%s to=%s is empty", timeString(opts.From), timeString(opts.To))
	}
	after, err := intParam(r, op, "after", 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := limitParam(r, op)
	if err != nil {
		return err
	}
	if err := s.visibleStream(r, op, stream, p.Tenant); err != nil {
		return err
	}
	page := HistoryPage{Entries: []HistoryEntry{}}
	// Every page folds the stream from its start: the first diff of a page is against the
	// true state before it.
	for en, err := range query.History(r.Context(), s.store, s.revealing(query.JSONModel()), stream, opts) {
		if err != nil {
			return err
		}
		if en.Version <= after {
			continue
		}
		page.Entries = append(page.Entries, historyEntry(en))
		if len(page.Entries) == limit {
			page.Next = itoa(en.Version)
			break
		}
	}
	s.metrics.read.Add(float64(len(page.Entries)))
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) handleEntityHistory(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "entity history"
	q := r.URL.Query()
	ent := query.Entity{Tenant: p.Tenant, ID: q.Get("entity"), Field: q.Get("field"), StreamPrefixes: q["prefix"]}
	if ent.ID == "" {
		return invalidf(op, "entity= is required: the ID events of several streams are about")
	}
	if len(ent.StreamPrefixes) > MaxEntityPrefixes {
		return invalidf(op, "%d prefixes, at most %d", len(ent.StreamPrefixes), MaxEntityPrefixes)
	}
	for _, pre := range ent.StreamPrefixes {
		if pre == "" {
			return invalidf(op, "an empty prefix")
		}
	}
	cur, hasCur, err := strata.DecodeQueryCursor(q.Get("after"))
	if err != nil {
		return invalidf(op, "after=%q: want the next of an earlier page", q.Get("after"))
	}
	limit, err := limitParam(r, op)
	if err != nil {
		return err
	}
	if _, ok := s.store.(strata.QueryStore); !ok {
		return strata.Errorf(strata.NotFound, op, "this store cannot be searched")
	}
	if s.cfg.Protector != nil && s.cfg.Reveal {
		ent.Reveal = s.reveal
	}
	page := HistoryPage{Entries: []HistoryEntry{}}
	for en, err := range query.EntityHistory(r.Context(), s.store, ent) {
		if err != nil {
			return err
		}
		if hasCur && cur.Before(&en.Event) {
			continue
		}
		// The tenant's event in a stream another tenant owns would diff against that
		// tenant's state: such streams stay unseen, as in every stream read.
		if ok, err := s.owners.visible(r.Context(), en.Stream, p.Tenant); err != nil {
			return err
		} else if !ok {
			continue
		}
		page.Entries = append(page.Entries, historyEntry(en))
		if len(page.Entries) == limit {
			page.Next = strata.CursorAfter(&en.Event)
			break
		}
	}
	s.metrics.read.Add(float64(len(page.Entries)))
	writeJSON(w, http.StatusOK, page)
	return nil
}

// eventQuery reads a search's filters. The tenant is always the key's: a tenant parameter that
// names another is Forbidden.
func eventQuery(r *http.Request, op string, p Principal) (strata.EventQuery, error) {
	v := r.URL.Query()
	switch t := v.Get("tenant"); t {
	case "", p.Tenant:
	default:
		return strata.EventQuery{}, strata.Errorf(strata.Forbidden, op, "this key searches its own tenant only")
	}
	q := strata.EventQuery{
		Tenant: p.Tenant, Types: v["type"],
		Subsystem: v.Get("subsystem"), Category: v.Get("category"), Principal: v.Get("principal"),
		Session: v.Get("session"), Correlation: v.Get("correlation"), Causation: v.Get("causation"),
		StreamPrefix: v.Get("prefix"), Cursor: v.Get("cursor"),
	}
	now := time.Now()
	var err error
	if q.RecordedFrom, _, err = timeParam(r, op, "from", now); err != nil {
		return q, err
	}
	if q.RecordedTo, _, err = timeParam(r, op, "to", now); err != nil {
		return q, err
	}
	limit, err := intParam(r, op, "limit", 0, strata.MaxQueryLimit)
	if err != nil {
		return q, err
	}
	q.Limit = int(limit)
	if _, _, err := strata.DecodeQueryCursor(q.Cursor); err != nil {
		return q, invalidf(op, "cursor=%q: want the next of an earlier page", q.Cursor)
	}
	_, _, _, err = strata.PrepareEventQuery(op, q)
	return q, err
}

func (s *Server) queryStore(op string) (strata.QueryStore, error) {
	qs, ok := s.store.(strata.QueryStore)
	if !ok {
		return nil, strata.Errorf(strata.NotFound, op, "this store cannot be searched")
	}
	return qs, nil
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "query"
	q, err := eventQuery(r, op, p)
	if err != nil {
		return err
	}
	qs, err := s.queryStore(op)
	if err != nil {
		return err
	}
	res, err := qs.QueryEvents(r.Context(), q)
	if err != nil {
		return err
	}
	page := EventsPage{Events: make([]Event, 0, len(res.Events)), Next: res.Next}
	for i := range res.Events {
		e := &res.Events[i]
		if e.Meta.Tenant != p.Tenant { // the store's contract; checked again at the boundary
			return strata.Errorf(strata.Internal, op, "the store returned an event of another tenant")
		}
		if err := s.reveal(r.Context(), e); err != nil {
			return err
		}
		page.Events = append(page.Events, eventJSON(*e))
	}
	s.metrics.read.Add(float64(len(page.Events)))
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) handleQueryCount(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "query count"
	q, err := eventQuery(r, op, p)
	if err != nil {
		return err
	}
	qs, err := s.queryStore(op)
	if err != nil {
		return err
	}
	n, err := qs.CountEvents(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, CountResponse{Count: n})
	return nil
}
