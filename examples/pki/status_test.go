package pki_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/examples/pki"
	sb "github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

func statusCmd(t *testing.T, ctx context.Context, svc *pki.Service, serial string, cmd pki.CertificateCommand) {
	t.Helper()
	if _, err := svc.Certificates.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{
		ID: uuid.Must(uuid.NewV7()), Stream: pki.CertificateStream(serial), Command: cmd}); err != nil {
		t.Fatalf("%s %s: %v", cmd.CommandName(), serial, err)
	}
}

func statusIssue(t *testing.T, ctx context.Context, svc *pki.Service, serial string) {
	now := time.Now().UTC()
	statusCmd(t, ctx, svc, serial, pki.IssueCertificate{Serial: serial, SubjectID: "s-" + serial, SubjectDN: "CN=" + serial,
		ValidFrom: now.Add(-time.Hour), ValidTo: now.AddDate(1, 0, 0)})
}

func waitStatus(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runStatus(t *testing.T, ctx context.Context, st strata.Store, p projection.Projection) func() {
	w, err := projection.NewWorker(st, p, projection.WithLease(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("status worker: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return stop
}

// TestStatusProjection builds the certificate_status read model and answers OCSP lookups and
// the CRL from it, on every backend; status changes made while it runs are emitted once.
func TestStatusProjection(t *testing.T) {
	for _, kind := range sb.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st, _ := sb.Open(t, kind)
			svc, err := pki.NewService(st, pki.Config{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"01", "02", "03"} {
				statusIssue(t, ctx, svc, s)
			}
			since := time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
			statusCmd(t, ctx, svc, "02", pki.RevokeCertificate{Serial: "02", Reason: "keyCompromise", InvalidSince: since, ApprovedBy: []string{"carol", "alice"}, At: time.Now()})
			view, err := pki.NewStatusView(st, svc.Registry)
			if err != nil {
				t.Fatal(err)
			}
			runStatus(t, ctx, st, view.Projection(1))
			waitStatus(t, "the revocation in the CRL", func() bool {
				crl, err := view.CRL(ctx)
				return err == nil && len(crl) == 1
			})
			crl, _ := view.CRL(ctx)
			if crl[0].Serial != "02" || crl[0].Reason != "keyCompromise" || !crl[0].RevocationTime.Equal(since) {
				t.Fatalf("CRL: %+v", crl)
			}
			rows, _, _ := view.Statuses(ctx, "02")
			if len(rows) != 1 || len(rows[0].ApprovedBy) != 2 || rows[0].ApprovedBy[0] != "alice" {
				t.Fatalf("status row: %+v", rows)
			}
			for serial, want := range map[string]pki.OCSPStatus{"01": pki.OCSPGood, "02": pki.OCSPRevoked, "99": pki.OCSPUnknown} {
				r, err := view.Lookup(ctx, serial)
				if err != nil || r.Status != want {
					t.Fatalf("lookup %s: %+v, %v; want %s", serial, r, err, want)
				}
			}
			// Live: a suspension is answered as certificateHold and emitted once.
			statusCmd(t, ctx, svc, "03", pki.SuspendCertificate{Serial: "03", Reason: "investigation", At: time.Now()})
			waitStatus(t, "the suspension", func() bool {
				r, _ := view.Lookup(ctx, "03")
				return r.Status == pki.OCSPRevoked && r.Reason == "certificateHold"
			})
			var emitted []strata.Event
			waitStatus(t, "the emitted status change", func() bool {
				emitted = emitted[:0]
				for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Types: []string{pki.StatusChangedType}}}) {
					if err != nil {
						t.Fatal(err)
					}
					emitted = append(emitted, e)
				}
				return len(emitted) > 0
			})
			if len(emitted) != 1 || emitted[0].Stream != pki.StatusStream("03") {
				t.Fatalf("emitted %d status changes (history must emit none): %+v", len(emitted), emitted)
			}
			if _, err := view.Lookup(ctx, ""); strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("lookup without serial: %v", err)
			}
		})
	}
}

// TestStatusLostRevocation: a revocation that takes the lower place in the log but commits
// after an issuance; the projection ends with the certificate revoked.
func TestStatusLostRevocation(t *testing.T) {
	for _, kind := range sb.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st, _ := sb.Open(t, kind)
			svc, err := pki.NewService(st, pki.Config{})
			if err != nil {
				t.Fatal(err)
			}
			statusIssue(t, ctx, svc, "7F3A")
			view, err := pki.NewStatusView(st, svc.Registry)
			if err != nil {
				t.Fatal(err)
			}
			runStatus(t, ctx, st, view.Projection(1))
			waitStatus(t, "the issuance", func() bool { r, _ := view.Lookup(ctx, "7F3A"); return r.Status == pki.OCSPGood })

			written, release := make(chan struct{}), make(chan struct{})
			revoked := make(chan error, 1)
			go func() {
				hook := strata.WithBeforeCommit(ctx, func(context.Context) error {
					close(written)
					<-release
					return nil
				})
				_, err := svc.Certificates.Handle(hook, aggregate.Envelope[pki.CertificateCommand]{ID: uuid.Must(uuid.NewV7()),
					Stream: pki.CertificateStream("7F3A"), Command: pki.RevokeCertificate{Serial: "7F3A", Reason: "keyCompromise", At: time.Now()}})
				revoked <- err
			}()
			<-written
			issued := make(chan struct{})
			go func() {
				defer close(issued)
				statusIssue(t, ctx, svc, "8B2C")
			}()
			select {
			case <-issued: // the issuance committed first; let the projection see it
				waitStatus(t, "a moment", func() bool { time.Sleep(100 * time.Millisecond); return true })
			case <-time.After(200 * time.Millisecond): // serial writers: the issuance waits
			}
			close(release)
			if err := <-revoked; err != nil {
				t.Fatal(err)
			}
			<-issued
			waitStatus(t, "both certificates", func() bool {
				a, _ := view.Lookup(ctx, "7F3A")
				b, _ := view.Lookup(ctx, "8B2C")
				return a.Status == pki.OCSPRevoked && b.Status == pki.OCSPGood
			})
		})
	}
}

// TestStatusBlueGreen builds certificate_status version 2 beside version 1 and switches readers.
func TestStatusBlueGreen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, _ := sb.Open(t, "sqlite")
	svc, err := pki.NewService(st, pki.Config{})
	if err != nil {
		t.Fatal(err)
	}
	statusIssue(t, ctx, svc, "A1")
	view, _ := pki.NewStatusView(st, svc.Registry)
	stop1 := runStatus(t, ctx, st, view.Projection(1))
	waitStatus(t, "v1", func() bool { r, _ := view.Lookup(ctx, "A1"); return r.Status == pki.OCSPGood && r.ProducedFrom == 1 })
	runStatus(t, ctx, st, view.Projection(2))
	waitStatus(t, "v2 serving", func() bool { r, _ := view.Lookup(ctx, "A1"); return r.Status == pki.OCSPGood && r.ProducedFrom == 2 })
	stop1()
	if err := projection.Drop(ctx, st, view.Projection(1)); err != nil {
		t.Fatal(err)
	}
	statusCmd(t, ctx, svc, "A1", pki.RevokeCertificate{Serial: "A1", Reason: "superseded", At: time.Now()})
	waitStatus(t, "v2 live", func() bool { r, _ := view.Lookup(ctx, "A1"); return r.Status == pki.OCSPRevoked })
}
