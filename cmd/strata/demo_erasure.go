package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/shred"
)

// demoProtector returns the crypto-shredding pipeline of the demo: the configured
// key-encryption key, or one made for this run only (ephemeral).
func (d *demo) demoProtector(ctx context.Context) (p *shred.Protector, ephemeral bool, err error) {
	kek := d.kek
	if kek == nil {
		text, err := shred.GenerateKEK()
		if err != nil {
			return nil, false, err
		}
		if kek, err = shred.ParseKEK(text); err != nil {
			return nil, false, err
		}
		ephemeral = true
	}
	p, err = shred.New(ctx, d.st, kek)
	return p, ephemeral, err
}

// erasure shows crypto-shredding: the stored DN is ciphertext, the domain reads it in clear,
// and after the subject's erasure every read shows a redaction marker while the certificate's
// history still replays.
func (d *demo) erasure(ctx context.Context, svc *pki.Service, protector *shred.Protector, certStream, subject string, ephemeral bool) error {
	say := func(format string, args ...any) { fmt.Fprintf(d.out, "  "+format+"\n", args...) }
	var issued strata.Event
	for e, err := range d.st.ReadStream(ctx, certStream, strata.ReadStreamOptions{Limit: 1}) {
		if err != nil {
			return err
		}
		issued = e
	}
	view := func() (pki.CertificateIssued, error) {
		m, err := svc.Registry.DecodeOne(ctx, issued)
		if err != nil {
			return pki.CertificateIssued{}, err
		}
		return m.Value.(pki.CertificateIssued), nil
	}
	fmt.Fprintf(d.out, "\nPersonal data and its erasure (GDPR art. 17): data subject %s\n", subject)
	if ephemeral {
		say("(no STRATA_KEK or --kek-file: this run's subject keys are wrapped by a key made for this run only)")
	}
	var stored struct {
		SubjectDN string `json:"subjectDN"`
	}
	if err := json.Unmarshal(issued.Data, &stored); err != nil {
		return err
	}
	say("stored subjectDN:         %s", compact([]byte(stored.SubjectDN)))
	v, err := view()
	if err != nil {
		return err
	}
	say("read through the domain:  subjectDN %q, subjectEmail %q", v.SubjectDN, v.SubjectEmail)
	if _, err := protector.EraseTenant(ctx, demoTenant, subject, strata.Metadata{Principal: "dpo:akeller", Extra: map[string]string{"ticket": "GDPR-2023-17"}}); err != nil {
		return fmt.Errorf("demo: erase %s: %w", subject, err)
	}
	say("dpo:akeller  strata erase %s --tenant %s -> its key is destroyed; SubjectErased recorded in %s", subject, demoTenant, shred.TenantErasureStream(demoTenant, subject))
	if v, err = view(); err != nil {
		return err
	}
	say("read after erasure:       subjectDN %q, subjectEmail %q (the stored event is unchanged)", v.SubjectDN, v.SubjectEmail)
	cert, version, err := svc.Certificates.Load(ctx, certStream)
	if err != nil {
		return err
	}
	say("the certificate still replays: %s, version %d, approved by %s", cert.Status, version, strings.Join(cert.ApprovedBy, " and "))
	return nil
}
