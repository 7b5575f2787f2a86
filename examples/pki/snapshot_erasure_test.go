package pki_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/shred"
)

// holderCard is a certificate state that, unlike pki.Certificate, copies the holder's personal
// data from CertificateIssued: its snapshots would hold it, were they not protected.
type holderCard struct {
	Serial    string `json:"serial"`
	SubjectID string `json:"subjectId" strata:"subject"`
	SubjectDN string `json:"subjectDN" strata:"sensitive"`
	Email     string `json:"email" strata:"sensitive"`
	Renewals  int    `json:"renewals"`
}

var holderDecider = aggregate.Decider[holderCard, pki.CertificateCommand, pki.CertificateEvent]{
	Decide: func(c holderCard, cmd pki.CertificateCommand) ([]pki.CertificateEvent, error) {
		switch cmd := cmd.(type) {
		case pki.IssueCertificate:
			return []pki.CertificateEvent{pki.CertificateIssued{Serial: cmd.Serial, SubjectID: cmd.SubjectID, SubjectDN: cmd.SubjectDN,
				SubjectEmail: cmd.SubjectEmail, ValidFrom: cmd.ValidFrom, ValidTo: cmd.ValidTo}}, nil
		case pki.RenewCertificate:
			return []pki.CertificateEvent{pki.CertificateRenewed{Serial: c.Serial, ValidTo: cmd.ValidTo}}, nil
		}
		return nil, fmt.Errorf("holder card: unexpected %s", cmd.CommandName())
	},
	Evolve: func(c holderCard, e pki.CertificateEvent) holderCard {
		switch e := e.(type) {
		case pki.CertificateIssued:
			c = holderCard{Serial: e.Serial, SubjectID: e.SubjectID, SubjectDN: e.SubjectDN, Email: e.SubjectEmail}
		case pki.CertificateRenewed:
			c.Renewals++
		}
		return c
	},
}

// TestSnapshotErasure snapshots a state that holds a subject's DN and e-mail after every event,
// on every backend, and requires: no table holds the clear text, before or after the erasure;
// after it, the snapshot is dropped and the state replays with the redaction markers the events
// yield, and the next snapshot holds only those markers.
func TestSnapshotErasure(t *testing.T) {
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
			reg, err := pki.NewRegistry()
			if err != nil {
				t.Fatal(err)
			}
			reg.Use(protector)
			cards, err := aggregate.New(s.st, reg, holderDecider, aggregate.WithSnapshots(1, 1))
			if err != nil {
				t.Fatal(err)
			}
			replay, err := aggregate.New(s.st, reg, holderDecider) // no snapshots: the events alone
			if err != nil {
				t.Fatal(err)
			}
			handle := func(c pki.CertificateCommand) {
				t.Helper()
				if _, err := cards.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{ID: uuid.Must(uuid.NewV7()), Stream: "holder-C4D2", Command: c}); err != nil {
					t.Fatal(err)
				}
			}
			noClearText := func(when string) {
				t.Helper()
				for _, needle := range []string{erasedDN, erasedEmail, "Vexmoor"} {
					if hits := s.hits(t, []byte(needle)); len(hits) > 0 {
						t.Fatalf("%s, %q is stored in clear: %v", when, needle, hits)
					}
				}
			}
			now := time.Now().UTC()
			handle(pki.IssueCertificate{Serial: "C4D2", SubjectID: "subject-c4d2", SubjectDN: erasedDN, SubjectEmail: erasedEmail,
				ValidFrom: now.Add(-time.Hour), ValidTo: now.AddDate(1, 0, 0)})
			snap, err := s.st.(strata.SnapshotStore).LoadSnapshot(ctx, "holder-C4D2")
			if err != nil || snap.Version != 1 || !bytes.Contains(snap.Data, []byte("strata:enc:v1:")) {
				t.Fatalf("the snapshot: %q %v", snap.Data, err)
			}
			noClearText("with a snapshot of the state")
			if card, v, err := cards.Load(ctx, "holder-C4D2"); err != nil || v != 1 || card.SubjectDN != erasedDN || card.Email != erasedEmail {
				t.Fatalf("loading from the snapshot: %+v %d %v", card, v, err)
			}

			if _, err := protector.Erase(ctx, "subject-c4d2", strata.Metadata{Principal: "dpo"}); err != nil {
				t.Fatal(err)
			}
			noClearText("after the erasure")
			want := holderCard{Serial: "C4D2", SubjectID: "subject-c4d2", SubjectDN: shred.Redacted, Email: shred.Redacted}
			if card, _, err := replay.Load(ctx, "holder-C4D2"); err != nil || card != want {
				t.Fatalf("replaying the events after the erasure: %+v %v", card, err)
			}
			if card, v, err := cards.Load(ctx, "holder-C4D2"); err != nil || v != 1 || card != want {
				t.Fatalf("loading after the erasure: %+v %d %v, want %+v (as the events replay)", card, v, err, want)
			}
			if _, err := s.st.(strata.SnapshotStore).LoadSnapshot(ctx, "holder-C4D2"); !errors.Is(err, strata.ErrNotFound) {
				t.Fatalf("the snapshot of the erased subject was kept: %v", err)
			}

			// The next snapshot holds the redaction markers, needs no key, and loads as the
			// events replay.
			handle(pki.RenewCertificate{Serial: "C4D2", ValidTo: now.AddDate(2, 0, 0), At: now})
			snap, err = s.st.(strata.SnapshotStore).LoadSnapshot(ctx, "holder-C4D2")
			if err != nil || snap.Version != 2 || bytes.Contains(snap.Data, []byte("strata:enc:")) || !bytes.Contains(snap.Data, []byte(shred.Redacted)) {
				t.Fatalf("the snapshot after the erasure: %q %v", snap.Data, err)
			}
			want.Renewals = 1
			for _, repo := range []*aggregate.Repository[holderCard, pki.CertificateCommand, pki.CertificateEvent]{cards, replay} {
				if card, v, err := repo.Load(ctx, "holder-C4D2"); err != nil || v != 2 || card != want {
					t.Fatalf("loading after the renewal: %+v %d %v, want %+v", card, v, err, want)
				}
			}
			noClearText("at the end")
		})
	}
}

// TestSnapshotsNeedAProtector: a repository whose state has sensitive fields saves no snapshot
// when its registry has no protector, rather than one in clear.
func TestSnapshotsNeedAProtector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := scannedBackends[0].open(t)
	defer s.st.Close()
	reg, err := pki.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	cards, err := aggregate.New(s.st, reg, holderDecider, aggregate.WithSnapshots(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := cards.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{Stream: "holder-0A0A", Command: pki.IssueCertificate{Serial: "0A0A",
		SubjectID: "subject-0a0a", SubjectDN: erasedDN, SubjectEmail: erasedEmail, ValidFrom: now.Add(-time.Hour), ValidTo: now.AddDate(1, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.(strata.SnapshotStore).LoadSnapshot(ctx, "holder-0A0A"); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("a snapshot was saved without a protector: %v", err)
	}
	if err := cards.SaveSnapshot(ctx, "holder-0A0A"); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("SaveSnapshot without a protector: %v", err)
	}
}
