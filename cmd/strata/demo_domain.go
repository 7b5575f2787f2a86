package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/examples/pki"
)

// domain is the demo's second act: the same certificate life through typed commands, the
// certificate aggregate and the approval saga of examples/pki, where two of three committee
// members must approve a revocation within 72 hours.
func (d *demo) domain(ctx context.Context) error {
	protector, ephemeral, err := d.demoProtector(ctx)
	if err != nil {
		return err
	}
	svc, err := pki.NewService(d.st, pki.Config{
		Aggregate: []aggregate.Option{
			aggregate.WithSnapshots(100, 1),
			aggregate.WithCommandLog(aggregate.CommandLog{Include: []string{"pki.**"}}),
		},
		Transforms: []codec.Transform{protector},
	})
	if err != nil {
		return err
	}
	serial := d.serial("C0DE")
	subject := fmt.Sprintf("subject-%d-bob", d.run)
	certStream := pki.CertificateStream(serial)
	requestID := fmt.Sprintf("RC-%d", d.run)
	now := time.Now().UTC().Truncate(time.Second)
	meta := func(principal, session string) strata.Metadata {
		return strata.Metadata{Tenant: demoTenant, Principal: principal, Session: session, Correlation: "incident-" + requestID, Category: "pki"}
	}
	certificate := func(principal string, id uuid.UUID, c pki.CertificateCommand) (aggregate.Result[pki.Certificate], error) {
		return svc.Certificates.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{ID: id, Stream: certStream, Command: c, Meta: meta(principal, "sess-"+principal)})
	}
	requests := func(principal string, c pki.RequestCommand) (aggregate.Result[pki.Request], error) {
		return svc.Requests.Handle(ctx, aggregate.Envelope[pki.RequestCommand]{ID: uuid.Must(uuid.NewV7()), Stream: pki.RequestStream(requestID), Command: c, Meta: meta(principal, "sess-"+principal)})
	}
	say := func(format string, args ...any) { fmt.Fprintf(d.out, "  "+format+"\n", args...) }

	fmt.Fprintf(d.out, "\nThrough the domain: typed commands, the certificate aggregate and the approval saga (examples/pki)\n")
	if _, err := certificate("operator:jdoe", uuid.Must(uuid.NewV7()), pki.IssueCertificate{Serial: serial, SubjectID: subject,
		SubjectDN: "CN=bob.example.com,O=Example GmbH,C=DE", SubjectEmail: "bob@example.com", ValidFrom: now, ValidTo: now.AddDate(1, 0, 0)}); err != nil {
		return fmt.Errorf("demo: issue %s: %w", serial, err)
	}
	say("operator:jdoe  pki.IssueCertificate %s -> CertificateIssued", serial)
	if _, err := requests("operator:mkim", pki.RequestRevocation{RequestID: requestID, Serial: serial, Reason: "keyCompromise", RequestedBy: "operator:mkim"}); err != nil {
		return fmt.Errorf("demo: request revocation: %w", err)
	}
	say("operator:mkim  pki.RequestRevocation %s of %s -> the committee (alice, bob, carol) has 72 hours, two must approve", requestID, serial)
	if err := svc.Approvals.Catchup(ctx); err != nil {
		return fmt.Errorf("demo: approval saga: %w", err)
	}
	for _, a := range []string{"alice", "alice", "mallory"} {
		res, err := requests(a, pki.ApproveRevocation{RequestID: requestID, Approver: a})
		switch {
		case errors.Is(err, pki.ErrNotCommitteeMember):
			say("%-14s pki.ApproveRevocation -> refused: %v", a, err)
		case err != nil:
			return fmt.Errorf("demo: approval by %s: %w", a, err)
		case res.Events == 0:
			say("%-14s pki.ApproveRevocation again -> nothing new (approving twice changes nothing)", a)
		default:
			say("%-14s pki.ApproveRevocation -> RevocationApproved", a)
		}
	}
	if err := svc.Approvals.Catchup(ctx); err != nil {
		return fmt.Errorf("demo: approval saga: %w", err)
	}
	cert, _, err := svc.Certificates.Load(ctx, certStream)
	if err != nil {
		return err
	}
	say("approval saga: one approval of two; %s is still %s", serial, cert.Status)
	if _, err := requests("bob", pki.ApproveRevocation{RequestID: requestID, Approver: "bob"}); err != nil {
		return fmt.Errorf("demo: approval by bob: %w", err)
	}
	say("%-14s pki.ApproveRevocation -> RevocationApproved", "bob")
	if err := svc.Approvals.Catchup(ctx); err != nil {
		return fmt.Errorf("demo: approval saga: %w", err)
	}
	cert, version, err := svc.Certificates.Load(ctx, certStream)
	if err != nil {
		return err
	}
	say("approval saga: quorum reached -> pki.RevokeCertificate; %s is %s (%s), approved by %s, version %d",
		serial, cert.Status, cert.RevokedReason, strings.Join(cert.ApprovedBy, " and "), version)

	// A client whose revocation timed out resends it with the same command ID: nothing new.
	retryID := uuid.Must(uuid.NewV7())
	for i := range 2 {
		res, err := certificate("operator:mkim", retryID, pki.RevokeCertificate{Serial: serial, Reason: "superseded", At: time.Now()})
		if err != nil {
			return fmt.Errorf("demo: revoke again: %w", err)
		}
		what := "already revoked: no event (revoking twice changes nothing)"
		if res.Duplicate {
			what = "the same command ID again: recognised as handled, nothing appended"
		}
		if i == 0 || res.Duplicate {
			say("operator:mkim  pki.RevokeCertificate %s -> %s", serial, what)
		}
	}

	fmt.Fprintf(d.out, "\nThe saga's own stream %s (what it heard, what it did)\n", svc.Approvals.Stream(requestID))
	for e, err := range d.st.ReadStream(ctx, svc.Approvals.Stream(requestID), strata.ReadStreamOptions{}) {
		if err != nil {
			return err
		}
		say("v%-2d %-16s %s", e.Version, e.Type, compact(e.Data))
	}
	fmt.Fprintf(d.out, "\nThe command log commands-%s\n", certStream)
	for e, err := range d.st.ReadStream(ctx, "commands-"+certStream, strata.ReadStreamOptions{}) {
		if err != nil {
			return err
		}
		m, err := svc.Registry.DecodeOne(ctx, e)
		if err != nil {
			return err
		}
		if ok, isOK := m.Value.(aggregate.CommandSucceeded); isOK {
			say("%-16s %-24s by %-22s v%d -> v%d", e.Type, ok.Command, e.Meta.Principal, ok.FromVersion, ok.ToVersion)
		}
	}
	return d.erasure(ctx, svc, protector, certStream, subject, ephemeral)
}

// compact shortens a JSON payload for one line.
func compact(b []byte) string {
	const max = 110
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
