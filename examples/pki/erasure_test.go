package pki_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/mysql"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/shred"
	"github.com/strata-events/strata/sqlite"
	"github.com/strata-events/strata/storetest"
)

// A distinctive subject, so that a scan for its name finds nothing else.
const (
	erasedDN    = "CN=Quillon Vexmoor,O=Erasure Test GmbH,C=DE"
	erasedEmail = "quillon.vexmoor@erasure.example"
)

// scanned is a store with a way to search every byte it keeps for a needle.
type scanned struct {
	st   strata.Store
	hits func(t *testing.T, needle []byte) []string
}

var scannedBackends = []struct {
	name string
	open func(t *testing.T) scanned
}{
	{"sqlite", func(t *testing.T) scanned {
		path := filepath.Join(t.TempDir(), "strata.db")
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return scanned{st, func(t *testing.T, needle []byte) []string {
			var hits []string
			for _, f := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
				b, err := os.ReadFile(f)
				if err == nil && bytes.Contains(b, needle) {
					hits = append(hits, f)
				}
			}
			return hits
		}}
	}},
	{"postgres", func(t *testing.T) scanned {
		dsn := testenv.Postgres(t)
		schema := testenv.PostgresSchema(t, dsn)
		st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		return scanned{st, func(t *testing.T, needle []byte) []string {
			return testenv.PostgresContains(t, dsn, schema, needle)
		}}
	}},
	{"mysql", func(t *testing.T) scanned {
		dsn := testenv.MySQLDatabase(t)
		st, err := mysql.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		return scanned{st, func(t *testing.T, needle []byte) []string { return testenv.MySQLContains(t, dsn, needle) }}
	}},
}

// TestErasure issues a certificate with a distinctive DN and e-mail, runs it through the whole
// domain (command log, revocation saga, snapshots), erases the subject, and then requires: no
// table of the database holds the clear text, reads show redaction markers, and the aggregate
// and the saga still replay.
func TestErasure(t *testing.T) {
	for _, b := range scannedBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.open(t)
			defer s.st.Close()
			kekText, _ := shred.GenerateKEK()
			kek, _ := shred.ParseKEK(kekText)
			protector, err := shred.New(ctx, s.st, kek)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := pki.NewService(s.st, pki.Config{
				Aggregate:  []aggregate.Option{aggregate.WithSnapshots(1, 1), aggregate.WithCommandLog(aggregate.CommandLog{})},
				Transforms: []codec.Transform{protector},
			})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			stream := pki.CertificateStream("E7A5")
			if _, err := svc.Certificates.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{ID: uuid.Must(uuid.NewV7()), Stream: stream,
				Command: pki.IssueCertificate{Serial: "E7A5", SubjectID: "subject-e7a5", SubjectDN: erasedDN, SubjectEmail: erasedEmail,
					ValidFrom: now.Add(-time.Hour), ValidTo: now.AddDate(1, 0, 0)},
				Meta: strata.Metadata{Tenant: "acme", Principal: "ca-operator"}}); err != nil {
				t.Fatal(err)
			}
			setupRevocation(t, ctx, svc, "E7A5")
			for _, needle := range []string{erasedDN, erasedEmail, "Vexmoor"} {
				if hits := s.hits(t, []byte(needle)); len(hits) > 0 {
					t.Fatalf("before erasure, %q is stored in clear: %v", needle, hits)
				}
			}
			issued := firstEvent(t, ctx, s.st, stream)
			m, err := svc.Registry.DecodeOne(ctx, issued)
			if err != nil || m.Value.(pki.CertificateIssued).SubjectDN != erasedDN {
				t.Fatalf("before erasure: %+v %v", m.Value, err)
			}

			// Seal the log, keep the proof of the issuance, then erase.
			skey, vkey, err := ledger.GenerateKey(rand.Reader, "erasure.test/log")
			if err != nil {
				t.Fatal(err)
			}
			signer, err := ledger.NewSigner(skey)
			if err != nil {
				t.Fatal(err)
			}
			sealer, err := ledger.NewSealer(s.st, ledger.WithSigner(signer))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := sealer.SealOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := sealer.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			prover, err := ledger.NewProver(s.st)
			if err != nil {
				t.Fatal(err)
			}
			before, err := prover.Bundle(ctx, issued.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := protector.Erase(ctx, "subject-e7a5", strata.Metadata{Principal: "dpo", Extra: map[string]string{"ticket": "GDPR-17"}}); err != nil {
				t.Fatal(err)
			}
			// Erasure changes no leaf: the full audit passes and the proof is unchanged.
			if _, _, err := sealer.SealOnce(ctx); err != nil {
				t.Fatal(err)
			}
			report, err := ledger.Audit(ctx, s.st, ledger.AuditOptions{})
			if err != nil || !report.OK() {
				t.Fatalf("audit after erasure: %+v %v", report, err)
			}
			after, err := prover.Bundle(ctx, issued.ID)
			if err != nil || !bytes.Equal(before.Leaf, after.Leaf) {
				t.Fatalf("the leaf of the erased event changed: %v", err)
			}
			policy, err := ledger.NewPolicy(vkey, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := before.Verify(policy); err != nil {
				t.Fatalf("the proof taken before the erasure no longer verifies: %v", err)
			}
			m, err = svc.Registry.DecodeOne(ctx, issued)
			if err != nil {
				t.Fatalf("reading after erasure: %v", err)
			}
			got := m.Value.(pki.CertificateIssued)
			if got.SubjectDN != shred.Redacted || got.SubjectEmail != shred.Redacted || got.Serial != "E7A5" {
				t.Fatalf("after erasure the event reads %+v", got)
			}
			// The aggregate and the saga still replay, from the events and from no snapshot.
			if err := s.st.(strata.SnapshotStore).DeleteSnapshot(ctx, stream); err != nil {
				t.Fatal(err)
			}
			cert, _, err := svc.Certificates.Load(ctx, stream)
			if err != nil || cert.Status != pki.StatusRevoked {
				t.Fatalf("the aggregate after erasure: %+v %v", cert, err)
			}
			if state, _, err := svc.Approvals.Load(ctx, "r-E7A5"); err != nil || state.Outcome != "granted" {
				t.Fatalf("the saga after erasure: %+v %v", state, err)
			}
			// The erasure is on record, without personal data.
			rec, err := storetest.Collect(s.st.ReadStream(ctx, shred.ErasureStream("subject-e7a5"), strata.ReadStreamOptions{}))
			if err != nil || len(rec) != 1 || rec[0].Meta.Principal != "dpo" || strings.Contains(string(rec[0].Data), "Vexmoor") {
				t.Fatalf("erasure record %+v %v", rec, err)
			}
		})
	}
}

func setupRevocation(t *testing.T, ctx context.Context, svc *pki.Service, serial string) {
	t.Helper()
	id := "r-" + serial
	if err := request(t, ctx, svc, pki.RequestRevocation{RequestID: id, Serial: serial, Reason: "keyCompromise", RequestedBy: "dave"}, "dave"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice", "bob"} {
		if err := request(t, ctx, svc, pki.ApproveRevocation{RequestID: id, Approver: a}, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Approvals.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
}

func firstEvent(t *testing.T, ctx context.Context, st strata.Store, stream string) strata.Event {
	t.Helper()
	evs, err := storetest.Collect(st.ReadStream(ctx, stream, strata.ReadStreamOptions{Limit: 1}))
	if err != nil || len(evs) != 1 {
		t.Fatalf("read %s: %v %v", stream, evs, err)
	}
	return evs[0]
}
