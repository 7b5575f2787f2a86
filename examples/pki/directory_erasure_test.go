package pki_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/examples/pki"
	sb "github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
	"github.com/strata-events/strata/shred"
)

// directory is a read model that copies personal data in clear: the holder of each certificate.
// Its erasure hook is a handler of SubjectErased, the event Erase records.
type directory struct {
	reg *codec.Registry
	mu  sync.Mutex
	// serial → row
	rows map[string]directoryRow
}

type directoryRow struct{ Subject, DN, Email string }

func (d *directory) projection() projection.Projection {
	return projection.Projection{
		Name:     "holder_directory",
		External: true,
		Handlers: map[string]projection.Handler{
			"CertificateIssued": func(ctx context.Context, _ *projection.Context, e strata.Event) error {
				m, err := d.reg.DecodeOne(ctx, e)
				if err != nil {
					return err
				}
				c := m.Value.(pki.CertificateIssued)
				d.mu.Lock()
				defer d.mu.Unlock()
				d.rows[c.Serial] = directoryRow{Subject: c.SubjectID, DN: c.SubjectDN, Email: c.SubjectEmail}
				return nil
			},
			shred.SubjectErasedType: func(_ context.Context, _ *projection.Context, e strata.Event) error {
				var erased shred.SubjectErased
				if err := json.Unmarshal(e.Data, &erased); err != nil {
					return err
				}
				d.mu.Lock()
				defer d.mu.Unlock()
				for serial, row := range d.rows {
					if row.Subject == erased.Subject {
						delete(d.rows, serial)
					}
				}
				return nil
			},
		},
	}
}

// dump returns the read model as text, to search it for clear text.
func (d *directory) dump() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(d.rows)
	return string(b)
}

// TestProjectionErasureHook: a projection that copies personal data in clear drops it when it
// meets the subject's SubjectErased event, in a running worker and on a rebuild after the
// erasure, which sees only redaction markers.
func TestProjectionErasureHook(t *testing.T) {
	for _, kind := range []string{"inmem", "sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, _ := sb.Open(t, kind)
			kekText, _ := shred.GenerateKEK()
			kek, _ := shred.ParseKEK(kekText)
			protector, err := shred.New(ctx, st, kek)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := pki.NewService(st, pki.Config{Transforms: []codec.Transform{protector}})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			for _, c := range []pki.IssueCertificate{
				{Serial: "D1", SubjectID: "subject-d1", SubjectDN: erasedDN, SubjectEmail: erasedEmail},
				{Serial: "D2", SubjectID: "subject-d2", SubjectDN: "CN=Kept Holder", SubjectEmail: "kept@example.org"},
			} {
				c.ValidFrom, c.ValidTo = now.Add(-time.Hour), now.AddDate(1, 0, 0)
				if _, err := svc.Certificates.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{ID: uuid.Must(uuid.NewV7()), Stream: pki.CertificateStream(c.Serial), Command: c}); err != nil {
					t.Fatal(err)
				}
			}
			catchup := func(d *directory) {
				t.Helper()
				w, err := projection.NewWorker(st, d.projection(), projection.WithLease(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Catchup(ctx); err != nil {
					t.Fatal(err)
				}
			}
			live := &directory{reg: svc.Registry, rows: map[string]directoryRow{}}
			catchup(live)
			if !strings.Contains(live.dump(), "Vexmoor") {
				t.Fatalf("the directory before the erasure: %s", live.dump())
			}
			if _, err := protector.Erase(ctx, "subject-d1", strata.Metadata{Principal: "dpo"}); err != nil {
				t.Fatal(err)
			}
			catchup(live)
			for _, needle := range []string{erasedDN, erasedEmail, "Vexmoor"} {
				if strings.Contains(live.dump(), needle) {
					t.Fatalf("after the erasure the directory holds %q: %s", needle, live.dump())
				}
			}
			if _, ok := live.rows["D2"]; !ok {
				t.Fatalf("the other subject's row went too: %s", live.dump())
			}
			// A rebuild after the erasure replays the events: the erased fields read as markers,
			// and the SubjectErased event drops the row again.
			if err := projection.Reset(ctx, st, "holder_directory", 1); err != nil {
				t.Fatal(err)
			}
			rebuilt := &directory{reg: svc.Registry, rows: map[string]directoryRow{}}
			catchup(rebuilt)
			if got := rebuilt.dump(); strings.Contains(got, "Vexmoor") || strings.Contains(got, "subject-d1") || !strings.Contains(got, "Kept Holder") {
				t.Fatalf("the directory rebuilt after the erasure: %s", got)
			}
		})
	}
}
