// Package shred protects personal data in events by crypto-shredding: fields marked sensitive
// are encrypted with AES-256-GCM under a key of their data subject before they reach the store,
// and erasing the subject's key makes them unreadable everywhere at once, while the events, their
// order, their hashes and every ledger proof stay as they were.
//
// Mark fields on the Go types of events (or declare JSON paths per event type in the database
// for writers in other languages, see Protector.Declare):
//
//	type CertificateIssued struct {
//		SubjectID    string `json:"subjectId" strata:"subject"`      // names the data subject
//		SubjectDN    string `json:"subjectDN" strata:"sensitive"`    // encrypted
//		SubjectEmail string `json:"subjectEmail" strata:"sensitive"` // encrypted
//	}
//
// and install a Protector as a transform of the codec registry (reg.Use(p)): every path that
// encodes or decodes events — aggregates, sagas, projections, the CLI — then encrypts and
// decrypts the same way. Data keys live in the store (strata.KeyStore), wrapped by a
// key-encryption key from a KeyProvider that never reaches the store. After Erase, a sensitive
// string reads as Redacted and any other sensitive value as null: replay never fails on it.
package shred

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// MetaSubject is the metadata key that names an event's data subject. Encoding sets it on every
// event with sensitive fields; a writer may set it to name the subject of an event whose type
// has no subject field.
const MetaSubject = "subject"

// ErrErased is wrapped by the error of writing personal data of an erased subject.
var ErrErased = errors.New("the data subject was erased")

// ErasureHook is called by Erase after the subject's key is gone, for read models and caches that
// copied personal data in clear (projections, snapshots, search indexes): they must drop it.
type ErasureHook func(ctx context.Context, subject string) error

// Protector encrypts and decrypts sensitive fields; it implements codec.Transform. It is safe for
// concurrent use.
type Protector struct {
	store   strata.Store
	keys    strata.KeyStore
	schemas strata.SchemaStore // nil when the store keeps none
	kek     KeyProvider
	cache   *keyCache

	plans sync.Map // reflect.Type -> plan

	mu       sync.RWMutex
	declared map[string]plan // by event type, from the SchemaStore
	hooks    []ErasureHook
}

// Option configures a Protector.
type Option func(*options)

type options struct {
	cacheSize int
	cacheTTL  time.Duration
}

// WithKeyCache bounds the cache of unwrapped data keys: at most size keys, each kept at most ttl.
// A key erased by another process stays usable here until its entry expires (default 10,000 keys
// for one minute); Erase in this process drops it at once.
func WithKeyCache(size int, ttl time.Duration) Option {
	return func(o *options) { o.cacheSize, o.cacheTTL = size, ttl }
}

var _ codec.Transform = (*Protector)(nil)

// New returns a Protector on store, which must implement strata.KeyStore (every backend of this
// module does). It loads the event schemas the store declares. kek may be nil for a Protector
// that only erases and declares: encrypting and decrypting then fail with a clear error.
func New(ctx context.Context, store strata.Store, kek KeyProvider, opts ...Option) (*Protector, error) {
	const op = "shred new"
	keys, ok := store.(strata.KeyStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "crypto-shredding needs a store that implements strata.KeyStore; %T does not", store)
	}
	o := options{cacheSize: 10_000, cacheTTL: time.Minute}
	for _, f := range opts {
		f(&o)
	}
	p := &Protector{store: store, keys: keys, kek: kek, cache: newKeyCache(o.cacheSize, o.cacheTTL), declared: map[string]plan{}}
	p.schemas, _ = store.(strata.SchemaStore)
	if err := p.Reload(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// plan says which JSON paths of an event type are sensitive and which names the subject.
type plan struct {
	// sensitive maps a path to the redaction kind of its value: 's' for a Go string, 'j' for
	// any other Go type, 0 when the kind follows the JSON value (declared schemas).
	sensitive map[string]byte
	// leaves holds the last key of every sensitive path: most values are ruled out by it alone.
	leaves  map[string]bool
	subject string
	// subjectIndex, for a Go type, is the field index path of the subject field.
	subjectIndex []int
}

func newPlan() plan { return plan{sensitive: map[string]byte{}, leaves: map[string]bool{}} }

func (pl plan) add(path string, kind byte) {
	pl.sensitive[path] = kind
	pl.leaves[path[strings.LastIndexByte(path, '.')+1:]] = true
}

// lookup reports whether the value at keys is sensitive, and its kind (see plan.sensitive).
// It allocates nothing: most values are ruled out by their last key alone, and the path of the
// others is joined on the stack.
func (pl plan) lookup(keys [][]byte) (byte, bool) {
	if !pl.leaves[string(keys[len(keys)-1])] {
		return 0, false
	}
	if len(keys) == 1 {
		kind, ok := pl.sensitive[string(keys[0])]
		return kind, ok
	}
	var buf [128]byte
	kind, ok := pl.sensitive[string(appendPath(buf[:0], keys))]
	return kind, ok
}

func (pl plan) empty() bool { return len(pl.sensitive) == 0 }

// Reload reads the declared event schemas again (after another process declared one).
func (p *Protector) Reload(ctx context.Context) error {
	if p.schemas == nil {
		return nil
	}
	list, err := p.schemas.EventSchemas(ctx)
	if err != nil {
		return err
	}
	declared := make(map[string]plan, len(list))
	for _, s := range list {
		pl := newPlan()
		pl.subject = s.Subject
		for _, path := range s.Sensitive {
			pl.add(path, 0)
		}
		declared[s.Type] = pl
	}
	p.mu.Lock()
	p.declared = declared
	p.mu.Unlock()
	return nil
}

// Declare stores which JSON paths of an event type are sensitive and which names the subject,
// for events written as raw JSON (the CLI, the HTTP API). Struct tags take precedence for Go
// types that have them.
func (p *Protector) Declare(ctx context.Context, s strata.EventSchema) error {
	if p.schemas == nil {
		return strata.Errorf(strata.Invalid, "shred declare", "the store keeps no event schemas (%T)", p.store)
	}
	if err := p.schemas.SetEventSchema(ctx, s); err != nil {
		return err
	}
	return p.Reload(ctx)
}

// OnErase registers a hook that Erase calls.
func (p *Protector) OnErase(h ErasureHook) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hooks = append(p.hooks, h)
}

// planOf returns the plan of a Go value: from its struct tags, else from the declared schema.
func (p *Protector) planOf(v any, typ string) plan {
	if pl := p.typePlan(v); !pl.empty() {
		return pl
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.declared[typ]
}

// typePlan returns the plan of the struct tags of v's type (through pointers), cached per type;
// an empty plan for a value that is not a struct.
func (p *Protector) typePlan(v any) plan {
	t := reflect.TypeOf(v)
	if t == nil {
		return plan{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return plan{}
	}
	if cached, ok := p.plans.Load(t); ok {
		return cached.(plan)
	}
	pl := newPlan()
	tagPlan(t, "", nil, &pl, 0)
	p.plans.Store(t, pl)
	return pl
}

// tagPlan collects the strata tags of t's fields, descending into struct fields.
func tagPlan(t reflect.Type, prefix string, index []int, pl *plan, depth int) {
	if depth > 8 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		fieldIndex := append(append([]int(nil), index...), i)
		switch f.Tag.Get("strata") {
		case "sensitive":
			// A string reads as Redacted after erasure; anything else as null, which decodes
			// into every Go type (a time.Time, a number, a struct) as its zero value.
			kind := byte('j')
			if f.Type.Kind() == reflect.String {
				kind = 's'
			}
			pl.add(path, kind)
			continue
		case "subject":
			pl.subject = path
			if f.Type.Kind() == reflect.String {
				pl.subjectIndex = fieldIndex
			}
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			tagPlan(ft, path+".", fieldIndex, pl, depth+1)
		}
	}
}

// Encode implements codec.Transform: it encrypts the sensitive fields of rec under the subject's
// data key, creating the key for a new subject.
func (p *Protector) Encode(ctx context.Context, v any, rec *codec.Record) error {
	const op = "shred encode"
	pl := p.planOf(v, rec.Type)
	if pl.empty() {
		return nil
	}
	subject := rec.Meta.Extra[MetaSubject]
	if s := subjectOf(v, pl); s != "" {
		subject = s
	} else if pl.subject != "" && pl.subjectIndex == nil {
		if s, ok := stringAt(rec.Data, pl.subject); ok && s != "" {
			subject = s
		}
	}
	if subject == "" {
		return strata.Errorf(strata.Invalid, op, "event type %q has sensitive fields but no data subject: tag a string field strata:\"subject\", declare a subject path, or set metadata key %q", rec.Type, MetaSubject)
	}
	if err := strata.ValidateStreamName(op, subject); err != nil {
		return strata.Errorf(strata.Invalid, op, "data subject %q: %w", subject, err)
	}
	aead, erased, err := p.dataKey(ctx, subject, true)
	if err != nil {
		return err
	}
	if erased {
		return strata.Errorf(strata.Forbidden, op, "event type %q names data subject %q: %w; its personal data is not written again", rec.Type, subject, ErrErased)
	}
	data, err := sealFields(rec.Data, fields{plan: pl, aead: aead, id: rec.ID, typ: rec.Type, subject: subject})
	if err != nil {
		return strata.Errorf(strata.Invalid, op, "event type %q: %w", rec.Type, err)
	}
	rec.Data = data
	if rec.Meta.Extra[MetaSubject] != subject {
		// The caller's map may be shared (by the events of a batch): set the key on a copy.
		extra := maps.Clone(rec.Meta.Extra)
		if extra == nil {
			extra = make(map[string]string, 1)
		}
		extra[MetaSubject] = subject
		rec.Meta.Extra = extra
	}
	return nil
}

// Decode implements codec.Transform: it decrypts the encrypted fields of rec, or replaces them
// with redaction markers when the subject was erased. Tampered or moved ciphertext is an error.
func (p *Protector) Decode(ctx context.Context, rec *codec.Record) error {
	const op = "shred decode"
	if !bytes.Contains(rec.Data, []byte(envelopePrefix)) {
		return nil
	}
	subject := rec.Meta.Extra[MetaSubject]
	data, err := openFields(rec.Data, fields{id: rec.ID, typ: rec.Type, subject: subject, p: p, ctx: ctx})
	if err != nil {
		var se *strata.Error
		if errors.As(err, &se) {
			return err
		}
		return strata.Errorf(strata.Invalid, op, "event %s field of subject %q: %w", rec.ID, subject, err)
	}
	rec.Data = data
	return nil
}

// dataKey returns the subject's data key, whether it is erased, creating it when create is set
// and the subject has none.
func (p *Protector) dataKey(ctx context.Context, subject string, create bool) (cipher.AEAD, bool, error) {
	const op = "shred key"
	if aead, erased, ok := p.cache.get(subject); ok {
		return aead, erased, nil
	}
	if p.kek == nil {
		return nil, false, strata.Errorf(strata.Unavailable, op, "subject %q has personal data, and no key-encryption key is configured (STRATA_KEK, STRATA_KEK_FILE or --kek-file)", subject)
	}
	k, err := p.keys.SubjectKey(ctx, subject)
	switch {
	case errors.Is(err, strata.ErrNotFound) && create:
		dek := make([]byte, 32)
		if _, err := rand.Read(dek); err != nil {
			return nil, false, strata.Errorf(strata.Internal, op, "generate data key: %w", err)
		}
		wrapped, werr := p.kek.Wrap(ctx, subject, dek)
		zero(dek)
		if werr != nil {
			return nil, false, strata.Errorf(strata.Unavailable, op, "wrap the data key of %q: %w", subject, werr)
		}
		if k, err = p.keys.CreateSubjectKey(ctx, strata.SubjectKey{Subject: subject, KEK: p.kek.KEK(), Wrapped: wrapped}); err != nil {
			return nil, false, err
		}
	case errors.Is(err, strata.ErrNotFound):
		return nil, false, strata.Errorf(strata.NotFound, op, "no data key for subject %q: the store holds its encrypted fields but not its key (restored without the keys table?)", subject)
	case err != nil:
		return nil, false, err
	}
	if k.Erased() {
		p.cache.put(subject, nil, true)
		return nil, true, nil
	}
	dek, err := p.kek.Unwrap(ctx, k.KEK, subject, k.Wrapped)
	if err != nil {
		return nil, false, strata.Errorf(strata.Unavailable, op, "subject %q: %w", subject, err)
	}
	aead, err := newAEAD(dek)
	zero(dek)
	if err != nil {
		return nil, false, strata.Errorf(strata.Internal, op, "subject %q: %w", subject, err)
	}
	p.cache.put(subject, aead, false)
	return aead, false, nil
}

// Protect encrypts the sensitive fields of an event given as raw JSON, by the schema declared for
// its type (see Declare); events of undeclared types pass unchanged. It gives e a UUIDv7 ID when
// it has none, since the ciphertext is bound to the ID.
func (p *Protector) Protect(ctx context.Context, e *strata.EventData) error {
	if e.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return strata.Errorf(strata.Internal, "shred protect", "event ID: %w", err)
		}
		e.ID = id
	}
	rec := codec.Record{ID: e.ID, Type: e.Type, Schema: e.Schema, Data: e.Data, Meta: e.Meta}
	if err := p.Encode(ctx, nil, &rec); err != nil {
		return err
	}
	e.Data, e.Meta = rec.Data, rec.Meta
	return nil
}

// Reveal decrypts the encrypted fields of a stored event in place, or redacts them when the
// subject was erased.
func (p *Protector) Reveal(ctx context.Context, e *strata.Event) error {
	rec := codec.Record{ID: e.ID, Type: e.Type, Schema: e.Schema, Data: e.Data, Meta: e.Meta}
	if err := p.Decode(ctx, &rec); err != nil {
		return err
	}
	e.Data = rec.Data
	return nil
}

// SubjectErased is the event Erase records in the stream "erasure-" + subject. It holds no
// personal data: the subject is a pseudonymous ID.
type SubjectErased struct {
	Subject  string    `json:"subject"`
	ErasedAt time.Time `json:"erasedAt"`
}

// SubjectErasedType is the type name of SubjectErased.
const SubjectErasedType = "SubjectErased"

// RegisterRecords registers SubjectErased in reg.
func RegisterRecords(reg *codec.Registry) error {
	return codec.Ensure[SubjectErased](reg, SubjectErasedType, 1)
}

// ErasureStream returns the stream where the erasure of subject is recorded.
func ErasureStream(subject string) string { return "erasure-" + subject }

// Erase destroys the subject's data key, so that every sensitive field of the subject reads as
// redacted from now on, records a SubjectErased event with meta (who asked, why), and calls the
// erasure hooks. Erasing twice records one event. The key is gone before the hooks run: a failing
// hook is returned, to be retried with another Erase, but nothing can bring the data back.
func (p *Protector) Erase(ctx context.Context, subject string, meta strata.Metadata) (strata.SubjectKey, error) {
	const op = "shred erase"
	if err := strata.ValidateStreamName(op, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	tomb, err := p.keys.EraseSubjectKey(ctx, subject)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	p.cache.put(subject, nil, true)
	body := fmt.Sprintf(`{"subject":%q,"erasedAt":%q}`, subject, tomb.ErasedAt.UTC().Format(time.RFC3339Nano))
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("strata:erasure\x00"+subject+"\x00"+tomb.ErasedAt.UTC().Format(time.RFC3339Nano)))
	if _, err := p.store.Append(ctx, ErasureStream(subject), strata.Any, strata.EventData{ID: id, Type: SubjectErasedType, Data: []byte(body), Meta: meta}); err != nil {
		return tomb, err
	}
	p.mu.RLock()
	hooks := append([]ErasureHook(nil), p.hooks...)
	p.mu.RUnlock()
	var errs []error
	for _, h := range hooks {
		if err := h(ctx, subject); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return tomb, strata.Errorf(strata.Unavailable, op, "subject %q is erased, but an erasure hook failed (erase again to retry): %w", subject, err)
	}
	return tomb, nil
}

// RotateKEK re-wraps every data key that is not wrapped by to yet with to, and returns how many
// it re-wrapped. The Protector's KeyProvider must still unwrap the old keys (a Keyring with to
// as current and the old KEK as older), and every process should hold that keyring before the
// rotation starts: readers never stop. Each key is swapped only if no one changed it meanwhile,
// so a concurrent erasure wins.
func (p *Protector) RotateKEK(ctx context.Context, to KeyProvider) (int, error) {
	const op = "shred rotate"
	if p.kek == nil || to == nil {
		return 0, strata.Errorf(strata.Invalid, op, "rotation needs the current key-encryption key and the new one")
	}
	n, after := 0, ""
	for {
		page, err := p.keys.ListSubjectKeys(ctx, after, 500)
		if err != nil {
			return n, err
		}
		for _, k := range page {
			after = k.Subject
			if k.Erased() || k.KEK == to.KEK() {
				continue
			}
			dek, err := p.kek.Unwrap(ctx, k.KEK, k.Subject, k.Wrapped)
			if err != nil {
				return n, strata.Errorf(strata.Unavailable, op, "subject %q: %w", k.Subject, err)
			}
			wrapped, err := to.Wrap(ctx, k.Subject, dek)
			zero(dek)
			if err != nil {
				return n, strata.Errorf(strata.Unavailable, op, "subject %q: %w", k.Subject, err)
			}
			ok, err := p.keys.RewrapSubjectKey(ctx, k.Subject, k.KEK, to.KEK(), wrapped)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		if len(page) < 500 {
			return n, nil
		}
	}
}

// subjectOf reads the subject field of a Go value through its field index, or returns "".
func subjectOf(v any, pl plan) string {
	if pl.subjectIndex == nil || v == nil {
		return ""
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return ""
		}
		rv = rv.Elem()
	}
	f, err := rv.FieldByIndexErr(pl.subjectIndex)
	if err != nil || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}

// stringAt returns the string at a dot-separated path of a JSON object.
func stringAt(data []byte, path string) (string, bool) {
	var found string
	var ok bool
	_, _ = rewrite(data, func(keys [][]byte, raw []byte) bool { return len(raw) > 0 && raw[0] == '"' && pathString(keys) == path },
		func(_ [][]byte, raw []byte) ([]byte, error) {
			if err := jsonUnquote(raw, &found); err == nil {
				ok = true
			}
			return raw, nil
		})
	return found, ok
}
