package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// The fixture of the backends' tests of the migration that gave data keys a tenant: before it,
// a store kept one key per subject. A backend test appends LegacyKeyEvents to a fresh store,
// puts the keys table back in its old form holding the keys LegacyKeyEvents returns, reopens the
// store (which runs the migration) and checks the result with WantUpgradedKeyTenants.

// LegacyKeyEvents appends events that hold ciphertext of data subjects in several tenants (and
// some that do not) and returns the keys a store kept for them before keys had tenants: one
// per subject, Tenant empty, the last one erased. CreatedAt and ErasedAt are whole
// microseconds in UTC.
func LegacyKeyEvents(t testing.TB, st strata.Store) []strata.SubjectKey {
	t.Helper()
	ctx := testContext(t)
	sealed := func(tenant, subject string) strata.EventData {
		return strata.EventData{Type: "CertificateIssued",
			Data: fmt.Appendf(nil, `{"serial":"1","subjectDN":"strata:enc:v1:s:%s"}`, subject),
			Meta: strata.Metadata{Tenant: tenant, Subject: subject}}
	}
	plain := func(tenant, subject string) strata.EventData {
		e := sealed(tenant, subject)
		e.Data = []byte(`{"serial":"1"}`)
		return e
	}
	for i, e := range []strata.EventData{
		sealed("acme", "s-acme"),
		sealed("acme", "s-shared"), sealed("beta", "s-shared"), sealed("acme", "s-shared"),
		sealed("", "s-none"),
		sealed("acme", "s-mixed"), sealed("", "s-mixed"),
		plain("beta", "s-plain"), // names a subject, holds no ciphertext
		sealed("acme", "s-erased"),
	} {
		if _, err := st.Append(ctx, fmt.Sprintf("legacy-%d", i), strata.NoStream, e); err != nil {
			t.Fatalf("append legacy event %d: %v", i, err)
		}
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var keys []strata.SubjectKey
	for i, subject := range []string{"s-acme", "s-shared", "s-none", "s-mixed", "s-plain", "s-orphan"} {
		keys = append(keys, strata.SubjectKey{Subject: subject, KEK: "local:legacy", Wrapped: []byte("wrapped-" + subject),
			CreatedAt: at.Add(time.Duration(i) * time.Second)})
	}
	keys = append(keys, strata.SubjectKey{Subject: "s-erased", KEK: "local:legacy", Wrapped: []byte{}, CreatedAt: at, ErasedAt: at.Add(time.Hour)})
	return keys
}

// WantUpgradedKeyTenants checks that the migration gave each legacy key (from
// LegacyKeyEvents) to the tenants whose events hold ciphertext of its subject, and left the
// others without a tenant, each copy with the legacy key's KEK, bytes and times.
func WantUpgradedKeyTenants(t testing.TB, ks strata.KeyStore, legacy []strata.SubjectKey) {
	t.Helper()
	want := map[string][]string{
		"s-acme":   {"acme"},
		"s-shared": {"acme", "beta"},
		"s-none":   {""},
		"s-mixed":  {"", "acme"},
		"s-plain":  {""},
		"s-orphan": {""},
		"s-erased": {"acme"},
	}
	var n int
	for _, old := range legacy {
		tenants := want[old.Subject]
		n += len(tenants)
		for _, tenant := range tenants {
			got := mustGetKeyOf(t, ks, tenant, old.Subject)
			w := old
			w.Tenant = tenant
			if got.Tenant != w.Tenant || got.Subject != w.Subject || got.KEK != w.KEK || !bytes.Equal(got.Wrapped, w.Wrapped) ||
				!got.CreatedAt.Equal(w.CreatedAt) || !got.ErasedAt.Equal(w.ErasedAt) {
				t.Fatalf("after the upgrade the key is %s, want %s", fmtKey(got), fmtKey(w))
			}
		}
		for _, tenant := range []string{"", "acme", "beta"} {
			if !slices.Contains(tenants, tenant) {
				wantNoKeyOf(t, ks, tenant, old.Subject)
			}
		}
	}
	all, err := ks.ListSubjectKeys(testContext(t), strata.SubjectKey{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("after the upgrade %d keys are listed, want %d", len(all), n)
	}
}
