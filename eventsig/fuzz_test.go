package eventsig_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/eventsig"
)

// FuzzVerify checks the signature metadata of stored events: Verify never panics, every
// error wraps ErrUnsigned, ErrUnknownKey or ErrBadSig, and it accepts only the signed payload
// under the signing key.
func FuzzVerify(f *testing.F) {
	edPriv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signers := []eventsig.Signer{eventsig.NewEd25519("ed", edPriv), eventsig.NewES256("ec", ecPriv)}
	verifiers := []eventsig.Verifier{eventsig.Ed25519Verifier("ed", edPriv.Public().(ed25519.PublicKey)), eventsig.ES256Verifier("ec", &ecPriv.PublicKey)}
	id := uuid.MustParse("0190e3c2-7b1a-7c3d-9e4f-0123456789ab")
	data := []byte(`{"serial":"7F3A"}`)
	signed := map[string]strata.Metadata{}
	for _, s := range signers {
		rec := codec.Record{ID: id, Type: "CertificateIssued", Schema: 1, Data: data, Meta: strata.Metadata{Tenant: "acme"}}
		if err := eventsig.Transform(s).Encode(context.Background(), nil, &rec); err != nil {
			f.Fatal(err)
		}
		signed[s.KeyID()] = rec.Meta
		x := rec.Meta.Extra
		f.Add(x[eventsig.MetaKeyID], x[eventsig.MetaAlgorithm], x[eventsig.MetaSignature], data)
	}
	f.Add("ed", "ES256", signed["ed"].Extra[eventsig.MetaSignature], data)
	f.Add("ed", "Ed25519", "!!", data)
	f.Add("", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, kid, alg, sig string, payload []byte) {
		e := strata.Event{ID: id, Type: "CertificateIssued", Schema: 1, Data: payload,
			Meta: strata.Metadata{Tenant: "acme", Extra: map[string]string{eventsig.MetaKeyID: kid, eventsig.MetaAlgorithm: alg, eventsig.MetaSignature: sig}}}
		got, err := eventsig.Verify(e, verifiers...)
		if err != nil {
			if !errors.Is(err, eventsig.ErrUnsigned) && !errors.Is(err, eventsig.ErrUnknownKey) && !errors.Is(err, eventsig.ErrBadSig) {
				t.Fatalf("%q %q %q: %v wraps no sentinel", kid, alg, sig, err)
			}
			return
		}
		m, ok := signed[kid]
		if got != kid || !ok || m.Extra[eventsig.MetaAlgorithm] != alg || string(payload) != string(data) {
			t.Fatalf("forged: kid %q alg %q sig %q data %q verified as %q", kid, alg, sig, payload, got)
		}
	})
}
