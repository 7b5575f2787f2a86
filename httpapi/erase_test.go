package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/shred"
)

// declareConsent declares the personal data of ConsentGiven events in st: the field email of
// the subject subjectId. A Protector made afterwards (withProtector) encrypts it.
func declareConsent(t testing.TB, st strata.Store) {
	t.Helper()
	if err := st.(strata.SchemaStore).SetEventSchema(context.Background(), strata.EventSchema{Type: "ConsentGiven", Sensitive: []string{"email"}, Subject: "subjectId"}); err != nil {
		t.Fatal(err)
	}
}

// appendConsent appends, as tenant's writer, a ConsentGiven of subject with email to the
// stream consent-TENANT-SUBJECT, and returns the stream.
func appendConsent(t testing.TB, e *env, tenant, subject, email string) string {
	t.Helper()
	stream := "consent-" + tenant + "-" + subject
	r := e.do("POST", "/v1/streams/"+stream+"/events", e.keys[tenant+"/writer"], appendBody(nil,
		event("ConsentGiven", map[string]any{"subjectId": subject, "email": email})))
	if r.status != http.StatusCreated {
		t.Fatalf("append consent of %s/%s: %d %s", tenant, subject, r.status, r.body)
	}
	return stream
}

// emailOf reads the email of the stream's first event as tenant's reader: the clear text, the
// redaction marker after erasure, or "" with the status of a refused read.
func emailOf(t testing.TB, e *env, tenant, stream string) (string, int) {
	t.Helper()
	r := e.do("GET", "/v1/streams/"+stream+"/events", e.keys[tenant+"/reader"], nil)
	if r.status != http.StatusOK {
		return "", r.status
	}
	var page struct {
		Events []struct {
			Data map[string]any `json:"data"`
		} `json:"events"`
	}
	r.json(t, &page)
	if len(page.Events) == 0 {
		t.Fatalf("%s reads no events of %s", tenant, stream)
	}
	email, _ := page.Events[0].Data["email"].(string)
	return email, r.status
}

// TestEraseIsTenantScoped: a key erases subjects of its own tenant only. Every role of a tenant
// that does not hold the subject gets 403 (the role may not erase) or 404 (an admin: no such
// subject, answered exactly as for a subject no one has), and the owner's data still decrypts.
// The same subject ID in two tenants is two data subjects: erasing it in one leaves the other.
func TestEraseIsTenantScoped(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			declareConsent(t, st)
			e := newEnv(t, st, withProtector(t))
			const aliceMail, bobMail, carolMail = "alice@acme.example", "bob@umbrella.example", "carol@umbrella.example"
			alice := appendConsent(t, e, "acme", "subject-4711", aliceMail)
			bob := appendConsent(t, e, "umbrella", "subject-4711", bobMail)  // the same ID, another tenant
			carol := appendConsent(t, e, "umbrella", "subject-9", carolMail) // umbrella's only
			stillClear := func(when string) {
				t.Helper()
				for _, c := range []struct{ tenant, stream, want string }{
					{"acme", alice, aliceMail}, {"umbrella", bob, bobMail}, {"umbrella", carol, carolMail},
				} {
					if got, status := emailOf(t, e, c.tenant, c.stream); got != c.want {
						t.Fatalf("%s: %s reads %q (%d), want %q", when, c.stream, got, status, c.want)
					}
				}
			}
			stillClear("before any erasure")

			// acme's keys try umbrella's subject; an admin's refusal reads as for a subject no one has.
			var refusal, none httpapi.ErrorBody
			for _, role := range strata.Roles {
				r := e.do("POST", "/v1/subjects/subject-9/erase", e.keys["acme/"+string(role)], map[string]any{"meta": map[string]string{"ticket": "GDPR-2"}})
				want := http.StatusForbidden
				if role == strata.RoleAdmin {
					want = http.StatusNotFound
					r.json(t, &refusal)
				}
				if r.status != want {
					t.Fatalf("acme/%s erases umbrella's subject-9: %d %s, want %d", role, r.status, r.body, want)
				}
				if strings.Contains(string(r.body), "umbrella") || strings.Contains(string(r.body), carolMail) {
					t.Fatalf("acme/%s's refusal names umbrella's data: %s", role, r.body)
				}
			}
			r := e.do("POST", "/v1/subjects/subject-nobody/erase", e.keys["acme/admin"], map[string]any{"meta": map[string]string{"ticket": "GDPR-2"}})
			r.json(t, &none)
			if r.status != http.StatusNotFound || none.Error.Code != refusal.Error.Code ||
				strings.ReplaceAll(none.Error.Message, "subject-nobody", "S") != strings.ReplaceAll(refusal.Error.Message, "subject-9", "S") {
				t.Fatalf("a foreign subject is refused with %+v, an unknown one with %+v: they must not differ", refusal, none)
			}
			// A tenant may not record its erasure as another tenant's, nor write erasure streams.
			if r := e.do("POST", "/v1/subjects/subject-4711/erase", e.keys["acme/admin"], map[string]any{"meta": map[string]string{"tenant": "umbrella"}}); r.status != http.StatusForbidden {
				t.Fatalf("erasure recorded for another tenant: %d %s", r.status, r.body)
			}
			for _, stream := range []string{shred.TenantErasureStream("umbrella", "subject-9"), "erasure-subject-9"} {
				if r := e.do("POST", "/v1/streams/"+url.PathEscape(stream)+"/events", e.keys["acme/admin"], appendBody(nil, event(shred.SubjectErasedType, map[string]any{"subject": "subject-9"}))); r.status != http.StatusForbidden {
					t.Fatalf("acme appends to the erasure stream %s: %d %s", stream, r.status, r.body)
				}
			}
			stillClear("after acme's refused erasures")
			// No key and no tombstone was made for acme either: acme may still write subject-9.
			if k, err := e.store.(strata.KeyStore).SubjectKey(context.Background(), "acme", "subject-9"); strata.ErrorCode(err) != strata.NotFound {
				t.Fatalf("acme has a key of subject-9 after refused erasures: %+v %v", k, err)
			}

			// acme erases its subject-4711; umbrella's subject-4711 is untouched.
			var erased httpapi.EraseResponse
			r = e.do("POST", "/v1/subjects/subject-4711/erase", e.keys["acme/admin"], map[string]any{"meta": map[string]string{"ticket": "GDPR-3"}})
			if r.status != http.StatusOK {
				t.Fatalf("acme erases its subject-4711: %d %s", r.status, r.body)
			}
			r.json(t, &erased)
			if erased.Stream != shred.TenantErasureStream("acme", "subject-4711") {
				t.Fatalf("erasure recorded in %q", erased.Stream)
			}
			if got, _ := emailOf(t, e, "acme", alice); got != shred.Redacted {
				t.Fatalf("acme's subject-4711 after erasure reads %q", got)
			}
			if got, _ := emailOf(t, e, "umbrella", bob); got != bobMail {
				t.Fatalf("umbrella's subject-4711 after acme's erasure reads %q", got)
			}
			// The record is acme's: acme reads it, umbrella does not see it.
			path := "/v1/streams/" + url.PathEscape(erased.Stream) + "/events"
			if r := e.do("GET", path, e.keys["acme/reader"], nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "GDPR-3") {
				t.Fatalf("acme reads its erasure record: %d %s", r.status, r.body)
			}
			if r := e.do("GET", path, e.keys["umbrella/admin"], nil); r.status != http.StatusNotFound {
				t.Fatalf("umbrella reads acme's erasure record: %d %s", r.status, r.body)
			}
			// Erasing again answers the same tombstone.
			var again httpapi.EraseResponse
			e.do("POST", "/v1/subjects/subject-4711/erase", e.keys["acme/admin"], nil).json(t, &again)
			if again != erased {
				t.Fatalf("second erasure %+v, first %+v", again, erased)
			}
			// umbrella erases its own subject-4711 too.
			if r := e.do("POST", "/v1/subjects/subject-4711/erase", e.keys["umbrella/admin"], nil); r.status != http.StatusOK {
				t.Fatalf("umbrella erases its subject-4711: %d %s", r.status, r.body)
			}
			if got, _ := emailOf(t, e, "umbrella", bob); got != shred.Redacted {
				t.Fatalf("umbrella's subject-4711 after its erasure reads %q", got)
			}
			if got, _ := emailOf(t, e, "umbrella", carol); got != carolMail {
				t.Fatalf("umbrella's subject-9 after the erasure of subject-4711 reads %q", got)
			}
		})
	}
}
