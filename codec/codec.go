// Package codec is the one conversion pipeline between typed Go events and stored records: a
// registry of event types under explicit, stable names, JSON encoding, upcasters that lift old
// payloads to the current schema on read, and transforms (encryption, redaction) that every
// payload passes on its way to and from the store.
//
// The pipeline, in order:
//
//	Encode: Go value --json--> Record --Transform.Encode...--> strata.EventData
//	Decode: strata.Event --Transform.Decode...(reverse)--> Record --Upcaster*--> Record(s) --json--> Go value(s)
//
// Transforms see the payload at the schema it is stored with; upcasters see it in clear. A
// registry is an instance: build one per program (or per bounded context) with [NewRegistry],
// register every event type with [Register], and share it; it is safe for concurrent use.
package codec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// ErrUnknownType is wrapped by the error of Decode for an event whose type is not registered and
// that no upcaster lifts to a registered one, and by Encode for a value of an unregistered type.
var ErrUnknownType = errors.New("unknown event type")

// ErrUndecodable is wrapped by the error of Decode for a payload that does not decode into its
// registered Go type, or that an upcaster or transform rejected.
var ErrUndecodable = errors.New("undecodable event payload")

// maxUpcastSteps bounds an upcasting chain, so that upcasters that loop end in an error.
const maxUpcastSteps = 64

// maxUpcastRecords bounds the records that upcasting one event makes (splits included), so that
// upcasters that loop while they split end in an error too.
const maxUpcastRecords = 1 << 16

// Record is a payload between the store and a Go value: the type name, its schema version, the
// JSON bytes and the event's metadata. Upcasters and transforms work on records.
type Record struct {
	// ID is the event's ID: the one the event is (or will be) stored under. Transforms bind
	// ciphertext to it.
	ID     uuid.UUID
	Type   string
	Schema int
	Data   json.RawMessage
	// Meta is the metadata of the event being encoded or decoded. Transforms may read it (for
	// example the data subject's key ID) and, when encoding, set keys on it.
	Meta strata.Metadata
}

// Upcaster lifts a stored record to a newer shape. It returns one or more records: the same type
// at a higher schema, a renamed type, or several events split from one. Each returned record must
// make progress (a higher schema, or another type); the registry follows the chain until every
// record has a registered type at its current schema. It must not modify the bytes of its
// input, which may be the stored event's.
type Upcaster func(Record) ([]Record, error)

// Transform changes payloads on their way to and from the store: field encryption (package
// shred), redaction. Encode runs after a value was marshalled, in registration order, with the
// typed value at hand; Decode runs on a stored record before upcasting, in reverse order. Like an
// upcaster, Decode must not modify the bytes of rec.Data, which may be the stored event's (the
// Event of every Message keeps them as stored): it sets rec.Data to new bytes instead.
type Transform interface {
	Encode(ctx context.Context, value any, rec *Record) error
	Decode(ctx context.Context, rec *Record) error
}

// FieldDecoder is an optional interface of a Transform that can put decoded values straight
// into the Go value, sparing json.Unmarshal their parsing (package shred does so for the
// decrypted values of sensitive string fields). The registry calls DecodeInto in place of
// Decode for the transform that runs last, the first one installed, when the event's type is
// registered at its stored schema (no upcaster runs): dst is a pointer to a new zero value of
// the registered Go type, into which the registry then unmarshals rec.Data. DecodeInto may set
// fields of *dst and leave their members out of rec.Data, so that json.Unmarshal leaves them as
// set; the value must be the one that Decode and json.Unmarshal would have made. It must not
// change rec.Type or rec.Schema. When DecodeInto set rec.Data to new bytes, the registry hands
// them back with Recycle once json.Unmarshal has returned, and holds them no longer.
type FieldDecoder interface {
	DecodeInto(ctx context.Context, rec *Record, dst reflect.Value) error
	Recycle(data []byte)
}

// TypeChecker is an optional interface of a Transform that cannot handle every Go type: field
// encryption (package shred) cannot reach a field tagged sensitive that its type hides. Register
// calls CheckType of every installed transform that implements it, and refuses the type with
// its error. A type registered before the transform was installed is not checked here: the
// transform must refuse its values when they are encoded.
type TypeChecker interface {
	// CheckType returns an error when the values of t, to be registered as name, cannot pass
	// the transform.
	CheckType(name string, t reflect.Type) error
}

// Message is a decoded event: the event as stored and the typed value it holds.
type Message struct {
	// Event is the stored event; its Data is the stored bytes (ciphertext where fields are
	// encrypted), Type and Schema as stored.
	Event strata.Event
	// Type and Schema are the value's registered name and current schema (after upcasting).
	Type   string
	Schema int
	// Value is the decoded payload, a value (not a pointer) of the registered Go type.
	Value any
}

type eventType struct {
	name   string
	schema int
	goType reflect.Type
}

type upcastKey struct {
	name   string
	schema int
}

// Registry maps event type names to Go types. The zero value is not usable; call NewRegistry.
type Registry struct {
	mu         sync.RWMutex
	byName     map[string]*eventType
	byGoType   map[reflect.Type]*eventType
	upcasters  map[upcastKey]Upcaster
	transforms []Transform
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byName:    make(map[string]*eventType),
		byGoType:  make(map[reflect.Type]*eventType),
		upcasters: make(map[upcastKey]Upcaster),
	}
}

// Register registers the Go type E under name, at schema version schema (1 for a type that
// never changed). The name is what is stored: keep it stable when the Go type is renamed. It is
// an Invalid error to register a name or a Go type twice, a pointer or interface type, an
// invalid name, a schema outside 1 to [strata.MaxSchema], or a type that an installed [TypeChecker] refuses.
func Register[E any](r *Registry, name string, schema int) error {
	return register[E](r, name, schema, false)
}

// register is Register; with ensure, exactly this registration existing already is no error,
// decided under the same lock that registers it.
func register[E any](r *Registry, name string, schema int, ensure bool) error {
	t := reflect.TypeFor[E]()
	const op = "codec register"
	switch {
	case t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface:
		return strata.Errorf(strata.Invalid, op, "register %s as a value type, not a pointer or interface", t)
	case schema < 1 || schema > strata.MaxSchema:
		return strata.Errorf(strata.Invalid, op, "event type %q: schema must be 1 to %d, not %d", name, strata.MaxSchema, schema)
	}
	if err := strata.ValidateEventType(op, name); err != nil {
		return err
	}
	for _, tr := range r.Transforms() {
		if c, ok := tr.(TypeChecker); ok {
			if err := c.CheckType(name, t); err != nil {
				return wrapCode(strata.Invalid, op, fmt.Sprintf("event type %q: refused by the transform %T", name, tr), err)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.byName[name]; ok {
		if ensure && have.goType == t && have.schema == schema {
			return nil // registered by a concurrent Ensure
		}
		return strata.Errorf(strata.Duplicate, op, "event type %q is already registered (as %s)", name, have.goType)
	}
	if have, ok := r.byGoType[t]; ok {
		return strata.Errorf(strata.Duplicate, op, "Go type %s is already registered (as %q)", t, have.name)
	}
	et := &eventType{name: name, schema: schema, goType: t}
	r.byName[name] = et
	r.byGoType[t] = et
	return nil
}

// Ensure registers E under name at schema like Register, but returns nil when exactly this
// registration exists already. Packages that bring their own event types (the command log,
// sagas) use it to register into the caller's registry.
func Ensure[E any](r *Registry, name string, schema int) error {
	r.mu.RLock()
	et, ok := r.byName[name]
	r.mu.RUnlock()
	if ok && et.goType == reflect.TypeFor[E]() && et.schema == schema {
		return nil
	}
	return register[E](r, name, schema, true)
}

// Upcast registers fn to lift records of type name at schema fromSchema. The type need not be
// registered (it may be an old name that fn renames). Registering the same pair twice is a
// Duplicate error.
func (r *Registry) Upcast(name string, fromSchema int, fn Upcaster) error {
	const op = "codec upcast"
	if fn == nil || fromSchema < 1 || name == "" {
		return strata.Errorf(strata.Invalid, op, "an upcaster needs a type name, a schema of 1 or more and a function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := upcastKey{name, fromSchema}
	if _, ok := r.upcasters[k]; ok {
		return strata.Errorf(strata.Duplicate, op, "an upcaster for %q schema %d is already registered", name, fromSchema)
	}
	r.upcasters[k] = fn
	return nil
}

// Use appends a transform to the pipeline. Transforms registered first encode first and decode
// last.
func (r *Registry) Use(t Transform) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transforms = append(r.transforms, t)
}

// Transforms returns the installed transforms, in registration order. Packages that keep
// other encodings of events' contents (aggregate snapshots) look among them for the optional
// interfaces they need.
func (r *Registry) Transforms() []Transform {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.transforms)
}

// Types returns the registered type names, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Name returns the registered name and schema of v's Go type (v may be a pointer to it).
func (r *Registry) Name(v any) (string, int, error) {
	et, err := r.lookupValue(v)
	if err != nil {
		return "", 0, err
	}
	return et.name, et.schema, nil
}

// GoType returns the Go type registered under name.
func (r *Registry) GoType(name string) (reflect.Type, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	et, ok := r.byName[name]
	if !ok {
		return nil, false
	}
	return et.goType, true
}

func (r *Registry) lookupValue(v any) (*eventType, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, strata.Errorf(strata.Invalid, "codec encode", "cannot encode a nil event: %w", ErrUnknownType)
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	r.mu.RLock()
	et, ok := r.byGoType[t]
	r.mu.RUnlock()
	if !ok {
		return nil, strata.Errorf(strata.Invalid, "codec encode", "Go type %s is not registered: %w", t, ErrUnknownType)
	}
	return et, nil
}

// Encode turns v (a registered type, or a pointer to one) into event data ready to append, with
// meta attached and a fresh UUIDv7 as its ID. Transforms may add metadata keys.
func (r *Registry) Encode(ctx context.Context, v any, meta strata.Metadata) (strata.EventData, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return strata.EventData{}, strata.Errorf(strata.Internal, "codec encode", "event ID: %w", err)
	}
	return r.EncodeID(ctx, id, v, meta)
}

// EncodeID is Encode for an event whose ID the caller chose (to make an append idempotent).
// Transforms bind what they encrypt to the ID, so the data must be appended under it.
func (r *Registry) EncodeID(ctx context.Context, id uuid.UUID, v any, meta strata.Metadata) (strata.EventData, error) {
	if id == uuid.Nil {
		return strata.EventData{}, strata.Errorf(strata.Invalid, "codec encode", "a zero event ID")
	}
	et, err := r.lookupValue(v)
	if err != nil {
		return strata.EventData{}, err
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return strata.EventData{}, strata.Errorf(strata.Invalid, "codec encode", "cannot encode a nil *%s", et.goType)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return strata.EventData{}, strata.Errorf(strata.Invalid, "codec encode", "event type %q: %w", et.name, err)
	}
	rec := Record{ID: id, Type: et.name, Schema: et.schema, Data: data, Meta: meta}
	for _, t := range r.transformsSnapshot() {
		if err := t.Encode(ctx, v, &rec); err != nil {
			return strata.EventData{}, wrapCode(strata.Internal, "codec encode", fmt.Sprintf("event type %q", et.name), err)
		}
	}
	return strata.EventData{ID: id, Type: rec.Type, Schema: rec.Schema, Data: rec.Data, Meta: rec.Meta}, nil
}

// wrapCode returns err with the context msg, keeping the code of an *strata.Error inside err
// and using code otherwise.
func wrapCode(code strata.Code, op, msg string, err error) error {
	var se *strata.Error
	if errors.As(err, &se) {
		code = se.Code
	}
	return strata.Errorf(code, op, "%s: %w", msg, err)
}

func (r *Registry) transformsSnapshot() []Transform {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.transforms
}

// Decode turns a stored event into one or more typed messages (more than one when an upcaster
// splits it). Every error is an Invalid *strata.Error that names the event (ID, stream, version,
// type, schema) and wraps ErrUnknownType or ErrUndecodable; Decode never panics on bad input.
func (r *Registry) Decode(ctx context.Context, e strata.Event) ([]Message, error) {
	ts := r.transformsSnapshot()
	rec := Record{ID: e.ID, Type: e.Type, Schema: e.Schema, Data: e.Data, Meta: e.Meta}
	var into reflect.Value   // the value a FieldDecoder decoded into, when one did
	var recycle FieldDecoder // the FieldDecoder whose bytes rec.Data holds
	for i := len(ts) - 1; i >= 0; i-- {
		var err error
		if fd, ok := ts[i].(FieldDecoder); ok && i == 0 {
			var own bool
			if into, own, err = r.decodeInto(ctx, ts[i], fd, &rec); own {
				recycle = fd
			}
		} else {
			err = ts[i].Decode(ctx, &rec)
		}
		if err != nil {
			return nil, decodeError(e, fmt.Errorf("%w: transform: %w", ErrUndecodable, err))
		}
	}
	// The transforms gave new bytes: they may hold fields decrypted (see unmarshal).
	revealed := !sameBytes(rec.Data, e.Data)
	if et, ok := r.byNameLocked(rec.Type); ok && rec.Schema == et.schema { // no upcaster runs
		m, err := unmarshal(e, et, rec, revealed, into)
		if recycle != nil {
			recycle.Recycle(rec.Data)
		}
		if err != nil {
			return nil, err
		}
		return []Message{m}, nil
	}
	recs, err := r.upcast(rec)
	if err != nil {
		return nil, decodeError(e, err)
	}
	out := make([]Message, 0, len(recs))
	for _, rc := range recs {
		et, _ := r.byNameLocked(rc.Type) // upcast only returns registered types
		m, err := unmarshal(e, et, rc, revealed, reflect.Value{})
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// decodeInto runs the first transform installed, t, on rec: as the FieldDecoder fd when the
// record's type is registered at its schema (no upcaster runs), else with Decode. into is the
// value DecodeInto decoded into, own whether rec.Data holds new bytes of fd's to give back.
func (r *Registry) decodeInto(ctx context.Context, t Transform, fd FieldDecoder, rec *Record) (into reflect.Value, own bool, err error) {
	et, ok := r.byNameLocked(rec.Type)
	if !ok || rec.Schema != et.schema {
		return reflect.Value{}, false, t.Decode(ctx, rec)
	}
	into = reflect.New(et.goType)
	before := rec.Data
	if err := fd.DecodeInto(ctx, rec, into); err != nil {
		return reflect.Value{}, false, err
	}
	if rec.Type != et.name || rec.Schema != et.schema {
		return reflect.Value{}, false, fmt.Errorf("%T.DecodeInto changed the type of the record to %q schema %d", fd, rec.Type, rec.Schema)
	}
	return into, !sameBytes(rec.Data, before), nil
}

// sameBytes reports whether a and b are the same bytes in memory (not merely equal).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// unmarshal decodes rc, of the registered type et, into the message of the stored event e.
// revealed says that transforms changed the stored payload: it may hold decrypted personal
// data, which the error of a value that does not decode then does not quote (see withoutValues).
// into, when valid, is the new value that a FieldDecoder already set fields of.
func unmarshal(e strata.Event, et *eventType, rc Record, revealed bool, into reflect.Value) (Message, error) {
	p := into
	if !p.IsValid() {
		p = reflect.New(et.goType)
	}
	if err := json.Unmarshal(rc.Data, p.Interface()); err != nil {
		if revealed {
			err = withoutValues(err)
		}
		return Message{}, decodeError(e, fmt.Errorf("%w: as %s (schema %d): %w", ErrUndecodable, et.goType, rc.Schema, err))
	}
	return Message{Event: e, Type: rc.Type, Schema: rc.Schema, Value: p.Elem().Interface()}, nil
}

// withoutValues returns the error of json.Unmarshal with a message that does not quote the
// value that failed: a type mismatch names the field and the Go type; a syntax error, which
// quotes nothing, is kept; the error of a type's own decoding method (time.Time quotes what it
// cannot parse) is told by its type only. The error is still wrapped, for errors.As.
func withoutValues(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return withheldError{fmt.Sprintf("json: cannot unmarshal a JSON value into the field %q of type %s (the value is withheld: it may be personal data)", te.Field, te.Type), err}
	case errors.As(err, &se):
		return err
	}
	return withheldError{fmt.Sprintf("a value does not decode (%T; its text is withheld: it may be personal data)", err), err}
}

// withheldError is an error with a message of its own, in place of the one of the error it
// wraps.
type withheldError struct {
	msg string
	err error
}

func (e withheldError) Error() string { return e.msg }
func (e withheldError) Unwrap() error { return e.err }

// DecodeOne decodes an event that must decode into exactly one message.
func (r *Registry) DecodeOne(ctx context.Context, e strata.Event) (Message, error) {
	ms, err := r.Decode(ctx, e)
	if err != nil {
		return Message{}, err
	}
	if len(ms) != 1 {
		return Message{}, decodeError(e, fmt.Errorf("%w: upcast into %d events where one was expected", ErrUndecodable, len(ms)))
	}
	return ms[0], nil
}

func (r *Registry) byNameLocked(name string) (*eventType, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	et, ok := r.byName[name]
	return et, ok
}

func (r *Registry) upcaster(name string, schema int) (Upcaster, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn, ok := r.upcasters[upcastKey{name, schema}]
	return fn, ok
}

// upcast follows upcasters until every record has a registered type at its current schema.
func (r *Registry) upcast(rec Record) ([]Record, error) {
	pending := []Record{rec}
	depths := []int{0} // depths[i] is how many upcasters made pending[i]
	var done []Record
	for made := 1; len(pending) > 0; {
		rc, depth := pending[0], depths[0]
		pending, depths = pending[1:], depths[1:]
		if depth > maxUpcastSteps {
			return nil, fmt.Errorf("%w: more than %d upcasting steps (do the upcasters loop?)", ErrUndecodable, maxUpcastSteps)
		}
		et, registered := r.byNameLocked(rc.Type)
		if registered && rc.Schema == et.schema {
			done = append(done, rc)
			continue
		}
		if registered && rc.Schema > et.schema {
			return nil, fmt.Errorf("%w: stored at schema %d, newer than the %d this program knows for %q", ErrUndecodable, rc.Schema, et.schema, rc.Type)
		}
		fn, ok := r.upcaster(rc.Type, rc.Schema)
		if !ok {
			if !registered {
				return nil, fmt.Errorf("%w %q (schema %d)", ErrUnknownType, rc.Type, rc.Schema)
			}
			return nil, fmt.Errorf("%w: no upcaster from %q schema %d to schema %d", ErrUndecodable, rc.Type, rc.Schema, et.schema)
		}
		next, err := callUpcaster(fn, rc)
		if err != nil {
			return nil, fmt.Errorf("%w: upcasting %q schema %d: %w", ErrUndecodable, rc.Type, rc.Schema, err)
		}
		if len(next) == 0 {
			return nil, fmt.Errorf("%w: the upcaster of %q schema %d returned no events", ErrUndecodable, rc.Type, rc.Schema)
		}
		for i := range next {
			n := &next[i]
			n.ID = rc.ID
			if n.Type == rc.Type && n.Schema <= rc.Schema {
				return nil, fmt.Errorf("%w: the upcaster of %q schema %d made no progress (returned schema %d)", ErrUndecodable, rc.Type, rc.Schema, n.Schema)
			}
			if n.Meta.IsZero() {
				n.Meta = rc.Meta
			}
		}
		if made += len(next); made > maxUpcastRecords {
			return nil, fmt.Errorf("%w: upcasting made more than %d records (do the upcasters loop?)", ErrUndecodable, maxUpcastRecords)
		}
		pending = append(next, pending...)
		depths = append(slices.Repeat([]int{depth + 1}, len(next)), depths...)
	}
	return done, nil
}

// callUpcaster runs fn, turning a panic in user code into an error: replay never panics.
func callUpcaster(fn Upcaster, rc Record) (out []Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("upcaster panicked: %v", p)
		}
	}()
	return fn(rc)
}

func decodeError(e strata.Event, err error) error {
	return &strata.Error{
		Code: strata.Invalid, Op: "codec decode",
		Msg: fmt.Sprintf("event %s (stream %q version %d, type %q schema %d)", e.ID, e.Stream, e.Version, e.Type, e.Schema),
		Err: err,
	}
}
