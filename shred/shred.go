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
// The tags are followed as encoding/json lays the type out: into nested and embedded structs,
// pointers, the elements of slices and arrays ("approvers[].email") and the values of maps
// ("contacts.*.email"). Tags it cannot follow (a type that encodes itself, a recursive type, a
// subject inside a slice, a tagged value behind an interface) are refused with an error wrapping
// ErrUnprotectable, never written in clear.
//
// Install a Protector as a transform of the codec registry (reg.Use(p)): every path that
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
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// MetaSubject is the metadata key that names an event's data subject, [strata.Metadata.Subject].
// Encoding sets it on every event with sensitive fields; a writer may set it to name the subject
// of an event whose type has no subject field.
const MetaSubject = strata.MetaSubject

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
	owners  streamOwners // the tenants of snapshotted streams (tenant.go)
	// kekChecked is set once kek proved to open the store's data keys (checkKEK).
	kekChecked atomic.Bool

	plans sync.Map // reflect.Type -> *plan

	mu       sync.RWMutex
	declared map[string]*plan // by event type, from the SchemaStore
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
	p := &Protector{store: store, keys: keys, kek: kek, cache: newKeyCache(o.cacheSize, o.cacheTTL), declared: map[string]*plan{}}
	p.schemas, _ = store.(strata.SchemaStore)
	if err := p.Reload(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the declared event schemas again (after another process declared one).
func (p *Protector) Reload(ctx context.Context) error {
	if p.schemas == nil {
		return nil
	}
	list, err := p.schemas.EventSchemas(ctx)
	if err != nil {
		return err
	}
	declared := make(map[string]*plan, len(list))
	for _, s := range list {
		declared[s.Type] = declaredPlan(s)
	}
	p.mu.Lock()
	p.declared = declared
	p.mu.Unlock()
	return nil
}

// Declare stores which JSON paths of an event type are sensitive and which names the subject,
// for events written as raw JSON (the CLI, the HTTP API). The paths follow
// strata.ParseFieldPath ("approvers[].email", "contacts.*.email"); a malformed path, or a
// subject path inside an array, a map or a sensitive path, is an Invalid error and nothing is
// stored. Struct tags take precedence for Go types that have them.
func (p *Protector) Declare(ctx context.Context, s strata.EventSchema) error {
	const op = "shred declare"
	if p.schemas == nil {
		return strata.Errorf(strata.Invalid, op, "the store keeps no event schemas (%T)", p.store)
	}
	if _, err := strata.PrepareEventSchema(op, s); err != nil {
		return err
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

// typePlan returns the plan of the struct tags of v's type (through pointers), or nil for nil.
func (p *Protector) typePlan(v any) *plan {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return p.planForType(t)
}

// planForType returns the plan of t's struct tags, cached per type.
func (p *Protector) planForType(t reflect.Type) *plan {
	if cached, ok := p.plans.Load(t); ok {
		return cached.(*plan)
	}
	pl := planOfType(t)
	if pl.err == nil {
		pl.direct = directFieldsOf(t)
	}
	p.plans.Store(t, pl)
	return pl
}

// CheckType implements codec.TypeChecker: a registry with the Protector installed refuses to
// register a Go type whose fields tagged strata it cannot reach (see ErrUnprotectable), rather
// than let its values be written with personal data in clear. Encode refuses the values of such
// a type all the same, for types registered before the Protector was installed.
func (p *Protector) CheckType(name string, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if pl := p.planForType(t); pl.err != nil {
		return strata.Errorf(strata.Invalid, "shred check type", "event type %q (Go type %s): %w", name, t, pl.err)
	}
	return nil
}

// planOf returns the plan for encoding v as an event of type typ: from the struct tags of v's
// type, else from the schema declared for typ. The values behind the interfaces of v are
// checked for tags the plan cannot follow. An error is an Invalid *strata.Error.
func (p *Protector) planOf(op string, v any, typ string) (*plan, error) {
	pl := p.typePlan(v)
	if pl != nil {
		if pl.err != nil {
			return nil, strata.Errorf(strata.Invalid, op, "event type %q (Go type %T): %w", typ, v, pl.err)
		}
		if pl.dynamic {
			if err := checkValue(v); err != nil {
				return nil, strata.Errorf(strata.Invalid, op, "event type %q (Go type %T): %w", typ, v, err)
			}
		}
	}
	if pl.empty() {
		p.mu.RLock()
		pl = p.declared[typ]
		p.mu.RUnlock()
		if pl != nil && pl.err != nil {
			return nil, strata.Errorf(strata.Invalid, op, "event type %q: its declared schema cannot be applied, declare it again (strata schema set): %w", typ, pl.err)
		}
	}
	return pl, nil
}

// Encode implements codec.Transform: it encrypts the sensitive fields of rec under the subject's
// data key, creating the key for a new subject.
func (p *Protector) Encode(ctx context.Context, v any, rec *codec.Record) error {
	const op = "shred encode"
	pl, err := p.planOf(op, v, rec.Type)
	if err != nil {
		return err
	}
	if pl.empty() {
		if err := checkLookalikes(rec.Data); err != nil {
			return strata.Errorf(strata.Invalid, op, "event type %q: %w", rec.Type, err)
		}
		return nil
	}
	subject := rec.Meta.Subject
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
	// The walk that seals the fields refuses lookalikes on its way. A subject whose key is not
	// cached is checked before, so that a refused event makes no key.
	aead, erased, inWalk := p.cache.get(cacheKey{rec.Meta.Tenant, subject})
	if !inWalk {
		if err := checkLookalikes(rec.Data); err != nil {
			return strata.Errorf(strata.Invalid, op, "event type %q: %w", rec.Type, err)
		}
		var err error
		if aead, erased, err = p.dataKey(ctx, rec.Meta.Tenant, subject, true); err != nil {
			return err
		}
	}
	if erased {
		return strata.Errorf(strata.Forbidden, op, "event type %q names data subject %q: %w; its personal data is not written again", rec.Type, subject, ErrErased)
	}
	data, err := sealFields(rec.Data, fields{plan: pl, aead: aead, id: rec.ID, typ: rec.Type, subject: subject, lookalikes: inWalk})
	if err != nil {
		return strata.Errorf(strata.Invalid, op, "event type %q: %w", rec.Type, err)
	}
	rec.Data = data
	rec.Meta.Subject = subject
	return nil
}

// Decode implements codec.Transform: it decrypts the encrypted fields of rec, or replaces them
// with redaction markers when the subject was erased. Tampered or moved ciphertext is an error.
func (p *Protector) Decode(ctx context.Context, rec *codec.Record) error {
	if !bytes.Contains(rec.Data, []byte(envelopePrefix)) {
		return nil
	}
	return openRecord(rec, nil, fields{id: rec.ID, typ: rec.Type, subject: rec.Meta.Subject, tenant: rec.Meta.Tenant, p: p, ctx: ctx})
}

// openRecord sets rec.Data to its payload opened by f (see openFieldsInto, which out goes to).
// An error is a *strata.Error.
func openRecord(rec *codec.Record, out []byte, f fields) error {
	data, err := openFieldsInto(out, rec.Data, f)
	if err != nil {
		var se *strata.Error
		if errors.As(err, &se) {
			return err
		}
		return strata.Errorf(strata.Invalid, "shred decode", "event %s field of subject %q: %w", rec.ID, f.subject, err)
	}
	rec.Data = data
	return nil
}

// envelopeToken is how an envelope starts in JSON.
var envelopeToken = []byte(`"` + envelopePrefix)

// ErrLookalike is wrapped by the Invalid error for a payload with a value in clear that starts
// like an encrypted field: every read would take it for one, and fail.
var ErrLookalike = errors.New("a value in clear starts like an encrypted field")

// checkLookalikes returns an error wrapping ErrLookalike when a string value of the JSON
// document data (in clear, before sealing) starts like an envelope. It costs one search of
// data for the prefix; only a document that holds it is walked.
func checkLookalikes(data []byte) error {
	if !bytes.Contains(data, envelopeToken) {
		return nil
	}
	var at string
	found := false // at is "" for a value under the empty member name
	if _, err := rewrite(data, func(keys [][]byte, raw []byte) bool {
		if !found && isEnvelope(raw) {
			at, found = pathString(keys), true
		}
		return false
	}, nil); err != nil {
		return err
	}
	if found {
		return fmt.Errorf("%w: the value at %q starts with %q, and would make the event unreadable", ErrLookalike, at, envelopePrefix)
	}
	return nil
}

// dataKey returns the data key of the tenant's subject, whether it is erased, creating it when
// create is set and the subject has none in the tenant (see keyOf in tenant.go).
func (p *Protector) dataKey(ctx context.Context, tenant, subject string, create bool) (cipher.AEAD, bool, error) {
	const op = "shred key"
	ck := cacheKey{tenant, subject}
	if aead, erased, ok := p.cache.get(ck); ok {
		return aead, erased, nil
	}
	if err := strata.ValidateKeyTenant(op, tenant); err != nil {
		return nil, false, strata.Errorf(strata.Invalid, op, "data subject %q: the tenant of its event cannot hold data keys: %w", subject, err)
	}
	if p.kek == nil {
		return nil, false, strata.Errorf(strata.Unavailable, op, "subject %q has personal data, and no key-encryption key is configured (STRATA_KEK, STRATA_KEK_FILE or --kek-file)", subject)
	}
	gen := p.cache.generation()
	k, err := p.keys.SubjectKey(ctx, tenant, subject)
	switch {
	case errors.Is(err, strata.ErrNotFound) && create:
		if err := p.checkKEK(ctx); err != nil {
			return nil, false, err
		}
		dek := make([]byte, 32)
		if _, err := rand.Read(dek); err != nil {
			return nil, false, strata.Errorf(strata.Internal, op, "generate data key: %w", err)
		}
		wrapped, werr := p.kek.Wrap(ctx, subject, dek)
		zero(dek)
		if werr != nil {
			return nil, false, strata.Errorf(strata.Unavailable, op, "wrap the data key of %q: %w", subject, werr)
		}
		if k, err = p.keys.CreateSubjectKey(ctx, strata.SubjectKey{Tenant: tenant, Subject: subject, KEK: p.kek.KEK(), Wrapped: wrapped}); err != nil {
			return nil, false, err
		}
	case errors.Is(err, strata.ErrNotFound):
		return nil, false, strata.Errorf(strata.NotFound, op, "no data key for subject %q%s: the store holds its encrypted fields but not its key (restored without the keys table?)", subject, ofTenant(tenant))
	case err != nil:
		return nil, false, err
	}
	if k.Erased() {
		p.cache.putTombstone(ck)
		return nil, true, nil
	}
	dek, err := p.kek.Unwrap(ctx, k.KEK, subject, k.Wrapped)
	if err != nil {
		return nil, false, strata.Errorf(strata.Unavailable, op, "subject %q%s: %w", subject, ofTenant(tenant), err)
	}
	aead, err := newAEAD(dek)
	zero(dek)
	if err != nil {
		return nil, false, strata.Errorf(strata.Internal, op, "subject %q: %w", subject, err)
	}
	p.cache.putLive(ck, aead, gen)
	return aead, false, nil
}

// kekCheckKeys bounds the data keys checkKEK reads to find one that is not erased.
const kekCheckKeys = 1000

// checkKEK makes sure, once per Protector, that its key-encryption key opens the data keys the
// store holds before it wraps a new one. A wrong or new key file would otherwise wrap the keys
// of new subjects under a KEK that the right one cannot open, and their personal data would be
// lost once the configuration is put right. It unwraps the first live key (not erased) that
// another KEK wrapped; a store with none, or with only erased keys among the first
// kekCheckKeys, passes.
func (p *Protector) checkKEK(ctx context.Context) error {
	const op = "shred key"
	if p.kekChecked.Load() {
		return nil
	}
	after := strata.SubjectKey{}
	for read := 0; read < kekCheckKeys; {
		page, err := p.keys.ListSubjectKeys(ctx, after, 100)
		if err != nil {
			return err
		}
		for _, k := range page {
			after = k
			if k.Erased() {
				continue
			}
			if k.KEK != p.kek.KEK() {
				dek, err := p.kek.Unwrap(ctx, k.KEK, k.Subject, k.Wrapped)
				if err != nil {
					return strata.Errorf(strata.Unavailable, op, "no data key is made under key-encryption key %s: this store's data keys are wrapped by %s, which it cannot open (%w); configure that key (STRATA_KEK, STRATA_KEK_FILE or --kek-file), or hold both in a keyring and rotate (strata keys rotate-kek)", p.kek.KEK(), k.KEK, err)
				}
				zero(dek)
			}
			p.kekChecked.Store(true)
			return nil
		}
		read += len(page)
		if len(page) < 100 {
			break
		}
	}
	p.kekChecked.Store(true)
	return nil
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

// SubjectErased is the event Erase records in ErasureStream(subject), and EraseTenant in
// TenantErasureStream(tenant, subject) with the tenant in its metadata. It holds no personal
// data: the subject is a pseudonymous ID.
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

// Erase erases the data subject in every tenant: it destroys every data key the subject has
// (the key of each tenant whose events hold its personal data, and the key of events without a
// tenant, which it leaves as a tombstone even when there was none, so that no key is created
// for the subject without a tenant later), so that every sensitive field of the subject reads
// as redacted from now on. It records a SubjectErased event with meta (who asked, why) in
// ErasureStream(subject) and calls the erasure hooks (ErasedTenant reports ok false to them).
// It returns the tombstone of the key without a tenant. Erasing twice records one event. The
// keys are gone before the hooks run: a failing hook is returned, to be retried with another
// Erase, but nothing can bring the data back. This is the erasure of an operator who acts for
// every tenant (`strata erase`); a tenant's erasure is EraseTenant.
//
// A tenant that writes its first personal data of the subject while Erase runs may keep it:
// the same subject ID in a tenant that has no data of it yet is another data subject.
func (p *Protector) Erase(ctx context.Context, subject string, meta strata.Metadata) (strata.SubjectKey, error) {
	const op = "shred erase"
	if err := strata.ValidateStreamName(op, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if meta.Tenant != "" {
		// Recorded as that tenant's, the erasure would make projections drop that tenant's
		// rows only, though every tenant's key is gone.
		return strata.SubjectKey{}, strata.Errorf(strata.Invalid, op, "the erasure in every tenant is recorded without a tenant, not as tenant %q's; erase one tenant's subject with EraseTenant (strata erase --tenant)", meta.Tenant)
	}
	if err := p.eraseTenants(ctx, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	tomb, err := p.keys.EraseSubjectKey(ctx, "", subject)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	p.cache.putErased(cacheKey{"", subject})
	return tomb, p.recordErasure(ctx, op, tomb, ErasureStream(subject), "", meta)
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
	n, after := 0, strata.SubjectKey{}
	for {
		page, err := p.keys.ListSubjectKeys(ctx, after, 500)
		if err != nil {
			return n, err
		}
		for _, k := range page {
			after = k
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
			ok, err := p.keys.RewrapSubjectKey(ctx, k.Tenant, k.Subject, k.KEK, to.KEK(), wrapped)
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
func subjectOf(v any, pl *plan) string {
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
