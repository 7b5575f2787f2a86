package shred

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// Tenants. A data key belongs to one (tenant, subject) (strata.SubjectKey): the personal data of
// subject S in the events of tenant T (Metadata.Tenant, "" for none) is sealed under the key of
// (T, S), and a snapshot under the key of its stream's tenant (the tenant of the stream's first
// event). The same subject ID in two tenants therefore names two data subjects, with two keys:
// one tenant's erasure never touches the other's data, and one tenant's writes never reveal,
// block or share the other's subjects. EraseTenant is the erasure of one tenant (the HTTP API's);
// Erase, the operator's, erases the subject in every tenant.
//
// Why not one key per subject, recording the tenant that made it? Then a second tenant writing
// the same subject ID would either share the first tenant's key (and lose its data to the first
// tenant's erasure) or be refused (and learn that the ID exists elsewhere, or be locked out of
// an ID another tenant took first). Scoping the key by tenant has neither problem and costs
// nothing at run time: the tenant is in every event's metadata.

// cacheKey names the data key of a tenant's subject in the key cache. Being a pair rather
// than a joined string, it costs a lookup no allocation.
type cacheKey struct{ tenant, subject string }

// ofTenant names a tenant in an error message.
func ofTenant(tenant string) string {
	if tenant == "" {
		return ""
	}
	return fmt.Sprintf(" of tenant %q", tenant)
}

// TenantErasureStream returns the stream where EraseTenant records the erasure of the tenant's
// subject: ErasureStream(subject) for the tenant "", else "erasure@" + TENANT + "/" + subject
// with "%", "/" and "#" of the tenant escaped as %25, %2F and %23, so that two tenants never
// share a stream. A name longer than strata.MaxStreamNameLen is replaced by "erasure@#" and 40
// hex digits of a SHA-256 of the tenant and the subject. Tenants never write these streams
// themselves over the HTTP API (see IsErasureStream).
func TenantErasureStream(tenant, subject string) string {
	if tenant == "" {
		return ErasureStream(subject)
	}
	name := "erasure@" + tenantEscaper.Replace(tenant) + "/" + subject
	if len(name) <= strata.MaxStreamNameLen {
		return name
	}
	h := sha256.Sum256([]byte(tenant + "\x00" + subject))
	return "erasure@#" + hex.EncodeToString(h[:20])
}

var tenantEscaper = strings.NewReplacer("%", "%25", "/", "%2F", "#", "%23")

// IsErasureStream reports whether stream is a name ErasureStream or TenantErasureStream may
// give: a stream that only erasures write.
func IsErasureStream(stream string) bool {
	return strings.HasPrefix(stream, "erasure-") || strings.HasPrefix(stream, "erasure@")
}

// erasureTenantKey is the context key of ErasedTenant.
type erasureTenantKey struct{}

// ErasedTenant tells an erasure hook whose subject is erased: the tenant and true during
// EraseTenant, false during Erase (the subject is erased in every tenant). A hook of a read model
// that holds several tenants' data drops only that tenant's rows when ok is set.
func ErasedTenant(ctx context.Context) (tenant string, ok bool) {
	tenant, ok = ctx.Value(erasureTenantKey{}).(string)
	return tenant, ok
}

// HasSubject reports whether the tenant's subject has a data key or a tombstone: whether the
// tenant ever had personal data of it (or erased it). It looks at no other tenant.
func (p *Protector) HasSubject(ctx context.Context, tenant, subject string) (bool, error) {
	_, err := p.keys.SubjectKey(ctx, tenant, subject)
	switch {
	case err == nil:
		return true, nil
	case strata.ErrorCode(err) == strata.NotFound:
		return false, nil
	}
	return false, err
}

// EraseTenant erases the data subject of one tenant: it destroys the data key of (tenant,
// subject), so that the subject's sensitive fields in that tenant's events and snapshots read as
// redacted from now on, records a SubjectErased event with meta in TenantErasureStream(tenant,
// subject) (meta.Tenant is set to tenant; another tenant there is Invalid), and calls the
// erasure hooks (ErasedTenant reports the tenant to them). The subject's keys in other tenants
// are not looked at. The tenant "" is refused (Invalid): its record would read as Erase's,
// every tenant's, so the subject of no tenant is erased with Erase. A subject the tenant has no
// key or tombstone of is a NotFound error, and
// nothing is written: the tenant has no personal data of it. Erasing an erased subject records
// nothing new and returns the tombstone. A failing hook is returned, to be retried with another
// EraseTenant; the key is gone either way.
func (p *Protector) EraseTenant(ctx context.Context, tenant, subject string, meta strata.Metadata) (strata.SubjectKey, error) {
	const op = "shred erase"
	if err := strata.ValidateStreamName(op, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := strata.ValidateKeyTenant(op, tenant); err != nil {
		return strata.SubjectKey{}, err
	}
	if tenant == "" {
		// Its record would carry no tenant, which is how Erase's reads: projections would drop
		// the subject's rows of every tenant while their keys live on.
		return strata.SubjectKey{}, strata.Errorf(strata.Invalid, op, "the subject %q of no tenant is erased with Erase (strata erase without --tenant), which erases it in every tenant: an erasure of the no-tenant scope alone would be recorded as that one", subject)
	}
	switch meta.Tenant {
	case "", tenant:
		meta.Tenant = tenant
	default:
		return strata.SubjectKey{}, strata.Errorf(strata.Invalid, op, "the erasure of a subject of tenant %q cannot be recorded for tenant %q", tenant, meta.Tenant)
	}
	// Keys are never deleted: a key found here is still there for EraseSubjectKey, which then
	// erases it rather than inserting a tombstone.
	if _, err := p.keys.SubjectKey(ctx, tenant, subject); err != nil {
		if strata.ErrorCode(err) == strata.NotFound {
			return strata.SubjectKey{}, strata.Errorf(strata.NotFound, op, "no data subject %q%s", subject, ofTenant(tenant))
		}
		return strata.SubjectKey{}, err
	}
	tomb, err := p.keys.EraseSubjectKey(ctx, tenant, subject)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	p.cache.putErased(cacheKey{tenant, subject})
	return tomb, p.recordErasure(context.WithValue(ctx, erasureTenantKey{}, tenant), op, tomb, TenantErasureStream(tenant, subject), tenant, meta)
}

// eraseTenants erases the subject's keys of every tenant but "" (which Erase erases itself).
func (p *Protector) eraseTenants(ctx context.Context, subject string) error {
	after := strata.SubjectKey{Subject: subject} // the key of "" sorts first; it is not listed
	for {
		page, err := p.keys.ListSubjectKeys(ctx, after, 100)
		if err != nil {
			return err
		}
		for _, k := range page {
			if k.Subject != subject {
				return nil
			}
			after = k
			if !k.Erased() {
				if _, err := p.keys.EraseSubjectKey(ctx, k.Tenant, subject); err != nil {
					return err
				}
			}
			p.cache.putErased(cacheKey{k.Tenant, subject})
		}
		if len(page) < 100 {
			return nil
		}
	}
}

// recordErasure appends the SubjectErased event of tomb to stream and runs the hooks. The
// event's ID derives from the tenant, the subject and the time of the erasure, so that erasing
// twice records one event.
func (p *Protector) recordErasure(ctx context.Context, op string, tomb strata.SubjectKey, stream, tenant string, meta strata.Metadata) error {
	subject := tomb.Subject
	at := tomb.ErasedAt.UTC().Format(time.RFC3339Nano)
	body := fmt.Sprintf(`{"subject":%q,"erasedAt":%q}`, subject, at)
	name := "strata:erasure\x00" + subject + "\x00" + at
	if tenant != "" {
		name = "strata:erasure\x00" + tenant + "\x00" + subject + "\x00" + at
	}
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(name))
	if _, err := p.store.Append(ctx, stream, strata.Any, strata.EventData{ID: id, Type: SubjectErasedType, Data: []byte(body), Meta: meta}); err != nil {
		return err
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
		return strata.Errorf(strata.Unavailable, op, "subject %q%s is erased, but an erasure hook failed (erase again to retry): %w", subject, ofTenant(tenant), err)
	}
	return nil
}

// streamOwners caches the tenants of streams, for snapshots, which carry no metadata: a
// snapshot's personal data is sealed under the key of its stream's tenant, the tenant of the
// stream's first event (which never changes). The zero value is ready; the map is emptied when
// it reaches maxStreamOwners.
type streamOwners struct {
	mu sync.Mutex
	m  map[string]string
}

const maxStreamOwners = 100_000

// streamTenant returns the tenant of the stream's first event, "" for a stream without events.
func (p *Protector) streamTenant(ctx context.Context, stream string) (string, error) {
	o := &p.owners
	o.mu.Lock()
	t, ok := o.m[stream]
	o.mu.Unlock()
	if ok {
		return t, nil
	}
	for e, err := range p.store.ReadStream(ctx, stream, strata.ReadStreamOptions{Limit: 1}) {
		if err != nil {
			return "", err
		}
		o.mu.Lock()
		if o.m == nil || len(o.m) >= maxStreamOwners {
			o.m = make(map[string]string)
		}
		o.m[stream] = e.Meta.Tenant
		o.mu.Unlock()
		return e.Meta.Tenant, nil
	}
	return "", nil
}
