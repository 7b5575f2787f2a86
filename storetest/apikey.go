package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/strata-events/strata"
)

// RunAPIKeys runs the section of the suite for [strata.APIKeyStore]: create and get, Duplicate
// on a reused ID (also under racing creators), revocation that keeps the row and its first
// time, paging in byte order, restarts, bad input and use after close. [Run] calls it; a store
// that does not implement the interface skips it, or fails it when f.Capabilities is set.
func RunAPIKeys(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runAPIKeys(t)
}

func (s suite) runAPIKeys(t *testing.T) {
	runParallel(t, []subtest{
		{"CreateGetRevoke", s.testAPIKeyCreateGetRevoke},
		{"DuplicateID", s.testAPIKeyDuplicate},
		{"ListPagesInByteOrder", s.testAPIKeyList},
		{"SurviveReopen", s.testAPIKeyReopen},
		{"BadInputRejected", s.testAPIKeyBadInput},
		{"UseAfterClose", s.testAPIKeyAfterClose},
	})
}

func testAPIKey(id string, role strata.Role, tenant string) strata.APIKey {
	h := sha256.Sum256([]byte("strata_" + id + "_secret"))
	return strata.APIKey{ID: id, Hash: h[:], Role: role, Tenant: tenant, Name: "key " + id}
}

func (s suite) testAPIKeyCreateGetRevoke(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.APIKeyStore](t, s)
	want := testAPIKey("k1", strata.RoleWriter, "acme-ca")
	got, err := ks.CreateAPIKey(ctx, want)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got.ID != want.ID || !bytes.Equal(got.Hash, want.Hash) || got.Role != want.Role || got.Tenant != want.Tenant || got.Name != want.Name {
		t.Fatalf("create returned %+v, want %+v", got, want)
	}
	if got.CreatedAt.IsZero() || got.Revoked() {
		t.Fatalf("create returned CreatedAt %v, RevokedAt %v", got.CreatedAt, got.RevokedAt)
	}
	read, err := ks.APIKey(ctx, "k1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if !read.CreatedAt.Equal(got.CreatedAt) || !bytes.Equal(read.Hash, want.Hash) || read.Role != want.Role || read.Tenant != want.Tenant {
		t.Fatalf("get returned %+v, want %+v", read, got)
	}
	_, err = ks.APIKey(ctx, "missing")
	wantCode(t, err, strata.NotFound, "get an unknown key")
	_, err = ks.RevokeAPIKey(ctx, "missing")
	wantCode(t, err, strata.NotFound, "revoke an unknown key")

	rev, err := ks.RevokeAPIKey(ctx, "k1")
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if !rev.Revoked() || rev.RevokedAt.Before(rev.CreatedAt) {
		t.Fatalf("revoke returned RevokedAt %v (created %v)", rev.RevokedAt, rev.CreatedAt)
	}
	again, err := ks.RevokeAPIKey(ctx, "k1")
	if err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	if !again.RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("revoking twice moved RevokedAt from %v to %v", rev.RevokedAt, again.RevokedAt)
	}
	read, err = ks.APIKey(ctx, "k1")
	if err != nil || !read.RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("get after revoke: %+v, %v", read, err)
	}
	_, err = ks.CreateAPIKey(ctx, want)
	wantCode(t, err, strata.Duplicate, "re-create a revoked key's ID")
}

func (s suite) testAPIKeyDuplicate(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.APIKeyStore](t, s)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = ks.CreateAPIKey(ctx, testAPIKey("race", strata.RoleReader, fmt.Sprintf("tenant-%d", i)))
		})
	}
	wg.Wait()
	winners := 0
	for _, err := range errs {
		switch strata.ErrorCode(err) {
		case "":
			winners++
		case strata.Duplicate:
		default:
			t.Fatalf("racing create: %v", err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d racing creators of one ID succeeded, want 1", winners)
	}
}

func (s suite) testAPIKeyList(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.APIKeyStore](t, s)
	ids := []string{"b", "A", "a-2", "a_1", "Z9", "a"}
	for _, id := range ids {
		if _, err := ks.CreateAPIKey(ctx, testAPIKey(id, strata.RoleAuditor, "t")); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	want := []string{"A", "Z9", "a", "a-2", "a_1", "b"} // byte order
	var got []string
	after := ""
	for {
		page, err := ks.ListAPIKeys(ctx, after, 4)
		if err != nil {
			t.Fatalf("list after %q: %v", after, err)
		}
		if len(page) > 4 {
			t.Fatalf("list returned %d keys, more than the limit 4", len(page))
		}
		for _, k := range page {
			got = append(got, k.ID)
		}
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	all, err := ks.ListAPIKeys(ctx, "", 0)
	if err != nil || len(all) != len(ids) {
		t.Fatalf("list with limit 0: %d keys, %v; want %d", len(all), err, len(ids))
	}
}

func (s suite) testAPIKeyReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	ctx := testContext(t)
	st, ks := capability[strata.APIKeyStore](t, s)
	if _, err := ks.CreateAPIKey(ctx, testAPIKey("kept", strata.RoleAdmin, "acme")); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateAPIKey(ctx, testAPIKey("gone", strata.RoleAdmin, "acme")); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RevokeAPIKey(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	ks2 := reopen[strata.APIKeyStore](t, s, st)
	k, err := ks2.APIKey(ctx, "kept")
	if err != nil || k.Role != strata.RoleAdmin || k.Tenant != "acme" || k.Revoked() {
		t.Fatalf("after reopen: %+v, %v", k, err)
	}
	k, err = ks2.APIKey(ctx, "gone")
	if err != nil || !k.Revoked() {
		t.Fatalf("revoked key after reopen: %+v, %v", k, err)
	}
}

func (s suite) testAPIKeyBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.APIKeyStore](t, s)
	good := testAPIKey("good", strata.RoleReader, "t")
	long := make([]byte, strata.MaxAPIKeyIDLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, c := range []struct {
		name string
		edit func(k *strata.APIKey)
	}{
		{"empty ID", func(k *strata.APIKey) { k.ID = "" }},
		{"long ID", func(k *strata.APIKey) { k.ID = string(long) }},
		{"ID with a space", func(k *strata.APIKey) { k.ID = "a b" }},
		{"short hash", func(k *strata.APIKey) { k.Hash = k.Hash[:16] }},
		{"unknown role", func(k *strata.APIKey) { k.Role = "root" }},
		{"empty tenant", func(k *strata.APIKey) { k.Tenant = "" }},
		{"control character in tenant", func(k *strata.APIKey) { k.Tenant = "a\nb" }},
	} {
		k := good
		k.Hash = append([]byte{}, good.Hash...)
		c.edit(&k)
		_, err := ks.CreateAPIKey(ctx, k)
		wantCode(t, err, strata.Invalid, c.name)
	}
	all, err := ks.ListAPIKeys(ctx, "", 0)
	if err != nil || len(all) != 0 {
		t.Fatalf("bad input wrote %d keys (%v)", len(all), err)
	}
	_, err = ks.APIKey(ctx, "a b")
	wantCode(t, err, strata.Invalid, "get with a bad ID")
	_, err = ks.ListAPIKeys(ctx, "a b", 0)
	wantCode(t, err, strata.Invalid, "list after a bad ID")
}

func (s suite) testAPIKeyAfterClose(t *testing.T) {
	st, ks := capability[strata.APIKeyStore](t, s)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := ks.CreateAPIKey(ctx, testAPIKey("x", strata.RoleReader, "t"))
	wantCode(t, err, strata.Unavailable, "create after close")
	_, err = ks.APIKey(ctx, "x")
	wantCode(t, err, strata.Unavailable, "get after close")
	_, err = ks.ListAPIKeys(ctx, "", 0)
	wantCode(t, err, strata.Unavailable, "list after close")
	_, err = ks.RevokeAPIKey(ctx, "x")
	wantCode(t, err, strata.Unavailable, "revoke after close")
}
