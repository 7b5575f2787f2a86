package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/strata-events/strata"
)

// The tenant section of the keys suite: a data key belongs to (tenant, subject), so that one
// subject ID in two tenants names two data subjects whose keys never meet.

// wantKeyOf checks everything of a live key but its times.
func wantKeyOf(t testing.TB, got strata.SubjectKey, tenant, subject, kek string, wrapped []byte) {
	t.Helper()
	if got.Tenant != tenant {
		t.Fatalf("key of %q has tenant %q, want %q", subject, got.Tenant, tenant)
	}
	wantKey(t, got, subject, kek, wrapped)
}

func (s suite) testKeyTenants(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	// One subject ID in three tenants (the empty tenant is one): three keys.
	tenants := []string{"", "acme", "beta", "acme ", "Acme", "ácme"}
	for _, tenant := range tenants {
		w := []byte("wrapped for " + tenant)
		got := mustCreateKey(t, ks, strata.SubjectKey{Tenant: tenant, Subject: "subject-1", KEK: "kek-1", Wrapped: w})
		wantKeyOf(t, got, tenant, "subject-1", "kek-1", w)
		wantStoreTime(t, got.CreatedAt, "createdAt")
	}
	for _, tenant := range tenants {
		wantKeyOf(t, mustGetKeyOf(t, ks, tenant, "subject-1"), tenant, "subject-1", "kek-1", []byte("wrapped for "+tenant))
		// A second create in a tenant returns that tenant's key.
		again := mustCreateKey(t, ks, strata.SubjectKey{Tenant: tenant, Subject: "subject-1", KEK: "kek-other", Wrapped: []byte("other")})
		wantKeyOf(t, again, tenant, "subject-1", "kek-1", []byte("wrapped for "+tenant))
	}
	// A tenant without a key of the subject finds none, whoever else has one.
	wantNoKeyOf(t, ks, "gamma", "subject-1")
	wantNoKeyOf(t, ks, "acme", "subject-2")

	// Rewrapping one tenant's key leaves the others' alone, and names the tenant it swaps in.
	if ok, err := ks.RewrapSubjectKey(ctx, "beta", "subject-1", "kek-1", "kek-2", []byte("beta under 2")); err != nil || !ok {
		t.Fatalf("rewrap of beta's key: %v, %v", ok, err)
	}
	wantKeyOf(t, mustGetKeyOf(t, ks, "beta", "subject-1"), "beta", "subject-1", "kek-2", []byte("beta under 2"))
	for _, tenant := range []string{"", "acme"} {
		wantKeyOf(t, mustGetKeyOf(t, ks, tenant, "subject-1"), tenant, "subject-1", "kek-1", []byte("wrapped for "+tenant))
	}
	if ok, err := ks.RewrapSubjectKey(ctx, "gamma", "subject-1", "kek-1", "kek-2", []byte("w")); err != nil || ok {
		t.Fatalf("rewrap in a tenant without a key: %v, %v; want false", ok, err)
	}
	wantNoKeyOf(t, ks, "gamma", "subject-1")
}

func (s suite) testKeyTenantErase(t *testing.T) {
	ctx := testContext(t)
	st, ks := capability[strata.KeyStore](t, s)
	acme, beta, none := randomBytes(48), randomBytes(48), randomBytes(48)
	mustCreateKey(t, ks, strata.SubjectKey{Tenant: "acme", Subject: "subject-1", KEK: "kek-1", Wrapped: acme})
	mustCreateKey(t, ks, strata.SubjectKey{Tenant: "beta", Subject: "subject-1", KEK: "kek-1", Wrapped: beta})
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-1", Wrapped: none})

	tomb := mustEraseOf(t, ks, "acme", "subject-1")
	if tomb.Tenant != "acme" {
		t.Fatalf("the tombstone of acme's key has tenant %q", tomb.Tenant)
	}
	wantTombstone(t, tomb, "subject-1", "kek-1")
	wantSameKey(t, mustGetKeyOf(t, ks, "acme", "subject-1"), tomb)
	// The other tenants keep their keys.
	wantKeyOf(t, mustGetKeyOf(t, ks, "beta", "subject-1"), "beta", "subject-1", "kek-1", beta)
	wantKeyOf(t, mustGetKeyOf(t, ks, "", "subject-1"), "", "subject-1", "kek-1", none)
	if s.f.RawContains != nil {
		if s.f.RawContains(t, st, acme) {
			t.Fatalf("the wrapped key of acme's erased subject is still in the database")
		}
		if !s.f.RawContains(t, st, beta) || !s.f.RawContains(t, st, none) {
			t.Fatalf("erasing acme's subject lost another tenant's key")
		}
	}
	// The tombstone keeps acme from a fresh key, and no one else.
	wantSameKey(t, mustCreateKey(t, ks, strata.SubjectKey{Tenant: "acme", Subject: "subject-1", KEK: "kek-2", Wrapped: []byte("fresh")}), tomb)
	fresh := mustCreateKey(t, ks, strata.SubjectKey{Tenant: "gamma", Subject: "subject-1", KEK: "kek-2", Wrapped: []byte("gamma's")})
	wantKeyOf(t, fresh, "gamma", "subject-1", "kek-2", []byte("gamma's"))
	if ok, err := ks.RewrapSubjectKey(ctx, "acme", "subject-1", "kek-1", "kek-2", []byte("revived")); err != nil || ok {
		t.Fatalf("rewrap of acme's erased key: %v, %v; want false", ok, err)
	}

	// Erasing a subject a tenant has no key of leaves a tombstone in that tenant only.
	never := mustEraseOf(t, ks, "delta", "subject-2")
	if never.Tenant != "delta" || !never.CreatedAt.Equal(never.ErasedAt) {
		t.Fatalf("tombstone of a subject without a key: %s", fmtKey(never))
	}
	wantTombstone(t, never, "subject-2", "")
	wantNoKeyOf(t, ks, "", "subject-2")
	wantKeyOf(t, mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-2", KEK: "kek", Wrapped: []byte("w")}), "", "subject-2", "kek", []byte("w"))
	wantSameKey(t, mustCreateKey(t, ks, strata.SubjectKey{Tenant: "delta", Subject: "subject-2", KEK: "kek", Wrapped: []byte("w")}), never)
	// Erasing again changes nothing.
	wantSameKey(t, mustEraseOf(t, ks, "acme", "subject-1"), tomb)
}

func (s suite) testKeyTenantList(t *testing.T) {
	_, ks := capability[strata.KeyStore](t, s)
	var want []strata.SubjectKey
	for i, subject := range []string{"subject-b", "subject-a", "s", "subject-a "} {
		for j, tenant := range []string{"beta", "", "acme", "acme-2", "Acme"} {
			if (i+j)%4 == 3 {
				continue // not every subject in every tenant
			}
			k := strata.SubjectKey{Tenant: tenant, Subject: subject, KEK: "kek", Wrapped: []byte(tenant + "/" + subject)}
			if (i+j)%3 == 0 {
				k = mustEraseOf(t, ks, tenant, subject)
			} else {
				k = mustCreateKey(t, ks, k)
			}
			want = append(want, k)
		}
	}
	slices.SortFunc(want, strata.CompareSubjectKeys)
	for _, limit := range []int{1, 2, 5, len(want), len(want) + 1} {
		var got []strata.SubjectKey
		after := strata.SubjectKey{}
		for pages := 0; ; pages++ {
			page, err := ks.ListSubjectKeys(testContext(t), after, limit)
			if err != nil {
				t.Fatalf("list after %s: %v", fmtKey(after), err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d keys", limit, len(page))
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1]
			if pages > len(want) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("limit %d: listed %d keys, want %d", limit, len(got), len(want))
		}
		for i := range want {
			wantSameKey(t, got[i], want[i])
		}
	}
	// A cursor between two tenants of a subject, which need not be stored, starts at the next.
	page, err := ks.ListSubjectKeys(testContext(t), strata.SubjectKey{Subject: "subject-a", Tenant: "acme-1"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(want, func(k strata.SubjectKey) bool {
		return strata.SubjectKeyAfter(k, strata.SubjectKey{Subject: "subject-a", Tenant: "acme-1"})
	})
	if len(page) == 0 || i < 0 || page[0].Subject != want[i].Subject || page[0].Tenant != want[i].Tenant {
		t.Fatalf("list after (subject-a, acme-1) starts with %v, want %s", page, fmtKey(want[i]))
	}
}

func (s suite) testKeyTenantRace(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	const creators = 8
	tenants := []string{"acme", "beta"}
	var wg sync.WaitGroup
	got := make([]strata.SubjectKey, creators*len(tenants))
	errs := make([]error, len(got))
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := tenants[i%len(tenants)]
			got[i], errs[i] = ks.CreateSubjectKey(ctx, strata.SubjectKey{Tenant: tenant, Subject: "subject-1", KEK: "kek", Wrapped: fmt.Appendf(nil, "%s-%d", tenant, i)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent create %d: %v", i, err)
		}
	}
	for _, tenant := range tenants {
		stored := mustGetKeyOf(t, ks, tenant, "subject-1")
		if !bytes.HasPrefix(stored.Wrapped, []byte(tenant+"-")) {
			t.Fatalf("tenant %s stores %s, a key another tenant's creator made", tenant, fmtKey(stored))
		}
		for i, k := range got {
			if tenants[i%len(tenants)] == tenant {
				wantSameKey(t, k, stored)
			}
		}
	}
	if keys := mustList(t, ks, "", 0); len(keys) != len(tenants) {
		t.Fatalf("%d keys after racing creators in %d tenants, want one per tenant", len(keys), len(tenants))
	}
}

func (s suite) testKeyTenantBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	for _, c := range []struct{ what, tenant string }{
		{"oversized", strings.Repeat("t", strata.MaxKeyTenantLen+1)},
		{"not UTF-8", "acme-\xff"},
		{"with NUL", "acme\x00"},
		{"with a newline", "acme\n"},
	} {
		_, err := ks.CreateSubjectKey(ctx, strata.SubjectKey{Tenant: c.tenant, Subject: "subject-1", KEK: "kek", Wrapped: []byte("w")})
		wantCode(t, err, strata.Invalid, "create key in a tenant "+c.what)
		_, err = ks.SubjectKey(ctx, c.tenant, "subject-1")
		wantCode(t, err, strata.Invalid, "key in a tenant "+c.what)
		_, err = ks.EraseSubjectKey(ctx, c.tenant, "subject-1")
		wantCode(t, err, strata.Invalid, "erase key in a tenant "+c.what)
		_, err = ks.RewrapSubjectKey(ctx, c.tenant, "subject-1", "kek", "kek-2", []byte("w"))
		wantCode(t, err, strata.Invalid, "rewrap key in a tenant "+c.what)
		_, err = ks.ListSubjectKeys(ctx, strata.SubjectKey{Tenant: c.tenant, Subject: "subject-1"}, 0)
		wantCode(t, err, strata.Invalid, "list keys after a tenant "+c.what)
	}
	// The longest tenant works; nothing was written before.
	if keys := mustList(t, ks, "", 0); len(keys) != 0 {
		t.Fatalf("bad tenants stored %d keys", len(keys))
	}
	long := strings.Repeat("é", strata.MaxKeyTenantLen/2)
	wantKeyOf(t, mustCreateKey(t, ks, strata.SubjectKey{Tenant: long, Subject: "subject-1", KEK: "kek", Wrapped: []byte("w")}), long, "subject-1", "kek", []byte("w"))
	wantKeyOf(t, mustGetKeyOf(t, ks, long, "subject-1"), long, "subject-1", "kek", []byte("w"))
}
