package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/inmem"
)

// FuzzParseKey checks that an accepted API key is strata_ID_SECRET with a valid ID.
func FuzzParseKey(f *testing.F) {
	key, _, _ := httpapi.NewKey(strata.RoleReader, "acme", "")
	f.Add(key)
	f.Add("strata_0123456789abcdef_")
	f.Add("strata_0123456789ABCDEF_x_y")
	f.Add("strata__x")
	f.Fuzz(func(t *testing.T, key string) {
		id, ok := httpapi.ParseKey(key)
		if !ok {
			return
		}
		if strata.ValidateAPIKeyID("", id) != nil || !strings.HasPrefix(key, httpapi.KeyPrefix+id+"_") || len(key) == len(httpapi.KeyPrefix+id+"_") {
			t.Fatalf("%q accepted with ID %q", key, id)
		}
	})
}

// newFuzzAPI returns a handler with one reader key of tenant acme, already in the key cache
// (so that a request whose context is cancelled is still authenticated).
func newFuzzAPI(f *testing.F) (http.Handler, string) {
	st := inmem.New()
	api, err := httpapi.New(httpapi.Config{Store: st, Logger: discardLogger(), KeyCacheTTL: 24 * time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	key, rec, _ := httpapi.NewKey(strata.RoleReader, "acme", "")
	if _, err := st.CreateAPIKey(context.Background(), rec); err != nil {
		f.Fatal(err)
	}
	h := api.Handler()
	req := httptest.NewRequest("GET", "http://strata.test/v1/streams", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	if h.ServeHTTP(w, req); w.Code != http.StatusOK {
		f.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return h, key
}

// checkError fails unless w holds a typed error body with the status of its code.
func checkError(t *testing.T, w *httptest.ResponseRecorder, want int) {
	t.Helper()
	var eb httpapi.ErrorBody
	if w.Code != want || json.Unmarshal(w.Body.Bytes(), &eb) != nil || httpapi.StatusOf(eb.Error.Code) != w.Code {
		t.Fatalf("status %d (want %d): %s", w.Code, want, w.Body)
	}
}

// FuzzAuthorization sends any Authorization header: only the key itself, as a Bearer key,
// is let in; anything else is a typed 401.
func FuzzAuthorization(f *testing.F) {
	h, key := newFuzzAPI(f)
	f.Add("Bearer " + key)
	f.Add("bearer  " + key + " ")
	f.Add("Basic " + key)
	f.Add("Bearer " + key[:len(key)-1] + "A")
	f.Add("Bearer strata_0123456789abcdef_x")
	f.Add("")
	f.Fuzz(func(t *testing.T, auth string) {
		req := httptest.NewRequest("GET", "http://strata.test/v1/streams", nil)
		req.Header["Authorization"] = []string{auth}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		scheme, k, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(k) == key {
			if w.Code != http.StatusOK {
				t.Fatalf("%q: status %d: %s", auth, w.Code, w.Body)
			}
			return
		}
		checkError(t, w, http.StatusUnauthorized)
	})
}

// FuzzLastEventID sends any Last-Event-ID to the subscription: a position starts it (here on a
// cancelled request, so that it ends at once), anything else is a typed 400.
func FuzzLastEventID(f *testing.F) {
	h, key := newFuzzAPI(f)
	for _, s := range []string{"0", "42", "1017.42", "x", "1.", ".1", "-1", "18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequest("GET", "http://strata.test/v1/subscribe", nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Last-Event-ID", id)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if _, err := strata.ParsePosition(id); err == nil {
			if w.Code != http.StatusOK {
				t.Fatalf("%q: status %d: %s", id, w.Code, w.Body)
			}
			return
		}
		checkError(t, w, http.StatusBadRequest)
	})
}
