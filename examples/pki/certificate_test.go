package pki_test

import (
	"testing"
	"time"

	"github.com/strata-events/strata/aggregate/aggregatetest"
	"github.com/strata-events/strata/examples/pki"
)

var (
	t0     = time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC)
	issued = pki.CertificateIssued{Serial: "7F3A", SubjectID: "subject-alice", SubjectDN: "CN=Alice", SubjectEmail: "alice@example.org",
		ValidFrom: t0, ValidTo: t0.AddDate(1, 0, 0)}
	given = func(events ...pki.CertificateEvent) *aggregatetest.Scenario[pki.Certificate, pki.CertificateCommand, pki.CertificateEvent] {
		return aggregatetest.Given(pki.CertificateDecider, events...)
	}
	march14 = time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
)

func TestCertificateLifecycle(t *testing.T) {
	t.Parallel()
	given().When(pki.IssueCertificate{Serial: "7F3A", SubjectID: "subject-alice", SubjectDN: "CN=Alice", SubjectEmail: "alice@example.org",
		ValidFrom: t0, ValidTo: t0.AddDate(1, 0, 0)}).Then(t, issued)
	given(issued).When(pki.IssueCertificate{Serial: "7F3A", ValidFrom: t0, ValidTo: t0.AddDate(1, 0, 0)}).ThenError(t, pki.ErrAlreadyIssued)
	given().When(pki.IssueCertificate{Serial: "7F3A", ValidFrom: t0, ValidTo: t0}).ThenError(t, pki.ErrInvalidCommand)

	given(issued).When(pki.RenewCertificate{Serial: "7F3A", ValidTo: t0.AddDate(2, 0, 0), At: march14}).
		Then(t, pki.CertificateRenewed{Serial: "7F3A", ValidTo: t0.AddDate(2, 0, 0)})
	given(issued).When(pki.RenewCertificate{Serial: "7F3A", ValidTo: t0, At: march14}).ThenError(t, pki.ErrInvalidCommand)

	given(issued).When(pki.SuspendCertificate{Serial: "7F3A", Reason: "investigation", At: march14}).
		Then(t, pki.CertificateSuspended{Serial: "7F3A", Reason: "investigation"})
	suspended := pki.CertificateSuspended{Serial: "7F3A", Reason: "investigation"}
	given(issued, suspended).When(pki.SuspendCertificate{Serial: "7F3A", At: march14}).Then(t)
	given(issued, suspended).When(pki.ReinstateCertificate{Serial: "7F3A", At: march14}).Then(t, pki.CertificateReinstated{Serial: "7F3A"})
	given(issued).When(pki.ReinstateCertificate{Serial: "7F3A", At: march14}).ThenError(t, pki.ErrNotSuspended)
	// A certificate on hold is not renewed, and an expired one is not reinstated.
	given(issued, suspended).When(pki.RenewCertificate{Serial: "7F3A", ValidTo: t0.AddDate(2, 0, 0), At: march14}).ThenError(t, pki.ErrSuspended)
	given(issued, suspended).When(pki.ReinstateCertificate{Serial: "7F3A", At: t0.AddDate(2, 0, 0)}).ThenError(t, pki.ErrExpired)
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	compromised := march14.Add(-48 * time.Hour)
	revoked := pki.CertificateRevoked{Serial: "7F3A", Reason: "keyCompromise", InvalidSince: compromised, ApprovedBy: []string{"alice", "bob"}}
	given(issued).When(pki.RevokeCertificate{Serial: "7F3A", Reason: "keyCompromise", InvalidSince: compromised, ApprovedBy: []string{"bob", "alice"}, At: march14}).
		Then(t, revoked)
	// Without an invalidity date, the certificate is invalid since the revocation.
	given(issued).When(pki.RevokeCertificate{Serial: "7F3A", Reason: "superseded", At: march14}).
		Then(t, pki.CertificateRevoked{Serial: "7F3A", Reason: "superseded", InvalidSince: march14})
	// Revoking twice emits nothing.
	given(issued, revoked).When(pki.RevokeCertificate{Serial: "7F3A", Reason: "superseded", At: march14}).Then(t)
	// Revoking an unknown certificate, or an expired one, is refused.
	given().When(pki.RevokeCertificate{Serial: "0000", Reason: "keyCompromise", At: march14}).ThenError(t, pki.ErrUnknownCertificate)
	given(issued).When(pki.RevokeCertificate{Serial: "7F3A", Reason: "keyCompromise", At: t0.AddDate(2, 0, 0)}).ThenError(t, pki.ErrExpired)
	given(issued).When(pki.RevokeCertificate{Serial: "7F3A", At: march14}).ThenError(t, pki.ErrInvalidCommand)
	// An invalidity date after the revocation is refused: it says when the certificate became
	// invalid, which has happened by then.
	given(issued).When(pki.RevokeCertificate{Serial: "7F3A", Reason: "keyCompromise", InvalidSince: march14.Add(time.Hour), At: march14}).ThenError(t, pki.ErrInvalidCommand)
	// A revoked certificate cannot be renewed, suspended or reinstated.
	given(issued, revoked).When(pki.RenewCertificate{Serial: "7F3A", ValidTo: t0.AddDate(3, 0, 0), At: march14}).ThenError(t, pki.ErrRevoked)
	given(issued, revoked).When(pki.SuspendCertificate{Serial: "7F3A", At: march14}).ThenError(t, pki.ErrRevoked)
}

func TestRevocationRequest(t *testing.T) {
	t.Parallel()
	d := pki.RequestDecider([]string{"carol", "alice", "bob"}, 2)
	requested := pki.RevocationRequested{RequestID: "r1", Serial: "7F3A", Reason: "keyCompromise", RequestedBy: "dave", Committee: []string{"alice", "bob", "carol"}, Quorum: 2}
	aggregatetest.Given(d).When(pki.RequestRevocation{RequestID: "r1", Serial: "7F3A", Reason: "keyCompromise", RequestedBy: "dave"}).
		Then(t, pki.RequestEvent(requested))
	aggregatetest.Given(d, pki.RequestEvent(requested)).When(pki.ApproveRevocation{RequestID: "r1", Approver: "alice"}).
		Then(t, pki.RequestEvent(pki.RevocationApproved{RequestID: "r1", Serial: "7F3A", Approver: "alice"}))
	aggregatetest.Given(d, pki.RequestEvent(requested), pki.RequestEvent(pki.RevocationApproved{RequestID: "r1", Serial: "7F3A", Approver: "alice"})).
		When(pki.ApproveRevocation{RequestID: "r1", Approver: "alice"}).Then(t)
	aggregatetest.Given(d, pki.RequestEvent(requested)).When(pki.ApproveRevocation{RequestID: "r1", Approver: "mallory"}).ThenError(t, pki.ErrNotCommitteeMember)
	aggregatetest.Given(d).When(pki.ApproveRevocation{RequestID: "r1", Approver: "alice"}).ThenError(t, pki.ErrUnknownRequest)
}
