package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// RunKeys runs the section of the suite for [strata.KeyStore] and [strata.SchemaStore]:
// create-if-absent (also under racing creators), NotFound, erasure with tombstones that block a
// later create, erased bytes gone from the database (with Features.RawContains), paging in byte
// order, the compare-and-swap of rewrapping, keys scoped by tenant (one subject ID in several
// tenants has a key in each, created, erased, rewrapped and listed apart), event schemas,
// restarts, bad input, cancelled contexts and use after close. [Run] calls it; a store that does not implement an interface
// skips its tests, or fails them when f.Capabilities is set.
func RunKeys(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runKeys(t)
}

func (s suite) runKeys(t *testing.T) {
	runParallel(t, []subtest{
		{"CreateAndGet", s.testKeyCreateGet},
		{"ConcurrentCreatorsGetOneKey", s.testKeyCreateRace},
		{"EraseLeavesTombstone", s.testKeyErase},
		{"EraseWithoutKeyBlocksCreate", s.testKeyEraseMissing},
		{"ErasedBytesGoneFromDatabase", s.testKeyErasedBytesGone},
		{"ListPagesInByteOrder", s.testKeyList},
		{"RewrapCompareAndSwap", s.testKeyRewrap},
		{"KeysSurviveReopen", s.testKeyReopen},
		{"KeyBadInputRejected", s.testKeyBadInput},
		{"TenantsKeepSeparateKeys", s.testKeyTenants},
		{"TenantErasureLeavesOtherTenants", s.testKeyTenantErase},
		{"TenantsListInSubjectTenantOrder", s.testKeyTenantList},
		{"TenantCreatorsRaceApart", s.testKeyTenantRace},
		{"TenantBadInputRejected", s.testKeyTenantBadInput},
		{"KeyContextCancellation", s.testKeyCancel},
		{"KeyUseAfterClose", s.testKeyAfterClose},
		{"SchemasSetReplaceList", s.testSchemaSetList},
		{"SchemasSurviveReopen", s.testSchemaReopen},
		{"SchemaBadInputRejected", s.testSchemaBadInput},
		{"SchemaContextCancellationAndClose", s.testSchemaCancelClose},
	})
}

// --- keys ---

// randomBytes returns n random bytes: a needle that occurs nowhere by chance.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustCreateKey(t testing.TB, ks strata.KeyStore, k strata.SubjectKey) strata.SubjectKey {
	t.Helper()
	got, err := ks.CreateSubjectKey(testContext(t), k)
	if err != nil {
		t.Fatalf("create key of %q: %v", k.Subject, err)
	}
	return got
}

func mustGetKey(t testing.TB, ks strata.KeyStore, subject string) strata.SubjectKey {
	t.Helper()
	got, err := ks.SubjectKey(testContext(t), "", subject)
	if err != nil {
		t.Fatalf("key of %q: %v", subject, err)
	}
	return got
}

func mustGetKeyOf(t testing.TB, ks strata.KeyStore, tenant, subject string) strata.SubjectKey {
	t.Helper()
	got, err := ks.SubjectKey(testContext(t), tenant, subject)
	if err != nil {
		t.Fatalf("key of %q in tenant %q: %v", subject, tenant, err)
	}
	return got
}

func mustEraseOf(t testing.TB, ks strata.KeyStore, tenant, subject string) strata.SubjectKey {
	t.Helper()
	got, err := ks.EraseSubjectKey(testContext(t), tenant, subject)
	if err != nil {
		t.Fatalf("erase key of %q in tenant %q: %v", subject, tenant, err)
	}
	return got
}

func wantNoKeyOf(t testing.TB, ks strata.KeyStore, tenant, subject string) {
	t.Helper()
	_, err := ks.SubjectKey(testContext(t), tenant, subject)
	wantCode(t, err, strata.NotFound, fmt.Sprintf("key of %q in tenant %q", subject, tenant))
}

func mustErase(t testing.TB, ks strata.KeyStore, subject string) strata.SubjectKey {
	t.Helper()
	got, err := ks.EraseSubjectKey(testContext(t), "", subject)
	if err != nil {
		t.Fatalf("erase key of %q: %v", subject, err)
	}
	return got
}

func mustList(t testing.TB, ks strata.KeyStore, after string, limit int) []strata.SubjectKey {
	t.Helper()
	got, err := ks.ListSubjectKeys(testContext(t), strata.SubjectKey{Subject: after}, limit)
	if err != nil {
		t.Fatalf("list keys after %q, limit %d: %v", after, limit, err)
	}
	return got
}

func wantNoKey(t testing.TB, ks strata.KeyStore, subject string) {
	t.Helper()
	_, err := ks.SubjectKey(testContext(t), "", subject)
	wantCode(t, err, strata.NotFound, fmt.Sprintf("key of %q", subject))
	if !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("key of %q: %v does not match ErrNotFound", subject, err)
	}
}

// wantKey checks everything but the timestamps, which wantStoreTime checks.
func wantKey(t testing.TB, got strata.SubjectKey, subject, kek string, wrapped []byte) {
	t.Helper()
	if got.Subject != subject || got.KEK != kek || !bytes.Equal(got.Wrapped, wrapped) {
		t.Fatalf("key is {%q kek %q wrapped %s}, want {%q kek %q wrapped %s}",
			got.Subject, got.KEK, brief(got.Wrapped), subject, kek, brief(wrapped))
	}
	if len(wrapped) > 0 && got.Erased() {
		t.Fatalf("key of %q is erased at %v, want a live key", subject, got.ErasedAt)
	}
}

func wantTombstone(t testing.TB, got strata.SubjectKey, subject, kek string) {
	t.Helper()
	if got.Subject != subject || got.KEK != kek || len(got.Wrapped) != 0 || !got.Erased() {
		t.Fatalf("key is {%q kek %q wrapped %s erased %v}, want the tombstone of %q (kek %q)",
			got.Subject, got.KEK, brief(got.Wrapped), got.ErasedAt, subject, kek)
	}
	wantStoreTime(t, got.ErasedAt, "erasedAt")
	if got.ErasedAt.Before(got.CreatedAt) {
		t.Fatalf("tombstone of %q: erased at %v, before it was created at %v", subject, got.ErasedAt, got.CreatedAt)
	}
}

func wantSameKey(t testing.TB, got, want strata.SubjectKey) {
	t.Helper()
	if got.Tenant != want.Tenant || got.Subject != want.Subject || got.KEK != want.KEK || !bytes.Equal(got.Wrapped, want.Wrapped) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ErasedAt.Equal(want.ErasedAt) {
		t.Fatalf("key is %s, want %s", fmtKey(got), fmtKey(want))
	}
}

func fmtKey(k strata.SubjectKey) string {
	return fmt.Sprintf("{tenant %q %q kek %q wrapped %s created %v erased %v}", k.Tenant, k.Subject, k.KEK, brief(k.Wrapped), k.CreatedAt, k.ErasedAt)
}

// wantStoreTime checks that ts was set by the store's clock: recent, UTC, microseconds.
func wantStoreTime(t testing.TB, ts time.Time, what string) {
	t.Helper()
	now := time.Now()
	if ts.Before(now.Add(-2*time.Minute)) || ts.After(now.Add(time.Minute)) ||
		ts.Location() != time.UTC || ts.Nanosecond()%1000 != 0 {
		t.Fatalf("%s %v: want the store's clock now, in UTC with microsecond precision", what, ts)
	}
}

func (s suite) testKeyCreateGet(t *testing.T) {
	_, ks := capability[strata.KeyStore](t, s)
	wantNoKey(t, ks, "subject-4711")
	wrapped := slices.Clone(binary)
	got := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-4711", KEK: "kek-2024", Wrapped: wrapped,
		CreatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), ErasedAt: time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)})
	wrapped[0] = 'X' // the store keeps its own copy
	wantKey(t, got, "subject-4711", "kek-2024", binary)
	wantStoreTime(t, got.CreatedAt, "createdAt")
	if !got.ErasedAt.IsZero() {
		t.Fatalf("a new key has ErasedAt %v, want zero", got.ErasedAt)
	}
	stored := mustGetKey(t, ks, "subject-4711")
	wantSameKey(t, stored, got)
	stored.Wrapped[0] = 'Y' // and hands out copies
	wantSameKey(t, mustGetKey(t, ks, "subject-4711"), got)

	// A second create returns the stored key and changes nothing.
	again := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-4711", KEK: "kek-other", Wrapped: []byte("other")})
	wantSameKey(t, again, got)
	wantSameKey(t, mustGetKey(t, ks, "subject-4711"), got)

	// The largest key and the longest names round-trip, and subjects that a case-insensitive,
	// accent-insensitive or space-padding comparison would confuse are distinct.
	huge := bytes.Repeat([]byte{0xff, 0, 'k', 0x80}, strata.MaxWrappedKeyLen/4)
	long := strings.Repeat("é", strata.MaxSubjectLen/2)
	longKEK := strings.Repeat("k", strata.MaxKEKNameLen)
	subjects := []string{"subject-a", "Subject-A", "subject-a ", "subject-á", "主体-1", long}
	for i, subject := range subjects {
		w := append(fmt.Appendf(nil, "%d:", i), huge[:strata.MaxWrappedKeyLen-2]...)
		wantKey(t, mustCreateKey(t, ks, strata.SubjectKey{Subject: subject, KEK: longKEK, Wrapped: w}), subject, longKEK, w)
	}
	for i, subject := range subjects {
		w := append(fmt.Appendf(nil, "%d:", i), huge[:strata.MaxWrappedKeyLen-2]...)
		wantKey(t, mustGetKey(t, ks, subject), subject, longKEK, w)
	}
	wantNoKey(t, ks, "subject-A")
}

func (s suite) testKeyCreateRace(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	const creators = 16
	var wg sync.WaitGroup
	got := make([]strata.SubjectKey, creators)
	errs := make([]error, creators)
	for i := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = ks.CreateSubjectKey(ctx, strata.SubjectKey{Subject: "subject-1", KEK: fmt.Sprintf("kek-%d", i), Wrapped: fmt.Appendf(nil, "key-%d", i)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent create %d: %v", i, err)
		}
	}
	stored := mustGetKey(t, ks, "subject-1")
	winner := -1
	fmt.Sscanf(stored.KEK, "kek-%d", &winner)
	if winner < 0 || winner >= creators || !bytes.Equal(stored.Wrapped, fmt.Appendf(nil, "key-%d", winner)) {
		t.Fatalf("stored key %s is none of the creators' keys", fmtKey(stored))
	}
	for i, k := range got {
		if k.Subject != stored.Subject || k.KEK != stored.KEK || !bytes.Equal(k.Wrapped, stored.Wrapped) || !k.CreatedAt.Equal(stored.CreatedAt) {
			t.Fatalf("creator %d got %s, but the store keeps %s: every creator must get the stored key", i, fmtKey(k), fmtKey(stored))
		}
	}
	if keys := mustList(t, ks, "", 0); len(keys) != 1 {
		t.Fatalf("%d keys after racing creators of one subject, want 1", len(keys))
	}
}

func (s suite) testKeyErase(t *testing.T) {
	_, ks := capability[strata.KeyStore](t, s)
	created := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-1", Wrapped: []byte("wrapped-1")})
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-2", KEK: "kek-1", Wrapped: []byte("wrapped-2")})

	tomb := mustErase(t, ks, "subject-1")
	wantTombstone(t, tomb, "subject-1", "kek-1")
	if !tomb.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("erasure changed CreatedAt from %v to %v", created.CreatedAt, tomb.CreatedAt)
	}
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), tomb)
	// The other subject keeps its key.
	wantKey(t, mustGetKey(t, ks, "subject-2"), "subject-2", "kek-1", []byte("wrapped-2"))

	// Erasing again changes nothing, not even ErasedAt.
	time.Sleep(2 * time.Millisecond)
	wantSameKey(t, mustErase(t, ks, "subject-1"), tomb)
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), tomb)

	// The tombstone keeps a late writer from giving the subject a fresh key.
	late := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-2", Wrapped: []byte("fresh")})
	wantSameKey(t, late, tomb)
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), tomb)

	// Racing erasers all get the one tombstone.
	var wg sync.WaitGroup
	got := make([]strata.SubjectKey, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = ks.EraseSubjectKey(testContext(t), "", "subject-2")
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("concurrent erase: %v", errs[i])
		}
		wantTombstone(t, got[i], "subject-2", "kek-1")
		if !got[i].ErasedAt.Equal(got[0].ErasedAt) {
			t.Fatalf("concurrent erasers got ErasedAt %v and %v, want one", got[0].ErasedAt, got[i].ErasedAt)
		}
	}
	wantSameKey(t, mustGetKey(t, ks, "subject-2"), got[0])
}

func (s suite) testKeyEraseMissing(t *testing.T) {
	_, ks := capability[strata.KeyStore](t, s)
	// A subject erased before it got a key gets a tombstone, so no key is created later.
	tomb := mustErase(t, ks, "subject-1")
	wantTombstone(t, tomb, "subject-1", "")
	if !tomb.CreatedAt.Equal(tomb.ErasedAt) {
		t.Fatalf("the tombstone of a subject without a key was created at %v and erased at %v, want one time", tomb.CreatedAt, tomb.ErasedAt)
	}
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), tomb)
	wantSameKey(t, mustErase(t, ks, "subject-1"), tomb)
	late := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-1", Wrapped: []byte("late")})
	wantSameKey(t, late, tomb)
	if !late.Erased() {
		t.Fatalf("create after erasure returned a live key %s", fmtKey(late))
	}
	if ok, err := ks.RewrapSubjectKey(testContext(t), "", "subject-1", "", "kek-2", []byte("w")); err == nil || ok {
		// An empty old KEK is not a valid name; it must not match the tombstone's.
		t.Fatalf("rewrap of a tombstone with an empty old KEK: %v, %v; want an Invalid error", ok, err)
	}
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), tomb)
}

func (s suite) testKeyErasedBytesGone(t *testing.T) {
	if s.f.RawContains == nil {
		t.Skip("the backend cannot be scanned (Features.RawContains is nil)")
	}
	ctx := testContext(t)
	st, ks := capability[strata.KeyStore](t, s)
	first, second, other := randomBytes(48), randomBytes(48), randomBytes(48)
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-1", Wrapped: first})
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-2", KEK: "kek-1", Wrapped: other})
	// The hook must see what the store keeps, or its "not found" proves nothing.
	if !s.f.RawContains(t, st, first) {
		t.Fatalf("Features.RawContains does not find a stored wrapped key")
	}
	if ok, err := ks.RewrapSubjectKey(ctx, "", "subject-1", "kek-1", "kek-2", second); err != nil || !ok {
		t.Fatalf("rewrap: %v, %v", ok, err)
	}
	if !s.f.RawContains(t, st, second) {
		t.Fatalf("Features.RawContains does not find a rewrapped key")
	}
	mustErase(t, ks, "subject-1")
	for _, needle := range [][]byte{first, second} {
		if s.f.RawContains(t, st, needle) {
			t.Fatalf("the wrapped key of an erased subject is still in the database")
		}
	}
	if !s.f.RawContains(t, st, other) {
		t.Fatalf("erasing one subject lost another subject's key")
	}
}

func (s suite) testKeyList(t *testing.T) {
	_, ks := capability[strata.KeyStore](t, s)
	if keys := mustList(t, ks, "", 0); len(keys) != 0 {
		t.Fatalf("an empty store lists %d keys", len(keys))
	}
	subjects := []string{"subject-b", "subject-a", "Subject-a", "subject-a ", "subject-á", "主体", "subject-10", "subject-9", "~", " "}
	for i := range 15 {
		subjects = append(subjects, fmt.Sprintf("s-%02d", i))
	}
	for i, subject := range subjects {
		if i%3 == 0 {
			mustErase(t, ks, subject) // tombstones are listed too
		} else {
			mustCreateKey(t, ks, strata.SubjectKey{Subject: subject, KEK: "kek", Wrapped: []byte(subject)})
		}
	}
	want := slices.Clone(subjects)
	slices.Sort(want) // byte order of the UTF-8
	all := mustList(t, ks, "", 0)
	var names []string
	for _, k := range all {
		names = append(names, k.Subject)
		i := slices.Index(subjects, k.Subject)
		if i%3 == 0 {
			wantTombstone(t, k, k.Subject, "")
		} else {
			wantKey(t, k, k.Subject, "kek", []byte(k.Subject))
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("listed %q, want %q", names, want)
	}
	// Paging with the last subject as the cursor visits every key once, in order.
	for _, limit := range []int{1, 4, 7, len(want), len(want) + 1} {
		var paged []string
		after := ""
		for pages := 0; ; pages++ {
			page := mustList(t, ks, after, limit)
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d keys", limit, len(page))
			}
			for _, k := range page {
				paged = append(paged, k.Subject)
			}
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].Subject
			if pages > len(want) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("limit %d: paged %q, want %q", limit, paged, want)
		}
	}
	// A cursor need not be a stored subject; a negative limit means the default.
	if page := mustList(t, ks, "subject-a!", -1); len(page) == 0 || page[0].Subject != "subject-b" {
		t.Fatalf("list after %q starts with %v, want subject-b", "subject-a!", page)
	}
	if page := mustList(t, ks, want[len(want)-1], 10); len(page) != 0 {
		t.Fatalf("list after the last subject: %d keys", len(page))
	}
}

func (s suite) testKeyRewrap(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	created := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-1", Wrapped: []byte("under-1")})
	rewrap := func(oldKEK, newKEK, wrapped string) bool {
		t.Helper()
		ok, err := ks.RewrapSubjectKey(ctx, "", "subject-1", oldKEK, newKEK, []byte(wrapped))
		if err != nil {
			t.Fatalf("rewrap %s→%s: %v", oldKEK, newKEK, err)
		}
		return ok
	}
	// A wrong old KEK changes nothing.
	if rewrap("kek-0", "kek-2", "under-2") {
		t.Fatalf("rewrap with the wrong old KEK succeeded")
	}
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), created)
	if !rewrap("kek-1", "kek-2", "under-2") {
		t.Fatalf("rewrap with the right old KEK failed")
	}
	got := mustGetKey(t, ks, "subject-1")
	wantKey(t, got, "subject-1", "kek-2", []byte("under-2"))
	if !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("rewrap changed CreatedAt from %v to %v", created.CreatedAt, got.CreatedAt)
	}
	// The swap is not repeatable with the old KEK.
	if rewrap("kek-1", "kek-3", "under-3") {
		t.Fatalf("a second rewrap from the replaced KEK succeeded")
	}
	// Rewrapping under the same KEK (a re-encryption) is allowed.
	if !rewrap("kek-2", "kek-2", "under-2b") {
		t.Fatalf("rewrap under the same KEK failed")
	}
	wantKey(t, mustGetKey(t, ks, "subject-1"), "subject-1", "kek-2", []byte("under-2b"))

	// Racing rotations from one KEK: exactly one wins.
	var wg sync.WaitGroup
	oks := make([]bool, 8)
	errs := make([]error, 8)
	for i := range oks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			oks[i], errs[i] = ks.RewrapSubjectKey(ctx, "", "subject-1", "kek-2", fmt.Sprintf("kek-r%d", i), fmt.Appendf(nil, "r%d", i))
		}()
	}
	wg.Wait()
	winner := -1
	for i := range oks {
		if errs[i] != nil {
			t.Fatalf("concurrent rewrap: %v", errs[i])
		}
		if oks[i] {
			if winner >= 0 {
				t.Fatalf("rewraps %d and %d from one KEK both succeeded", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no concurrent rewrap succeeded")
	}
	wantKey(t, mustGetKey(t, ks, "subject-1"), "subject-1", fmt.Sprintf("kek-r%d", winner), fmt.Appendf(nil, "r%d", winner))

	// A missing subject is false, and no key is created for it.
	if ok, err := ks.RewrapSubjectKey(ctx, "", "subject-2", "kek-1", "kek-2", []byte("w")); err != nil || ok {
		t.Fatalf("rewrap of a missing subject: %v, %v; want false", ok, err)
	}
	wantNoKey(t, ks, "subject-2")
	// An erased subject is false, and stays erased.
	tomb := mustErase(t, ks, "subject-1")
	if ok, err := ks.RewrapSubjectKey(ctx, "", "subject-1", tomb.KEK, "kek-9", []byte("revived")); err != nil || ok {
		t.Fatalf("rewrap of an erased subject: %v, %v; want false", ok, err)
	}
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), tomb)
}

func (s suite) testKeyReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	st, ks := capability[strata.KeyStore](t, s)
	live := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek-1", Wrapped: binary})
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-2", KEK: "kek-1", Wrapped: []byte("w2")})
	tomb := mustErase(t, ks, "subject-2")
	never := mustErase(t, ks, "subject-3")
	tenanted := mustCreateKey(t, ks, strata.SubjectKey{Tenant: "acme", Subject: "subject-1", KEK: "kek-1", Wrapped: []byte("acme-w1")})
	ks2 := reopen[strata.KeyStore](t, s, st)
	wantSameKey(t, mustGetKeyOf(t, ks2, "acme", "subject-1"), tenanted)
	wantSameKey(t, mustGetKey(t, ks2, "subject-1"), live)
	wantSameKey(t, mustGetKey(t, ks2, "subject-2"), tomb)
	wantSameKey(t, mustGetKey(t, ks2, "subject-3"), never)
	wantSameKey(t, mustCreateKey(t, ks2, strata.SubjectKey{Subject: "subject-3", KEK: "k", Wrapped: []byte("w")}), never)
	wantNoKey(t, ks2, "subject-4")
	if keys := mustList(t, ks2, "", 0); len(keys) != 4 {
		t.Fatalf("after a restart %d keys are listed, want 4", len(keys))
	}
}

func (s suite) testKeyBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	badNames := []struct{ what, name string }{
		{"empty", ""},
		{"oversized", strings.Repeat("s", strata.MaxSubjectLen+1)},
		{"oversized multibyte", strings.Repeat("ü", strata.MaxSubjectLen/2+1)},
		{"not UTF-8", "subject-\xff"},
		{"with NUL", "subject\x00"},
		{"with a newline", "subject\n1"},
	}
	for _, c := range badNames {
		k := strata.SubjectKey{Subject: c.name, KEK: "kek", Wrapped: []byte("w")}
		_, err := ks.CreateSubjectKey(ctx, k)
		wantCode(t, err, strata.Invalid, "create key with a subject "+c.what)
		_, err = ks.SubjectKey(ctx, "", c.name)
		wantCode(t, err, strata.Invalid, "key of a subject "+c.what)
		_, err = ks.EraseSubjectKey(ctx, "", c.name)
		wantCode(t, err, strata.Invalid, "erase key of a subject "+c.what)
		_, err = ks.RewrapSubjectKey(ctx, "", c.name, "kek", "kek-2", []byte("w"))
		wantCode(t, err, strata.Invalid, "rewrap key of a subject "+c.what)
		if c.name != "" {
			_, err = ks.ListSubjectKeys(ctx, strata.SubjectKey{Subject: c.name}, 0)
			wantCode(t, err, strata.Invalid, "list keys after a cursor "+c.what)
		}
		_, err = ks.CreateSubjectKey(ctx, strata.SubjectKey{Subject: "subject-1", KEK: c.name, Wrapped: []byte("w")})
		wantCode(t, err, strata.Invalid, "create key with a KEK name "+c.what)
	}
	for _, c := range []struct {
		what    string
		wrapped []byte
	}{{"nil", nil}, {"empty", []byte{}}, {"oversized", make([]byte, strata.MaxWrappedKeyLen+1)}} {
		_, err := ks.CreateSubjectKey(ctx, strata.SubjectKey{Subject: "subject-1", KEK: "kek", Wrapped: c.wrapped})
		wantCode(t, err, strata.Invalid, "create key with a wrapped key "+c.what)
	}
	// Nothing was written, and the store still works.
	wantNoKey(t, ks, "subject-1")
	wantNoKey(t, ks, "subject-")
	if keys := mustList(t, ks, "", 0); len(keys) != 0 {
		t.Fatalf("bad input stored %d keys", len(keys))
	}
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek", Wrapped: []byte("ok")})
	for _, c := range []struct {
		what           string
		oldKEK, newKEK string
		wrapped        []byte
	}{
		{"an empty old KEK", "", "kek-2", []byte("w")},
		{"an empty new KEK", "kek", "", []byte("w")},
		{"a new KEK with a control character", "kek", "kek\t2", []byte("w")},
		{"an empty wrapped key", "kek", "kek-2", nil},
		{"an oversized wrapped key", "kek", "kek-2", make([]byte, strata.MaxWrappedKeyLen+1)},
	} {
		ok, err := ks.RewrapSubjectKey(ctx, "", "subject-1", c.oldKEK, c.newKEK, c.wrapped)
		wantCode(t, err, strata.Invalid, "rewrap with "+c.what)
		if ok {
			t.Fatalf("rewrap with %s reported success", c.what)
		}
	}
	wantKey(t, mustGetKey(t, ks, "subject-1"), "subject-1", "kek", []byte("ok"))
}

func (s suite) testKeyCancel(t *testing.T) {
	ctx := testContext(t)
	_, ks := capability[strata.KeyStore](t, s)
	k := mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek", Wrapped: []byte("w")})
	done := cancelled(ctx)
	_, err := ks.CreateSubjectKey(done, strata.SubjectKey{Subject: "subject-2", KEK: "kek", Wrapped: []byte("w")})
	wantCanceled(t, err, "create subject key")
	_, err = ks.SubjectKey(done, "", "subject-1")
	wantCanceled(t, err, "subject key")
	_, err = ks.EraseSubjectKey(done, "", "subject-1")
	wantCanceled(t, err, "erase subject key")
	_, err = ks.ListSubjectKeys(done, strata.SubjectKey{}, 0)
	wantCanceled(t, err, "list subject keys")
	_, err = ks.RewrapSubjectKey(done, "", "subject-1", "kek", "kek-2", []byte("w2"))
	wantCanceled(t, err, "rewrap subject key")
	wantSameKey(t, mustGetKey(t, ks, "subject-1"), k)
	wantNoKey(t, ks, "subject-2")
}

func (s suite) testKeyAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, ks := capability[strata.KeyStore](t, s)
	mustCreateKey(t, ks, strata.SubjectKey{Subject: "subject-1", KEK: "kek", Wrapped: []byte("w")})
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	_, err := ks.CreateSubjectKey(ctx, strata.SubjectKey{Subject: "subject-2", KEK: "kek", Wrapped: []byte("w")})
	wantClosed(t, err, "create subject key")
	_, err = ks.SubjectKey(ctx, "", "subject-1")
	wantClosed(t, err, "subject key")
	_, err = ks.EraseSubjectKey(ctx, "", "subject-1")
	wantClosed(t, err, "erase subject key")
	_, err = ks.ListSubjectKeys(ctx, strata.SubjectKey{}, 0)
	wantClosed(t, err, "list subject keys")
	_, err = ks.RewrapSubjectKey(ctx, "", "subject-1", "kek", "kek-2", []byte("w2"))
	wantClosed(t, err, "rewrap subject key")
}

// --- schemas ---

func mustSetSchema(t testing.TB, ss strata.SchemaStore, sc strata.EventSchema) {
	t.Helper()
	if err := ss.SetEventSchema(testContext(t), sc); err != nil {
		t.Fatalf("set schema of %q: %v", sc.Type, err)
	}
}

func wantSchemas(t testing.TB, ss strata.SchemaStore, want ...strata.EventSchema) {
	t.Helper()
	got, err := ss.EventSchemas(testContext(t))
	if err != nil {
		t.Fatalf("event schemas: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d schemas %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].Subject != want[i].Subject || !slices.Equal(got[i].Sensitive, want[i].Sensitive) {
			t.Fatalf("schema %d is %+v, want %+v", i, got[i], want[i])
		}
	}
}

func (s suite) testSchemaSetList(t *testing.T) {
	_, ss := capability[strata.SchemaStore](t, s)
	wantSchemas(t, ss)
	issued := strata.EventSchema{Type: "CertificateIssued", Sensitive: []string{"subjectDN", "holder.email", "holder.name"}, Subject: "holder.id"}
	paths := slices.Clone(issued.Sensitive)
	mustSetSchema(t, ss, strata.EventSchema{Type: issued.Type, Sensitive: paths, Subject: issued.Subject})
	paths[0] = "changed" // the store keeps its own copy
	wantSchemas(t, ss, issued)

	// Setting again replaces, and the subject path may be empty.
	replaced := strata.EventSchema{Type: "CertificateIssued", Sensitive: []string{"holder.email"}}
	mustSetSchema(t, ss, replaced)
	wantSchemas(t, ss, replaced)

	// Listed in the byte order of Type; paths keep their order, names their case and accents.
	most := make([]string, strata.MaxSchemaPaths)
	for i := range most {
		most[i] = fmt.Sprintf("f%02d.%s", strata.MaxSchemaPaths-i, strings.Repeat("é", 100))
	}
	others := []strata.EventSchema{
		{Type: "certificateIssued", Sensitive: []string{"b", "a"}, Subject: "s"},
		{Type: "CertificateRevoked", Sensitive: most, Subject: "holder.id"},
		{Type: "Z", Sensitive: []string{"Ä.ö", "\"quoted\".'x'"}},
		{Type: strings.Repeat("T", strata.MaxTypeLen), Sensitive: []string{strings.Repeat("p", strata.MaxSchemaPathLen)}, Subject: strings.Repeat("q", strata.MaxSchemaPathLen)},
	}
	for _, sc := range others {
		mustSetSchema(t, ss, sc)
	}
	want := append([]strata.EventSchema{replaced}, others...)
	slices.SortFunc(want, func(a, b strata.EventSchema) int { return strings.Compare(a.Type, b.Type) })
	wantSchemas(t, ss, want...)
	got, err := ss.EventSchemas(testContext(t))
	if err != nil {
		t.Fatalf("event schemas: %v", err)
	}
	got[0].Sensitive[0] = "changed" // and hands out copies
	wantSchemas(t, ss, want...)

	// Concurrent setters of one type all succeed and one of them wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ss.SetEventSchema(testContext(t), strata.EventSchema{Type: "Racy", Sensitive: []string{fmt.Sprintf("p%d", i)}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent set schema: %v", err)
		}
	}
	all, err := ss.EventSchemas(testContext(t))
	if err != nil {
		t.Fatalf("event schemas: %v", err)
	}
	i := slices.IndexFunc(all, func(sc strata.EventSchema) bool { return sc.Type == "Racy" })
	if i < 0 || len(all[i].Sensitive) != 1 || !strings.HasPrefix(all[i].Sensitive[0], "p") {
		t.Fatalf("schema after concurrent sets: %+v", all)
	}
}

func (s suite) testSchemaReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	st, ss := capability[strata.SchemaStore](t, s)
	a := strata.EventSchema{Type: "CertificateIssued", Sensitive: []string{"subjectDN", "holder.email"}, Subject: "holder.id"}
	b := strata.EventSchema{Type: "ConsentGiven", Sensitive: []string{"email"}}
	mustSetSchema(t, ss, b)
	mustSetSchema(t, ss, a)
	ss2 := reopen[strata.SchemaStore](t, s, st)
	wantSchemas(t, ss2, a, b)
}

func (s suite) testSchemaBadInput(t *testing.T) {
	_, ss := capability[strata.SchemaStore](t, s)
	tooMany := make([]string, strata.MaxSchemaPaths+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("f%d", i)
	}
	ok := []string{"email"}
	for _, c := range []struct {
		what string
		sc   strata.EventSchema
	}{
		{"an empty type", strata.EventSchema{Sensitive: ok}},
		{"an oversized type", strata.EventSchema{Type: strings.Repeat("T", strata.MaxTypeLen+1), Sensitive: ok}},
		{"a type that is not UTF-8", strata.EventSchema{Type: "T\xff", Sensitive: ok}},
		{"a type with a control character", strata.EventSchema{Type: "T\n", Sensitive: ok}},
		{"no paths", strata.EventSchema{Type: "T"}},
		{"an empty list of paths", strata.EventSchema{Type: "T", Sensitive: []string{}}},
		{"too many paths", strata.EventSchema{Type: "T", Sensitive: tooMany}},
		{"an empty path", strata.EventSchema{Type: "T", Sensitive: []string{"email", ""}}},
		{"an oversized path", strata.EventSchema{Type: "T", Sensitive: []string{strings.Repeat("p", strata.MaxSchemaPathLen+1)}}},
		{"a path that is not UTF-8", strata.EventSchema{Type: "T", Sensitive: []string{"e\xff"}}},
		{"a path with NUL", strata.EventSchema{Type: "T", Sensitive: []string{"e\x00"}}},
		{"a path with an empty field name", strata.EventSchema{Type: "T", Sensitive: []string{"holder..email"}}},
		{"a duplicate path", strata.EventSchema{Type: "T", Sensitive: []string{"email", "name", "email"}}},
		{"an oversized subject path", strata.EventSchema{Type: "T", Sensitive: ok, Subject: strings.Repeat("p", strata.MaxSchemaPathLen+1)}},
		{"a subject path with a control character", strata.EventSchema{Type: "T", Sensitive: ok, Subject: "id\r"}},
		{"a subject path with an empty field name", strata.EventSchema{Type: "T", Sensitive: ok, Subject: ".id"}},
	} {
		wantCode(t, ss.SetEventSchema(testContext(t), c.sc), strata.Invalid, "set schema with "+c.what)
	}
	// Nothing was written, and a bad schema leaves a stored one alone.
	wantSchemas(t, ss)
	good := strata.EventSchema{Type: "T", Sensitive: ok}
	mustSetSchema(t, ss, good)
	wantCode(t, ss.SetEventSchema(testContext(t), strata.EventSchema{Type: "T", Sensitive: tooMany}), strata.Invalid, "too many paths over a stored schema")
	wantSchemas(t, ss, good)
}

func (s suite) testSchemaCancelClose(t *testing.T) {
	ctx := testContext(t)
	st, ss := capability[strata.SchemaStore](t, s)
	good := strata.EventSchema{Type: "T", Sensitive: []string{"email"}}
	mustSetSchema(t, ss, good)
	done := cancelled(ctx)
	wantCanceled(t, ss.SetEventSchema(done, strata.EventSchema{Type: "U", Sensitive: []string{"x"}}), "set event schema")
	_, err := ss.EventSchemas(done)
	wantCanceled(t, err, "event schemas")
	wantSchemas(t, ss, good)
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantClosed(t, ss.SetEventSchema(ctx, strata.EventSchema{Type: "U", Sensitive: []string{"x"}}), "set event schema")
	_, err = ss.EventSchemas(ctx)
	wantClosed(t, err, "event schemas")
}
