package eventsig_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/eventsig"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/shred"
	"github.com/strata-events/strata/storetest"
)

type issued struct {
	Serial    string `json:"serial"`
	SubjectID string `json:"subjectId" strata:"subject"`
	DN        string `json:"subjectDN" strata:"sensitive"`
}

// TestSignedEventsRoundTrip signs events with Ed25519 and ES256 on every backend, after field
// encryption, and checks them after a round trip through the database, after erasure, and
// after tampering.
func TestSignedEventsRoundTrip(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signers := []eventsig.Signer{eventsig.NewEd25519("ra-2026", edPriv), eventsig.NewES256("hsm-7", ecPriv)}
	verifiers := []eventsig.Verifier{eventsig.Ed25519Verifier("ra-2026", edPriv.Public().(ed25519.PublicKey)), eventsig.ES256Verifier("hsm-7", &ecPriv.PublicKey)}
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, _ := backends.Open(t, kind)
			kekText, _ := shred.GenerateKEK()
			kek, _ := shred.ParseKEK(kekText)
			p, err := shred.New(ctx, st, kek)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range signers {
				reg := codec.NewRegistry()
				if err := codec.Register[issued](reg, "Issued", 1); err != nil {
					t.Fatal(err)
				}
				reg.Use(p) // encrypt first: the signature covers the ciphertext
				reg.Use(eventsig.Transform(s))
				subject := []string{"subject-a", "subject-b"}[i]
				d, err := reg.Encode(ctx, issued{Serial: "7F3A", SubjectID: subject, DN: "CN=Signed"}, strata.Metadata{Principal: "ra", Extra: map[string]string{"ticket": "T-1"}})
				if err != nil {
					t.Fatal(err)
				}
				stream := "certificate-" + s.KeyID()
				if _, err := st.Append(ctx, stream, strata.NoStream, d); err != nil {
					t.Fatal(err)
				}
				evs, err := storetest.Collect(st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))
				if err != nil || len(evs) != 1 {
					t.Fatalf("read back: %v %v", evs, err)
				}
				e := evs[0]
				if kid, err := eventsig.Verify(e, verifiers...); err != nil || kid != s.KeyID() {
					t.Fatalf("%s: verify after a round trip: %q %v", s.Algorithm(), kid, err)
				}
				if _, err := p.Erase(ctx, subject, strata.Metadata{}); err != nil {
					t.Fatal(err)
				}
				if _, err := eventsig.Verify(e, verifiers...); err != nil {
					t.Fatalf("%s: erasure broke the signature: %v", s.Algorithm(), err)
				}
				for name, bad := range map[string]func(strata.Event) strata.Event{
					"data":     func(e strata.Event) strata.Event { e.Data = append([]byte(nil), e.Data...); e.Data[3] ^= 1; return e },
					"metadata": func(e strata.Event) strata.Event { e.Meta.Principal = "mallory"; return e },
					"type":     func(e strata.Event) strata.Event { e.Type = "Revoked"; return e },
				} {
					if _, err := eventsig.Verify(bad(e), verifiers...); !errors.Is(err, eventsig.ErrBadSig) {
						t.Errorf("%s: tampered %s: %v", s.Algorithm(), name, err)
					}
				}
				if _, err := eventsig.Verify(e, verifiers[1-i]); !errors.Is(err, eventsig.ErrUnknownKey) {
					t.Errorf("%s: without its key: %v", s.Algorithm(), err)
				}
			}
			plain := strata.Event{ID: [16]byte{1}, Type: "X", Data: []byte(`{}`)}
			if _, err := eventsig.Verify(plain, verifiers...); !errors.Is(err, eventsig.ErrUnsigned) {
				t.Errorf("unsigned event: %v", err)
			}
		})
	}
}

// TestVerifyPicksTheKeyOfTheAlgorithm: two verifiers may share a key ID across algorithms (an
// Ed25519 key and a P-256 key of one signer, rotated); Verify took the last one with the ID and
// reported an event signed with the other as signed by an unknown key.
func TestVerifyPicksTheKeyOfTheAlgorithm(t *testing.T) {
	ctx := context.Background()
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	verifiers := []eventsig.Verifier{eventsig.Ed25519Verifier("ra", edPriv.Public().(ed25519.PublicKey)), eventsig.ES256Verifier("ra", &ecPriv.PublicKey)}
	for _, s := range []eventsig.Signer{eventsig.NewEd25519("ra", edPriv), eventsig.NewES256("ra", ecPriv)} {
		rec := codec.Record{ID: [16]byte{7}, Type: "Issued", Schema: 1, Data: []byte(`{"serial":"7F3A"}`)}
		if err := eventsig.Transform(s).Encode(ctx, nil, &rec); err != nil {
			t.Fatal(err)
		}
		e := strata.Event{ID: rec.ID, Stream: "certificate-7F3A", Version: 1, Type: rec.Type, Schema: rec.Schema, Data: rec.Data, Meta: rec.Meta}
		if kid, err := eventsig.Verify(e, verifiers...); err != nil || kid != "ra" {
			t.Errorf("%s: %q, %v", s.Algorithm(), kid, err)
		}
	}
}
