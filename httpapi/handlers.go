package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/projection"
	"github.com/strata-events/strata/shred"
)

func notFoundStream(op, stream string) error {
	return strata.Errorf(strata.NotFound, op, "no stream %q", stream)
}

func (s *Server) handleAppend(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "append"
	stream := r.PathValue("stream")
	var req AppendRequest
	if err := decodeJSON(r, op, &req); err != nil {
		return err
	}
	exp, err := parseExpected(req.Expected)
	if err != nil {
		return err
	}
	if len(req.Events) == 0 {
		return invalidf(op, "no events")
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	if shred.IsErasureStream(stream) {
		return strata.Errorf(strata.Forbidden, op, "stream %q: the streams erasure-… and erasure@… record erasures and are written by them only", stream)
	}
	evs := make([]strata.EventData, len(req.Events))
	plain := make([]json.RawMessage, len(req.Events)) // the data before Protect encrypts it
	for i, ne := range req.Events {
		e := strata.EventData{Type: ne.Type, Schema: ne.Schema, Data: ne.Data, Meta: ne.Meta}
		if ne.ID != nil {
			e.ID = *ne.ID
		}
		if ne.OccurredAt != "" {
			t, err := time.Parse(time.RFC3339Nano, ne.OccurredAt)
			if err != nil {
				return invalidf(op, "event %d: occurredAt %q is not an RFC 3339 time", i, ne.OccurredAt)
			}
			e.OccurredAt = t
		}
		switch e.Meta.Tenant {
		case "", p.Tenant:
			e.Meta.Tenant = p.Tenant
		default:
			return strata.Errorf(strata.Forbidden, op, "event %d names tenant %q; this key writes for its own tenant only", i, e.Meta.Tenant)
		}
		evs[i] = e
	}
	owner, exists, err := s.owners.owner(r.Context(), stream)
	if err != nil {
		return err
	}
	if exists && owner != p.Tenant {
		return s.appendFailed(strata.Errorf(strata.Forbidden, op, "stream %q belongs to another tenant", stream))
	}
	if s.cfg.Protector != nil {
		// Protect makes the data key of each subject it meets: what would refuse the append
		// is checked first, lest a refused append leave a key, and the subject be the
		// tenant's (erasable, then never to be written again) though nothing of it was.
		if _, err := strata.PrepareAppend(op, []strata.StreamAppend{{Stream: stream, Expected: exp, Events: evs}}); err != nil {
			return s.appendFailed(err)
		}
		for i := range evs {
			plain[i] = evs[i].Data
			if err := s.cfg.Protector.Protect(r.Context(), &evs[i]); err != nil {
				return err
			}
		}
	}
	res, err := s.appendOwned(r.Context(), op, stream, exp, p.Tenant, exists, evs)
	if errors.Is(err, strata.ErrEventIDReused) && s.cfg.Protector != nil {
		// Encryption draws a fresh nonce each time, so the store sees a retry of a protected
		// append as other content: compare the stored events decrypted.
		if rep, ok, rerr := s.protectedReplay(r.Context(), stream, p.Tenant, evs, plain); rerr != nil {
			err = rerr
		} else if ok {
			res, err = rep, nil
		}
	}
	if err != nil {
		s.metrics.appendErrors.WithLabelValues(string(strata.ErrorCode(err))).Inc()
		if errors.Is(err, strata.ErrEventIDReused) {
			// The store's message names the stream and version where the ID is stored, which
			// may be another tenant's.
			return strata.Errorf(strata.Conflict, op, "an event ID of this append is already stored with other content: use new IDs, or resend the stored batch exactly: %w", strata.ErrEventIDReused)
		}
		return err
	}
	if !res.Replayed {
		s.metrics.appended.Add(float64(len(evs)))
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	writeJSON(w, status, AppendResponse{Stream: res.Stream, FirstVersion: res.FirstVersion, LastVersion: res.LastVersion, Replayed: res.Replayed})
	return nil
}

// appendFailed counts an append refused by the store's checks (strata_append_errors_total)
// and returns err.
func (s *Server) appendFailed(err error) error {
	s.metrics.appendErrors.WithLabelValues(string(strata.ErrorCode(err))).Inc()
	return err
}

// appendOwned appends to a stream of tenant's; exists says whether the caller found events in
// it, all of tenant's (the caller refused a stream of another tenant's). A stream that has
// events of another tenant is Forbidden. A stream that has none is appended to with NoStream,
// whatever the request expected, so that a racing writer of another tenant cannot slip in
// first (an expectation that needs the stream to exist fails at once, as it would have); on
// that conflict the owner is looked up again.
func (s *Server) appendOwned(ctx context.Context, op, stream string, exp strata.ExpectedVersion, tenant string, exists bool, evs []strata.EventData) (strata.AppendResult, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			owner, ok, err := s.owners.owner(ctx, stream)
			if err != nil {
				return strata.AppendResult{}, err
			}
			if ok && owner != tenant {
				return strata.AppendResult{}, strata.Errorf(strata.Forbidden, op, "stream %q belongs to another tenant", stream)
			}
			exists = ok
		}
		try := exp
		if !exists {
			if !exp.Allows(0) {
				if attempt == 0 {
					continue // the stream may have been created since: look again
				}
				return strata.AppendResult{}, strata.VersionConflict(op, stream, exp, 0)
			}
			try = strata.NoStream
		}
		res, err := s.store.Append(ctx, stream, try, evs...)
		if err != nil && try != exp && attempt == 0 && strata.ErrorCode(err) == strata.Conflict {
			continue // another writer created the stream: check whose it is
		}
		return res, err
	}
}

// protectedReplay reports whether evs, whose clear data is plain, are stored in order in the
// tenant's stream with the same IDs, types, schemas and, decrypted, the same data: a retry of
// an append that Protect encrypted.
func (s *Server) protectedReplay(ctx context.Context, stream, tenant string, evs []strata.EventData, plain []json.RawMessage) (strata.AppendResult, bool, error) {
	var first int64
	for e, err := range s.store.ReadStream(ctx, stream, strata.ReadStreamOptions{Backward: true}) {
		if err != nil {
			return strata.AppendResult{}, false, err
		}
		if e.ID == evs[0].ID {
			first = e.Version
			break
		}
	}
	if first == 0 {
		return strata.AppendResult{}, false, nil
	}
	i := 0
	for e, err := range s.store.ReadStream(ctx, stream, strata.ReadStreamOptions{From: first, Limit: len(evs)}) {
		if err != nil {
			return strata.AppendResult{}, false, err
		}
		want := evs[i]
		schema, data := want.Schema, plain[i]
		if schema == 0 {
			schema = 1
		}
		if len(data) == 0 {
			data = json.RawMessage("{}")
		}
		if e.ID != want.ID || e.Version != first+int64(i) || e.Meta.Tenant != tenant || e.Type != want.Type || e.Schema != schema {
			return strata.AppendResult{}, false, nil
		}
		if err := s.cfg.Protector.Reveal(ctx, &e); err != nil {
			return strata.AppendResult{}, false, err
		}
		// Protect does not keep the payload's whitespace: compare the compact forms.
		if !bytes.Equal(compactJSON(e.Data), compactJSON(data)) {
			return strata.AppendResult{}, false, nil
		}
		i++
	}
	if i != len(evs) {
		return strata.AppendResult{}, false, nil
	}
	return strata.AppendResult{Stream: stream, FirstVersion: first, LastVersion: first + int64(len(evs)) - 1, Replayed: true}, true, nil
}

// compactJSON returns the JSON document b without insignificant whitespace, or b itself when it
// is not valid JSON.
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

func (s *Server) reveal(ctx context.Context, e *strata.Event) error {
	if s.cfg.Protector == nil || !s.cfg.Reveal {
		return nil
	}
	return s.cfg.Protector.Reveal(ctx, e)
}

func (s *Server) handleReadStream(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "read stream"
	stream := r.PathValue("stream")
	from, err := intParam(r, op, "from", 0, 1<<62)
	if err != nil {
		return err
	}
	backward, err := boolParam(r, op, "backward")
	if err != nil {
		return err
	}
	limit, err := limitParam(r, op)
	if err != nil {
		return err
	}
	if ok, err := s.owners.visible(r.Context(), stream, p.Tenant); err != nil || !ok {
		if err == nil {
			err = notFoundStream(op, stream)
		}
		return err
	}
	page := EventsPage{Events: []Event{}}
	for e, err := range s.store.ReadStream(r.Context(), stream, strata.ReadStreamOptions{From: from, Backward: backward, Limit: limit}) {
		if err != nil {
			return err
		}
		if err := s.reveal(r.Context(), &e); err != nil {
			return err
		}
		page.Events = append(page.Events, eventJSON(e))
	}
	if n := len(page.Events); n == limit {
		last := page.Events[n-1].Version
		switch {
		case !backward:
			page.Next = itoa(last + 1)
		case last > 1:
			page.Next = itoa(last - 1)
		}
	}
	s.metrics.read.Add(float64(len(page.Events)))
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) handleStreamInfo(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "stream info"
	stream := r.PathValue("stream")
	if ok, err := s.owners.visible(r.Context(), stream, p.Tenant); err != nil || !ok {
		if err == nil {
			err = notFoundStream(op, stream)
		}
		return err
	}
	info, err := s.store.StreamInfo(r.Context(), stream)
	if err != nil {
		return err
	}
	if !info.Exists {
		return notFoundStream(op, stream)
	}
	writeJSON(w, http.StatusOK, streamJSON(info))
	return nil
}

func (s *Server) handleStreams(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "streams"
	q := r.URL.Query()
	limit, err := limitParam(r, op)
	if err != nil {
		return err
	}
	after := q.Get("after")
	page := StreamsPage{Streams: []StreamJSON{}}
	// Streams of other tenants are skipped; the listing reads on until the page is full.
	for info, err := range s.store.Streams(r.Context(), strata.ListStreamsOptions{Prefix: q.Get("prefix"), After: after}) {
		if err != nil {
			return err
		}
		ok, err := s.owners.visible(r.Context(), info.Stream, p.Tenant)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		page.Streams = append(page.Streams, streamJSON(info))
		if len(page.Streams) == limit {
			page.Next = info.Stream
			break
		}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// filterOf reads the global-log filter of a request, always restricted to the key's tenant. It
// takes at most strata.MaxQueryTypes types, as a search does: a subscription's filter is
// matched against each new event by the follower that every subscription shares.
func filterOf(r *http.Request, op string, p Principal) (strata.Filter, error) {
	q := r.URL.Query()
	if n := len(q["type"]); n > strata.MaxQueryTypes {
		return strata.Filter{}, invalidf(op, "%d types, at most %d", n, strata.MaxQueryTypes)
	}
	// Checked here, as names are on append, so that a subscription that could never match is
	// a 400 rather than a stream that the store ends at its first read.
	for _, t := range q["type"] {
		if err := strata.ValidateEventType(op, t); err != nil {
			return strata.Filter{}, err
		}
	}
	prefix := q.Get("prefix")
	if prefix != "" {
		if err := strata.ValidateStreamName(op, prefix); err != nil {
			return strata.Filter{}, strata.Errorf(strata.Invalid, op, "prefix: %w", err)
		}
	}
	return strata.Filter{Types: q["type"], StreamPrefix: prefix, Tenant: p.Tenant}, nil
}

func parseCursor(op, s string) (strata.Position, error) {
	pos, err := strata.ParsePosition(s)
	if err != nil {
		return strata.Start, invalidf(op, "cursor %q: want a position from an earlier read, such as 42 or 1017.42", s)
	}
	return pos, nil
}

func (s *Server) handleReadAll(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "read all"
	after, err := parseCursor(op, r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	limit, err := limitParam(r, op)
	if err != nil {
		return err
	}
	filter, err := filterOf(r, op, p)
	if err != nil {
		return err
	}
	page := EventsPage{Events: []Event{}, Next: after.String()}
	for e, err := range s.store.ReadAll(r.Context(), strata.ReadAllOptions{After: after, Filter: filter, Limit: limit}) {
		if err != nil {
			return err
		}
		page.Next = e.Position.String()
		if err := s.reveal(r.Context(), &e); err != nil {
			return err
		}
		page.Events = append(page.Events, eventJSON(e))
	}
	s.metrics.read.Add(float64(len(page.Events)))
	writeJSON(w, http.StatusOK, page)
	return nil
}

// findEvent returns the event with id if it is tenant's, through the ledger's leaf (which
// names its stream and version); NotFound otherwise, and for an event not sealed yet.
func (s *Server) findEvent(ctx context.Context, op string, ls strata.LedgerStore, id uuid.UUID, tenant string) (strata.Event, error) {
	leaf, err := ls.LedgerLeaf(ctx, id)
	if err != nil {
		return strata.Event{}, err
	}
	for e, err := range s.store.ReadStream(ctx, leaf.Stream, strata.ReadStreamOptions{From: leaf.Version, Limit: 1}) {
		if err != nil {
			return strata.Event{}, err
		}
		if e.ID == id && e.Meta.Tenant == tenant {
			return e, nil
		}
	}
	return strata.Event{}, strata.Errorf(strata.NotFound, op, "event %s is not sealed in the ledger", id)
}

// ProofResponse is an event's inclusion proof against the latest signed checkpoint: the
// bundle in the C2SP tlog-proof text form, and its parts (base64) for a browser to check.
type ProofResponse struct {
	EventID    uuid.UUID `json:"eventId"`
	Index      uint64    `json:"index"`
	TreeSize   uint64    `json:"treeSize"`
	Leaf       []byte    `json:"leaf"`
	Proof      [][]byte  `json:"proof"`
	Checkpoint string    `json:"checkpoint"`
	Bundle     string    `json:"bundle"`
}

func (s *Server) handleProof(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "proof"
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return invalidf(op, "%q is not an event ID (a UUID)", r.PathValue("id"))
	}
	ls, ok := s.store.(strata.LedgerStore)
	if !ok {
		return strata.Errorf(strata.NotFound, op, "this store keeps no ledger")
	}
	if _, err := s.findEvent(r.Context(), op, ls, id, p.Tenant); err != nil {
		if strata.ErrorCode(err) == strata.NotFound {
			return strata.Errorf(strata.NotFound, op, "event %s is not sealed in the ledger", id)
		}
		return err
	}
	prover, err := ledger.NewProver(s.store)
	if err != nil {
		return err
	}
	b, err := prover.Bundle(r.Context(), id)
	if err != nil {
		return err
	}
	resp := ProofResponse{EventID: id, Index: b.Index, Leaf: b.Leaf, Checkpoint: string(b.Checkpoint), Bundle: string(b.Marshal())}
	resp.Proof = make([][]byte, len(b.Proof))
	for i, h := range b.Proof {
		resp.Proof[i] = h[:]
	}
	if c, err := ledger.ParseCheckpoint(checkpointBody(b.Checkpoint)); err == nil {
		resp.TreeSize = c.Size
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// checkpointBody returns the text of a signed note before its signatures.
func checkpointBody(note []byte) []byte {
	for i := 0; i+1 < len(note); i++ {
		if note[i] == '\n' && note[i+1] == '\n' {
			return note[:i+1]
		}
	}
	return note
}

// CheckpointResponse is the latest signed checkpoint.
type CheckpointResponse struct {
	Origin   string `json:"origin"`
	TreeSize uint64 `json:"treeSize"`
	Root     []byte `json:"root"`
	Note     string `json:"note"`
	// CreatedAt is when the checkpoint was signed (RFC 3339).
	CreatedAt string `json:"createdAt"`
}

func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request, _ Principal) error {
	const op = "checkpoint"
	ls, ok := s.store.(strata.LedgerStore)
	if !ok {
		return strata.Errorf(strata.NotFound, op, "this store keeps no ledger")
	}
	c, err := ls.LatestLedgerCheckpoint(r.Context())
	if err != nil {
		return err
	}
	cp, err := ledger.ParseCheckpoint(checkpointBody(c.Note))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, CheckpointResponse{Origin: cp.Origin, TreeSize: cp.Size, Root: cp.Root[:], Note: string(c.Note), CreatedAt: timeString(c.CreatedAt)})
	return nil
}

// ProjectionJSON is one partition's status.
type ProjectionJSON struct {
	Name       string  `json:"name"`
	Version    int     `json:"version"`
	Partition  int     `json:"partition"`
	Partitions int     `json:"partitions"`
	State      string  `json:"state"`
	Active     bool    `json:"active"`
	Checkpoint string  `json:"checkpoint"`
	Processed  int64   `json:"processed"`
	LagEvents  int64   `json:"lagEvents"`
	LagSeconds float64 `json:"lagSeconds"`
	// Error says where a failed partition stopped, not why (see handleProjections).
	Error string `json:"error,omitempty"`
}

func (s *Server) handleProjections(w http.ResponseWriter, r *http.Request, _ Principal) error {
	if _, ok := s.store.(strata.ProjectionStore); !ok {
		writeJSON(w, http.StatusOK, map[string]any{"projections": []ProjectionJSON{}})
		return nil
	}
	sts, err := projection.Statuses(r.Context(), s.store, r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	out := make([]ProjectionJSON, 0, len(sts))
	for _, st := range sts {
		pj := ProjectionJSON{
			Name: st.Key.Name, Version: st.Key.Version, Partition: st.Key.Partition, Partitions: st.Partitions,
			State: string(st.State), Active: st.Active, Checkpoint: st.Checkpoint.String(), Processed: st.Processed,
			LagEvents: st.LagEvents, LagSeconds: st.LagSeconds,
		}
		if f := st.Failure; f != nil {
			// A projection serves every tenant: its error may quote any tenant's event, so a
			// tenant's key learns where and how often it failed, not why.
			pj.Error = fmt.Sprintf("failed at event %s after %d attempt(s); its error is in the log of the worker that ran it and in strata projections status", f.Position, f.Attempts)
		}
		out = append(out, pj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"projections": out})
	return nil
}

// EraseRequest is the optional body of an erasure: metadata of the SubjectErased event.
type EraseRequest struct {
	Meta strata.Metadata `json:"meta"`
}

// EraseResponse reports an erasure.
type EraseResponse struct {
	Subject  string `json:"subject"`
	ErasedAt string `json:"erasedAt"`
	Stream   string `json:"stream"`
}

// handleErase erases a data subject of the key's tenant (shred.Protector.EraseTenant): the key
// of (tenant, subject), which seals that subject's personal data in the tenant's events, and
// nothing of another tenant's, whose same subject ID names another data subject with another
// key. A subject the tenant has no personal data of (none written, or only by another tenant)
// is 404, with the same answer whether another tenant has the ID or no one has, and nothing is
// written. Every API key has a tenant, so no key erases across tenants: that is the
// operator's `strata erase` (shred.Protector.Erase).
func (s *Server) handleErase(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "erase"
	if s.cfg.Protector == nil {
		return strata.Errorf(strata.NotFound, op, "this server does not serve erasure: it has no data protection configured")
	}
	var req EraseRequest
	if r.ContentLength != 0 {
		// A body of unknown length (chunked) may be empty too: the body is optional.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if e := bodyError(err); e != err {
				return e
			}
			return invalidf(op, "read the body: %w", err)
		}
		if len(body) > 0 {
			r.Body = io.NopCloser(bytes.NewReader(body))
			if err := decodeJSON(r, op, &req); err != nil {
				return err
			}
		}
	}
	switch req.Meta.Tenant {
	case "", p.Tenant:
		req.Meta.Tenant = p.Tenant
	default:
		return strata.Errorf(strata.Forbidden, op, "this key acts for its own tenant only")
	}
	if req.Meta.Principal == "" {
		req.Meta.Principal = "apikey:" + p.KeyID
	}
	subject := r.PathValue("subject")
	if err := strata.ValidateStreamName(op, subject); err != nil {
		return err
	}
	// EraseTenant destroys the key before it records the SubjectErased event with this
	// metadata: metadata the store would refuse must be refused first, or the answer would be
	// 400 for an erasure that happened, and that no event records.
	rec := strata.StreamAppend{Stream: shred.TenantErasureStream(p.Tenant, subject), Expected: strata.Any,
		Events: []strata.EventData{{Type: shred.SubjectErasedType, Meta: req.Meta}}}
	if _, err := strata.PrepareAppend(op, []strata.StreamAppend{rec}); err != nil {
		return err
	}
	tomb, err := s.cfg.Protector.EraseTenant(r.Context(), p.Tenant, subject, req.Meta)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, EraseResponse{Subject: tomb.Subject, ErasedAt: timeString(tomb.ErasedAt), Stream: shred.TenantErasureStream(p.Tenant, tomb.Subject)})
	return nil
}

// WhoamiResponse describes the caller's key.
type WhoamiResponse struct {
	Key    string      `json:"key"`
	Role   strata.Role `json:"role"`
	Tenant string      `json:"tenant"`
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request, p Principal) error {
	writeJSON(w, http.StatusOK, WhoamiResponse{Key: p.KeyID, Role: p.Role, Tenant: p.Tenant})
	return nil
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ Principal) error {
	select {
	case <-s.closing:
		return strata.Errorf(strata.Unavailable, "ready", "shutting down")
	default:
	}
	for _, err := range s.store.ReadAll(r.Context(), strata.ReadAllOptions{Limit: 1}) {
		if err != nil {
			return strata.Errorf(strata.Unavailable, "ready", "store: %w", err)
		}
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			return strata.Errorf(strata.Unavailable, "ready", "%w", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
