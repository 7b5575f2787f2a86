package shred_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/shred"
	"github.com/strata-events/strata/storetest"
)

// writeIn encodes v as an event of tenant and appends it to stream.
func (e env) writeIn(t *testing.T, tenant, stream string, v issued) strata.Event {
	t.Helper()
	ctx := context.Background()
	d, err := e.reg.Encode(ctx, v, strata.Metadata{Tenant: tenant})
	if err != nil {
		t.Fatalf("encode for tenant %q: %v", tenant, err)
	}
	if _, err := e.st.Append(ctx, stream, strata.Any, d); err != nil {
		t.Fatal(err)
	}
	evs, err := storetest.Collect(e.st.ReadStream(ctx, stream, strata.ReadStreamOptions{Backward: true, Limit: 1}))
	if err != nil || len(evs) != 1 {
		t.Fatalf("read back %s: %v", stream, err)
	}
	return evs[0]
}

func (e env) dn(t *testing.T, ev strata.Event) string {
	t.Helper()
	m, err := e.reg.DecodeOne(context.Background(), ev)
	if err != nil {
		t.Fatalf("decode %s: %v", ev.Stream, err)
	}
	return m.Value.(issued).DN
}

// TestSubjectScopedByTenant: one subject ID in two tenants (and without one) has a key in each;
// erasing it in one tenant redacts that tenant's data only, and tells the hooks which tenant.
func TestSubjectScopedByTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := mustKEK(t)
	e := newEnv(t, kek)
	acme := e.writeIn(t, "acme", "certificate-a", sample())
	beta := e.writeIn(t, "beta", "certificate-b", sample())
	none := e.writeIn(t, "", "certificate-n", sample())
	keys, err := e.st.ListSubjectKeys(ctx, strata.SubjectKey{}, 0)
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys of one subject in three tenants: %+v %v", keys, err)
	}
	// A ciphertext opens only under the key of its event's tenant: an event claimed by
	// another tenant does not open.
	moved := acme
	moved.Meta.Tenant = "beta"
	if _, err := e.reg.DecodeOne(ctx, moved); !errors.Is(err, shred.ErrTampered) {
		t.Fatalf("acme's ciphertext under beta's key: %v, want ErrTampered", err)
	}

	type hooked struct {
		subject, tenant string
		scoped          bool
	}
	var hooks []hooked
	e.p.OnErase(func(ctx context.Context, s string) error {
		tenant, ok := shred.ErasedTenant(ctx)
		hooks = append(hooks, hooked{s, tenant, ok})
		return nil
	})
	tomb, err := e.p.EraseTenant(ctx, "acme", "subject-42", strata.Metadata{Principal: "dpo"})
	if err != nil || !tomb.Erased() || tomb.Tenant != "acme" {
		t.Fatalf("erase in acme: %+v %v", tomb, err)
	}
	fresh := envOn(t, e.st, kek) // no key cached
	for _, env := range []env{e, fresh} {
		if got := env.dn(t, acme); got != shred.Redacted {
			t.Fatalf("acme's event after acme's erasure reads %q", got)
		}
		if got := env.dn(t, beta); got != dn {
			t.Fatalf("beta's event after acme's erasure reads %q", got)
		}
		if got := env.dn(t, none); got != dn {
			t.Fatalf("the event without tenant after acme's erasure reads %q", got)
		}
	}
	if len(hooks) != 1 || hooks[0] != (hooked{"subject-42", "acme", true}) {
		t.Fatalf("hooks saw %+v", hooks)
	}
	// acme may not write the subject's personal data again; beta may.
	if _, err := e.reg.Encode(ctx, sample(), strata.Metadata{Tenant: "acme"}); !errors.Is(err, shred.ErrErased) {
		t.Fatalf("acme writes its erased subject: %v", err)
	}
	e.writeIn(t, "beta", "certificate-b", sample())
	// The erasure is recorded in acme's erasure stream, as acme's event, once.
	if _, err := e.p.EraseTenant(ctx, "acme", "subject-42", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	rec, err := storetest.Collect(e.st.ReadStream(ctx, shred.TenantErasureStream("acme", "subject-42"), strata.ReadStreamOptions{}))
	if err != nil || len(rec) != 1 || rec[0].Meta.Tenant != "acme" || rec[0].Meta.Principal != "dpo" || rec[0].Type != shred.SubjectErasedType {
		t.Fatalf("acme's erasure record: %+v %v", rec, err)
	}
	if info, _ := e.st.StreamInfo(ctx, shred.ErasureStream("subject-42")); info.Exists {
		t.Fatalf("a tenant's erasure wrote the erasure stream without tenant")
	}

	// The operator's Erase erases the subject in every tenant.
	hooks = nil
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Principal: "operator"}); err != nil {
		t.Fatal(err)
	}
	after := envOn(t, e.st, kek) // a process that cached no key before the erasure
	for _, env := range []env{e, after} {
		for _, ev := range []strata.Event{acme, beta, none} {
			if got := env.dn(t, ev); got != shred.Redacted {
				t.Fatalf("%s after the erasure in every tenant reads %q", ev.Stream, got)
			}
		}
	}
	if len(hooks) != 1 || hooks[0] != (hooked{"subject-42", "", false}) {
		t.Fatalf("hooks of the erasure in every tenant saw %+v", hooks)
	}
	keys, err = e.st.ListSubjectKeys(ctx, strata.SubjectKey{}, 0)
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys after the erasure in every tenant: %+v %v", keys, err)
	}
	for _, k := range keys {
		if !k.Erased() {
			t.Fatalf("key %+v survived the erasure in every tenant", k)
		}
	}
}

// TestEraseTenantOfForeignSubject: a tenant that has no personal data of a subject cannot erase
// it, even when another tenant has, and nothing is written.
func TestEraseTenantOfForeignSubject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	beta := e.writeIn(t, "beta", "certificate-b", sample())
	for _, tenant := range []string{"acme"} {
		_, err := e.p.EraseTenant(ctx, tenant, "subject-42", strata.Metadata{})
		if !errors.Is(err, strata.ErrNotFound) {
			t.Fatalf("tenant %q erases beta's subject: %v, want NotFound", tenant, err)
		}
		if ok, err := e.p.HasSubject(ctx, tenant, "subject-42"); err != nil || ok {
			t.Fatalf("tenant %q has the subject after a refused erasure: %v %v", tenant, ok, err)
		}
		if info, _ := e.st.StreamInfo(ctx, shred.TenantErasureStream(tenant, "subject-42")); info.Exists {
			t.Fatalf("a refused erasure was recorded")
		}
	}
	if got := e.dn(t, beta); got != dn {
		t.Fatalf("beta's data after other tenants' erasures reads %q", got)
	}
	// The error reads the same whether another tenant has the subject or no one does.
	_, err1 := e.p.EraseTenant(ctx, "acme", "subject-42", strata.Metadata{})
	_, err2 := e.p.EraseTenant(ctx, "acme", "subject-none", strata.Metadata{})
	if strings.ReplaceAll(err1.Error(), "subject-42", "X") != strings.ReplaceAll(err2.Error(), "subject-none", "X") {
		t.Fatalf("the refusals differ: %q and %q", err1, err2)
	}
	// The erasure's metadata cannot name another tenant.
	if _, err := e.p.EraseTenant(ctx, "beta", "subject-42", strata.Metadata{Tenant: "acme"}); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("erasure for beta recorded as acme's: %v", err)
	}
	if got := e.dn(t, beta); got != dn {
		t.Fatalf("beta's data after a refused erasure reads %q", got)
	}
}

// TestSnapshotKeyOfStreamTenant: a snapshot is sealed under the key of its stream's tenant.
func TestSnapshotKeyOfStreamTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	e.writeIn(t, "acme", "certificate-a", sample())
	e.writeIn(t, "beta", "certificate-b", sample())
	sa := sealed(t, e.p, "certificate-a", sampleState())
	sb := sealed(t, e.p, "certificate-b", sampleState())
	if keys, err := e.st.ListSubjectKeys(ctx, strata.SubjectKey{}, 0); err != nil || len(keys) != 2 {
		t.Fatalf("snapshots made keys beyond their streams' tenants': %+v %v", keys, err)
	}
	if _, err := e.p.EraseTenant(ctx, "beta", "subject-42", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := opened(t, e.p, sa); err != nil || !ok || v.DN != dn {
		t.Fatalf("acme's snapshot after beta's erasure: %+v %v %v", v, ok, err)
	}
	if _, ok, err := opened(t, e.p, sb); err != nil || ok {
		t.Fatalf("beta's snapshot after beta's erasure opens: %v %v", ok, err)
	}
}

func TestTenantErasureStream(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ tenant, subject, want string }{
		{"", "subject-1", "erasure-subject-1"},
		{"acme", "subject-1", "erasure@acme/subject-1"},
		{"a/b", "c", "erasure@a%2Fb/c"},
		{"a", "b/c", "erasure@a/b/c"},
		{"50%", "s", "erasure@50%25/s"},
		{"#x", "s", "erasure@%23x/s"},
	} {
		if got := shred.TenantErasureStream(c.tenant, c.subject); got != c.want {
			t.Errorf("TenantErasureStream(%q, %q) = %q, want %q", c.tenant, c.subject, got, c.want)
		}
		if !shred.IsErasureStream(c.want) {
			t.Errorf("%q is not an erasure stream", c.want)
		}
	}
	long := shred.TenantErasureStream(strings.Repeat("t", 200), strings.Repeat("s", 200))
	if len(long) > strata.MaxStreamNameLen || !strings.HasPrefix(long, "erasure@#") || long == shred.TenantErasureStream(strings.Repeat("t", 200), strings.Repeat("s", 199)) {
		t.Errorf("long names: %q", long)
	}
	if shred.IsErasureStream("erasures") || shred.IsErasureStream("certificate-1") {
		t.Errorf("IsErasureStream takes other streams")
	}
}

// TestEraseEveryTenantRecordsNoTenant: the erasure in every tenant is recorded without a
// tenant, so that projections drop the subject's rows of every tenant. Metadata naming a tenant
// (strata erase SUBJECT --meta tenant=acme) would record it as acme's erasure, and the
// projections would keep beta's copy of the personal data in clear, though beta's key is gone.
func TestEraseEveryTenantRecordsNoTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	e.writeIn(t, "acme", "certificate-a", sample())
	beta := e.writeIn(t, "beta", "certificate-b", sample())
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Tenant: "acme"}); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("an erasure in every tenant recorded as acme's: %v, want Invalid", err)
	}
	if got := e.dn(t, beta); got != dn {
		t.Fatalf("beta's data after a refused erasure reads %q", got)
	}
	if info, _ := e.st.StreamInfo(ctx, shred.ErasureStream("subject-42")); info.Exists {
		t.Fatalf("a refused erasure was recorded")
	}
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Principal: "operator"}); err != nil {
		t.Fatal(err)
	}
	rec, err := storetest.Collect(e.st.ReadStream(ctx, shred.ErasureStream("subject-42"), strata.ReadStreamOptions{}))
	if err != nil || len(rec) != 1 || rec[0].Meta.Tenant != "" {
		t.Fatalf("the erasure in every tenant: %+v %v", rec, err)
	}
}

// TestEraseTenantRefusesTheNoTenantScope: EraseTenant of the tenant "" is refused and erases
// nothing. Its SubjectErased would carry no tenant, which is how Erase's (every tenant's)
// reads, and projections would drop the subject's rows of every tenant.
func TestEraseTenantRefusesTheNoTenantScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	plain := e.writeIn(t, "", "certificate-p", sample())
	beta := e.writeIn(t, "beta", "certificate-b", sample())
	if _, err := e.p.EraseTenant(ctx, "", "subject-42", strata.Metadata{}); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("EraseTenant of no tenant: %v, want Invalid", err)
	}
	if info, _ := e.st.StreamInfo(ctx, shred.ErasureStream("subject-42")); info.Exists {
		t.Fatal("a refused erasure was recorded")
	}
	if got, got2 := e.dn(t, plain), e.dn(t, beta); got != dn || got2 != dn {
		t.Fatalf("after a refused erasure the data reads %q and %q", got, got2)
	}
}
