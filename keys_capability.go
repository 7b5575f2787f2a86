package strata

import (
	"context"
	"time"
)

// SubjectKey is a data subject's data-encryption key as the store keeps it: wrapped (encrypted)
// by a key-encryption key that never reaches the store. Package shred creates, unwraps and
// erases them.
//
// A key belongs to one tenant: a subject ID is scoped by the tenant whose data it names, so that
// (Tenant, Subject) identifies a key. The same subject ID in two tenants names two data subjects,
// with two keys that are created, erased and listed apart: one tenant can neither read, nor
// erase, nor learn of the other's.
type SubjectKey struct {
	// Tenant is the tenant whose personal data the key protects: the Metadata.Tenant of the
	// events it seals (and of the stream whose snapshots it seals); "" for events without a
	// tenant. It is "" or a valid tenant name (see [ValidateKeyTenant]).
	Tenant string
	// Subject identifies the data subject within its tenant: a pseudonymous ID such as
	// "subject-4711", never a name or an e-mail address (it is stored in clear).
	Subject string
	// KEK names the key-encryption key that wrapped Wrapped.
	KEK string
	// Wrapped is the data key, encrypted under the KEK. Empty once the subject is erased.
	Wrapped []byte
	// CreatedAt is when the key was stored; ErasedAt when it was erased (zero while it lives).
	CreatedAt, ErasedAt time.Time
}

// Erased reports whether the subject's key was erased.
func (k SubjectKey) Erased() bool { return !k.ErasedAt.IsZero() }

// KeyStore keeps the wrapped data keys of data subjects, one per (tenant, subject). Erasing a
// key keeps a tombstone (Tenant, Subject, KEK, CreatedAt, ErasedAt; Wrapped empty), so that an
// erased subject is never given a fresh key by a late writer and erasures stay auditable.
// Every method that names a key takes its tenant and its subject; a tenant is "" or a valid
// tenant name ([ValidateKeyTenant]), a subject a valid subject ([ValidateSubject]).
type KeyStore interface {
	// CreateSubjectKey stores k unless (k.Tenant, k.Subject) has a key or a tombstone already,
	// and returns what is stored: k, the key another writer stored first, or the tombstone of
	// an erased subject (check Erased). Concurrent creators of one key all get the one stored
	// key; keys of the same subject in other tenants are not looked at. CreatedAt is set by the
	// store (its clock, UTC, microseconds); k's CreatedAt and ErasedAt are ignored. Tenant,
	// Subject and KEK must be valid names and Wrapped 1 to MaxWrappedKeyLen bytes (see
	// [PrepareSubjectKey]); bad input is an Invalid error and nothing is written.
	CreateSubjectKey(ctx context.Context, k SubjectKey) (SubjectKey, error)
	// SubjectKey returns the key or tombstone of the tenant's subject, or a NotFound error (see
	// [SubjectKeyNotFound]).
	SubjectKey(ctx context.Context, tenant, subject string) (SubjectKey, error)
	// EraseSubjectKey deletes the wrapped key of the tenant's subject for good, leaving the
	// tombstone; the subject's keys in other tenants are untouched. Erasing an erased subject
	// changes nothing; a subject without a key gets a tombstone, so that no key is created for
	// it later. It returns the tombstone. Wrapped is emptied and ErasedAt set (store clock, UTC,
	// microseconds) in one statement; a tombstone made for a subject without a key has an empty
	// KEK and CreatedAt equal to ErasedAt.
	EraseSubjectKey(ctx context.Context, tenant, subject string) (SubjectKey, error)
	// ListSubjectKeys returns up to limit keys and tombstones after the cursor, in the order of
	// (Subject, Tenant) (byte order of each): the keys of one subject in every tenant are
	// adjacent. A key comes after the cursor when its Subject is greater than after.Subject, or
	// equal with a greater Tenant; only after's Subject and Tenant are read. Pass the last key
	// of a page for the next one, or the zero SubjectKey to start. A limit of 0 or less means
	// DefaultSubjectKeyLimit (1000). The cursor need not be stored (see
	// [ValidateSubjectCursor]).
	ListSubjectKeys(ctx context.Context, after SubjectKey, limit int) ([]SubjectKey, error)
	// RewrapSubjectKey replaces the wrapped key of the tenant's subject if it is still wrapped
	// by oldKEK (a compare-and-swap, so that concurrent rotations and erasures are safe). It
	// returns false when the stored key is erased, missing, or wrapped by another KEK, and then
	// changes nothing. CreatedAt is kept. The arguments follow the rules of CreateSubjectKey (see
	// [PrepareRewrap]).
	RewrapSubjectKey(ctx context.Context, tenant, subject, oldKEK, newKEK string, wrapped []byte) (bool, error)
}

// EventSchema declares which fields of an event type's JSON payload hold personal data, for
// writers that do not use Go struct tags (the CLI, the HTTP API, other languages).
type EventSchema struct {
	// Type is the event type.
	Type string
	// Sensitive lists the JSON paths of the personal-data fields, in the syntax of
	// [ParseFieldPath]: dot-separated names ("subjectDN", "holder.email"), "[]" for every
	// element of an array ("approvers[].email") and "*" for every member of an object
	// ("contacts.*.email").
	Sensitive []string
	// Subject is the JSON path of the field that names the data subject: one field, outside
	// arrays, maps and the sensitive paths.
	Subject string
}

// SchemaStore keeps event schemas in the database, so that every writer of a store applies the
// same protection.
type SchemaStore interface {
	// SetEventSchema stores s, replacing the schema of its type. Bad input (see
	// [PrepareEventSchema]) is an Invalid error and nothing is written.
	SetEventSchema(ctx context.Context, s EventSchema) error
	// EventSchemas returns every stored schema, in Type order (byte order), each with its
	// Sensitive paths in the order they were set.
	EventSchemas(ctx context.Context) ([]EventSchema, error)
}
