package inmem

import (
	"context"
	"slices"
	"strings"

	"github.com/strata-events/strata"
)

var (
	_ strata.KeyStore    = (*Store)(nil)
	_ strata.SchemaStore = (*Store)(nil)
)

// keyData is the store's strata.KeyStore and strata.SchemaStore state, guarded by Store.mu. The
// zero value is empty; the maps are made on first write.
type keyData struct {
	subjects map[keyRef]strata.SubjectKey  // tombstones have empty Wrapped
	schemas  map[string]strata.EventSchema // by type
}

// keyRef identifies a data key: a subject of a tenant.
type keyRef struct{ tenant, subject string }

// cloneKey returns k with its own copy of Wrapped, never nil.
func cloneKey(k strata.SubjectKey) strata.SubjectKey {
	k.Wrapped = append([]byte{}, k.Wrapped...)
	return k
}

// CreateSubjectKey implements strata.KeyStore.
func (s *Store) CreateSubjectKey(ctx context.Context, k strata.SubjectKey) (strata.SubjectKey, error) {
	const op = "create subject key"
	k, err := strata.PrepareSubjectKey(op, k)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.SubjectKey{}, err
	}
	defer s.mu.Unlock()
	ref := keyRef{k.Tenant, k.Subject}
	if old, ok := s.keys.subjects[ref]; ok {
		return cloneKey(old), nil
	}
	if s.keys.subjects == nil {
		s.keys.subjects = make(map[keyRef]strata.SubjectKey)
	}
	k.CreatedAt = strata.Timestamp(s.now())
	s.keys.subjects[ref] = k
	return cloneKey(k), nil
}

// SubjectKey implements strata.KeyStore.
func (s *Store) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "subject key"
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.SubjectKey{}, err
	}
	defer s.mu.RUnlock()
	k, ok := s.keys.subjects[keyRef{tenant, subject}]
	if !ok {
		return strata.SubjectKey{}, strata.SubjectKeyNotFound(op, tenant, subject)
	}
	return cloneKey(k), nil
}

// EraseSubjectKey implements strata.KeyStore.
func (s *Store) EraseSubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "erase subject key"
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.SubjectKey{}, err
	}
	defer s.mu.Unlock()
	ref := keyRef{tenant, subject}
	k, ok := s.keys.subjects[ref]
	if ok && k.Erased() {
		return cloneKey(k), nil
	}
	now := strata.Timestamp(s.now())
	if !ok {
		k = strata.SubjectKey{Tenant: tenant, Subject: subject, CreatedAt: now}
	}
	clear(k.Wrapped) // the map's copy is the only one; overwrite it before dropping it
	k.Wrapped, k.ErasedAt = []byte{}, now
	if s.keys.subjects == nil {
		s.keys.subjects = make(map[keyRef]strata.SubjectKey)
	}
	s.keys.subjects[ref] = k
	return cloneKey(k), nil
}

// ListSubjectKeys implements strata.KeyStore.
func (s *Store) ListSubjectKeys(ctx context.Context, after strata.SubjectKey, limit int) ([]strata.SubjectKey, error) {
	const op = "list subject keys"
	if err := strata.ValidateSubjectCursor(op, after); err != nil {
		return nil, err
	}
	limit = strata.SubjectKeyLimit(limit)
	if err := s.rlock(ctx, op); err != nil {
		return nil, err
	}
	var keys []strata.SubjectKey
	for _, k := range s.keys.subjects {
		if strata.SubjectKeyAfter(k, after) {
			keys = append(keys, cloneKey(k))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(keys, strata.CompareSubjectKeys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}

// RewrapSubjectKey implements strata.KeyStore.
func (s *Store) RewrapSubjectKey(ctx context.Context, tenant, subject, oldKEK, newKEK string, wrapped []byte) (bool, error) {
	const op = "rewrap subject key"
	wrapped, err := strata.PrepareRewrap(op, tenant, subject, oldKEK, newKEK, wrapped)
	if err != nil {
		return false, err
	}
	if err := s.lock(ctx, op); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	ref := keyRef{tenant, subject}
	k, ok := s.keys.subjects[ref]
	if !ok || k.Erased() || k.KEK != oldKEK {
		return false, nil
	}
	k.KEK, k.Wrapped = newKEK, wrapped
	s.keys.subjects[ref] = k
	return true, nil
}

// SetEventSchema implements strata.SchemaStore.
func (s *Store) SetEventSchema(ctx context.Context, schema strata.EventSchema) error {
	const op = "set event schema"
	schema, err := strata.PrepareEventSchema(op, schema)
	if err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.keys.schemas == nil {
		s.keys.schemas = make(map[string]strata.EventSchema)
	}
	s.keys.schemas[schema.Type] = schema
	return nil
}

// EventSchemas implements strata.SchemaStore.
func (s *Store) EventSchemas(ctx context.Context) ([]strata.EventSchema, error) {
	const op = "event schemas"
	if err := s.rlock(ctx, op); err != nil {
		return nil, err
	}
	schemas := make([]strata.EventSchema, 0, len(s.keys.schemas))
	for _, sc := range s.keys.schemas {
		sc.Sensitive = slices.Clone(sc.Sensitive)
		schemas = append(schemas, sc)
	}
	s.mu.RUnlock()
	slices.SortFunc(schemas, func(a, b strata.EventSchema) int { return strings.Compare(a.Type, b.Type) })
	return schemas, nil
}
