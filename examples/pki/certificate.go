// Package pki is the certificate domain of strata's design, end to end: a certificate aggregate
// (issue, renew, suspend, reinstate, revoke), revocation requests that a committee approves,
// and the approval saga that revokes a certificate once two of three members approved within
// 72 hours. Every strata feature is shown and tested on it.
package pki

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strata-events/strata/aggregate"
)

// Errors the certificate decider refuses commands with.
var (
	ErrUnknownCertificate = errors.New("pki: unknown certificate")
	ErrAlreadyIssued      = errors.New("pki: certificate already issued")
	ErrExpired            = errors.New("pki: certificate expired")
	ErrRevoked            = errors.New("pki: certificate revoked")
	ErrNotSuspended       = errors.New("pki: certificate not suspended")
	ErrSuspended          = errors.New("pki: certificate suspended")
	ErrInvalidCommand     = errors.New("pki: invalid command")
)

// CertificateStream returns the stream of the certificate with serial.
func CertificateStream(serial string) string { return "certificate-" + serial }

// Commands of the certificate aggregate. At is when the command was issued: deciders read no
// clock, so that a replay decides the same.
type (
	// IssueCertificate issues a certificate to a data subject.
	IssueCertificate struct {
		Serial       string
		SubjectID    string
		SubjectDN    string
		SubjectEmail string
		ValidFrom    time.Time
		ValidTo      time.Time
	}
	// RenewCertificate extends a certificate's validity.
	RenewCertificate struct {
		Serial  string
		ValidTo time.Time
		At      time.Time
	}
	// SuspendCertificate puts a certificate on hold.
	SuspendCertificate struct {
		Serial string
		Reason string
		At     time.Time
	}
	// ReinstateCertificate lifts a suspension.
	ReinstateCertificate struct {
		Serial string
		At     time.Time
	}
	// RevokeCertificate revokes a certificate for good. InvalidSince may lie before At (the key
	// was compromised before anyone noticed); zero means At. Revoking a revoked certificate
	// changes nothing.
	RevokeCertificate struct {
		Serial       string
		Reason       string
		InvalidSince time.Time
		ApprovedBy   []string
		At           time.Time
	}
)

// CommandName implements aggregate.Command.
func (IssueCertificate) CommandName() string { return "pki.IssueCertificate" }

// CreatesStream makes the repository append an issue without reading the (new) stream first;
// issuing a serial that exists is still refused, on the stream's real state.
func (IssueCertificate) CreatesStream() bool { return true }

// CommandName implements aggregate.Command.
func (RenewCertificate) CommandName() string { return "pki.RenewCertificate" }

// CommandName implements aggregate.Command.
func (SuspendCertificate) CommandName() string { return "pki.SuspendCertificate" }

// CommandName implements aggregate.Command.
func (ReinstateCertificate) CommandName() string { return "pki.ReinstateCertificate" }

// CommandName implements aggregate.Command.
func (RevokeCertificate) CommandName() string { return "pki.RevokeCertificate" }

// CertificateCommand is any command of the certificate aggregate.
type CertificateCommand interface {
	aggregate.Command
	serial() string
}

func (c IssueCertificate) serial() string     { return c.Serial }
func (c RenewCertificate) serial() string     { return c.Serial }
func (c SuspendCertificate) serial() string   { return c.Serial }
func (c ReinstateCertificate) serial() string { return c.Serial }
func (c RevokeCertificate) serial() string    { return c.Serial }

// Events of the certificate aggregate. SubjectDN and SubjectEmail are personal data: they are
// marked sensitive and encrypted under the subject's key, which erasure destroys.
type (
	// CertificateIssued: a certificate was issued.
	CertificateIssued struct {
		Serial       string    `json:"serial"`
		SubjectID    string    `json:"subjectId" strata:"subject"`
		SubjectDN    string    `json:"subjectDN" strata:"sensitive"`
		SubjectEmail string    `json:"subjectEmail" strata:"sensitive"`
		ValidFrom    time.Time `json:"validFrom"`
		ValidTo      time.Time `json:"validTo"`
	}
	// CertificateRenewed: the validity was extended.
	CertificateRenewed struct {
		Serial  string    `json:"serial"`
		ValidTo time.Time `json:"validTo"`
	}
	// CertificateSuspended: the certificate was put on hold.
	CertificateSuspended struct {
		Serial string `json:"serial"`
		Reason string `json:"reason"`
	}
	// CertificateReinstated: a suspension was lifted.
	CertificateReinstated struct {
		Serial string `json:"serial"`
	}
	// CertificateRevoked: the certificate was revoked. Schema 2; schema 1 stored an RFC 5280
	// reason code and a single approver (see the upcaster in codec.go).
	CertificateRevoked struct {
		Serial       string    `json:"serial"`
		Reason       string    `json:"reason"`
		InvalidSince time.Time `json:"invalidSince"`
		ApprovedBy   []string  `json:"approvedBy,omitempty"`
	}
)

// CertificateEvent is any event of the certificate aggregate.
type CertificateEvent interface{ certificateEvent() }

func (CertificateIssued) certificateEvent()     {}
func (CertificateRenewed) certificateEvent()    {}
func (CertificateSuspended) certificateEvent()  {}
func (CertificateReinstated) certificateEvent() {}
func (CertificateRevoked) certificateEvent()    {}

// Status is a certificate's status.
type Status string

// The statuses of a certificate.
const (
	StatusUnknown   Status = ""
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusRevoked   Status = "revoked"
)

// Certificate is the state the decider needs. It holds no personal data, so that snapshots
// hold none either.
type Certificate struct {
	Serial        string    `json:"serial"`
	SubjectID     string    `json:"subjectId,omitempty"`
	Status        Status    `json:"status"`
	ValidFrom     time.Time `json:"validFrom"`
	ValidTo       time.Time `json:"validTo"`
	RevokedReason string    `json:"revokedReason,omitempty"`
	InvalidSince  time.Time `json:"invalidSince,omitzero"`
	ApprovedBy    []string  `json:"approvedBy,omitempty"`
	Renewals      int       `json:"renewals,omitempty"`
}

// Expired reports whether the certificate's validity ended before at.
func (c Certificate) Expired(at time.Time) bool { return !c.ValidTo.IsZero() && at.After(c.ValidTo) }

// CertificateDecider is the certificate aggregate.
var CertificateDecider = aggregate.Decider[Certificate, CertificateCommand, CertificateEvent]{
	Decide: decideCertificate,
	Evolve: evolveCertificate,
}

func decideCertificate(c Certificate, cmd CertificateCommand) ([]CertificateEvent, error) {
	if cmd.serial() == "" {
		return nil, fmt.Errorf("%w: %s without a serial", ErrInvalidCommand, cmd.CommandName())
	}
	if issue, ok := cmd.(IssueCertificate); ok {
		if c.Status != StatusUnknown {
			return nil, fmt.Errorf("%w: %s", ErrAlreadyIssued, issue.Serial)
		}
		if issue.ValidFrom.IsZero() || !issue.ValidTo.After(issue.ValidFrom) {
			return nil, fmt.Errorf("%w: validity %s to %s", ErrInvalidCommand, issue.ValidFrom, issue.ValidTo)
		}
		return []CertificateEvent{CertificateIssued{Serial: issue.Serial, SubjectID: issue.SubjectID, SubjectDN: issue.SubjectDN,
			SubjectEmail: issue.SubjectEmail, ValidFrom: issue.ValidFrom.UTC(), ValidTo: issue.ValidTo.UTC()}}, nil
	}
	if c.Status == StatusUnknown {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCertificate, cmd.serial())
	}
	switch cmd := cmd.(type) {
	case RevokeCertificate:
		if c.Status == StatusRevoked {
			return nil, nil // revoking twice changes nothing
		}
		if c.Expired(cmd.At) {
			return nil, fmt.Errorf("%w: %s expired at %s", ErrExpired, c.Serial, c.ValidTo)
		}
		if cmd.Reason == "" {
			return nil, fmt.Errorf("%w: revocation without a reason", ErrInvalidCommand)
		}
		since := cmd.InvalidSince
		if since.IsZero() {
			since = cmd.At
		}
		if !cmd.At.IsZero() && since.After(cmd.At) {
			return nil, fmt.Errorf("%w: invalid since %s, after the revocation at %s (an invalidity date says when the certificate became invalid, which has happened)", ErrInvalidCommand, since.UTC(), cmd.At.UTC())
		}
		approvers := slices.Clone(cmd.ApprovedBy)
		slices.Sort(approvers)
		return []CertificateEvent{CertificateRevoked{Serial: c.Serial, Reason: cmd.Reason, InvalidSince: since.UTC(), ApprovedBy: approvers}}, nil
	}
	if c.Status == StatusRevoked {
		return nil, fmt.Errorf("%w: %s", ErrRevoked, c.Serial)
	}
	switch cmd := cmd.(type) {
	case RenewCertificate:
		if c.Expired(cmd.At) {
			return nil, fmt.Errorf("%w: %s expired at %s", ErrExpired, c.Serial, c.ValidTo)
		}
		if c.Status == StatusSuspended {
			return nil, fmt.Errorf("%w: %s is on hold; reinstate it before renewing it", ErrSuspended, c.Serial)
		}
		if !cmd.ValidTo.After(c.ValidTo) {
			return nil, fmt.Errorf("%w: renewal to %s does not extend %s", ErrInvalidCommand, cmd.ValidTo, c.ValidTo)
		}
		return []CertificateEvent{CertificateRenewed{Serial: c.Serial, ValidTo: cmd.ValidTo.UTC()}}, nil
	case SuspendCertificate:
		if c.Status == StatusSuspended {
			return nil, nil
		}
		if c.Expired(cmd.At) {
			return nil, fmt.Errorf("%w: %s expired at %s", ErrExpired, c.Serial, c.ValidTo)
		}
		return []CertificateEvent{CertificateSuspended{Serial: c.Serial, Reason: cmd.Reason}}, nil
	case ReinstateCertificate:
		if c.Status != StatusSuspended {
			return nil, fmt.Errorf("%w: %s is %s", ErrNotSuspended, c.Serial, c.Status)
		}
		if c.Expired(cmd.At) {
			return nil, fmt.Errorf("%w: %s expired at %s, on hold", ErrExpired, c.Serial, c.ValidTo)
		}
		return []CertificateEvent{CertificateReinstated{Serial: c.Serial}}, nil
	}
	return nil, fmt.Errorf("%w: unknown command %s", ErrInvalidCommand, cmd.CommandName())
}

func evolveCertificate(c Certificate, e CertificateEvent) Certificate {
	switch e := e.(type) {
	case CertificateIssued:
		c = Certificate{Serial: e.Serial, SubjectID: e.SubjectID, Status: StatusActive, ValidFrom: e.ValidFrom, ValidTo: e.ValidTo}
	case CertificateRenewed:
		c.ValidTo = e.ValidTo
		c.Renewals++
	case CertificateSuspended:
		c.Status = StatusSuspended
	case CertificateReinstated:
		c.Status = StatusActive
	case CertificateRevoked:
		c.Status = StatusRevoked
		c.RevokedReason = e.Reason
		c.InvalidSince = e.InvalidSince
		c.ApprovedBy = slices.Clone(e.ApprovedBy)
	}
	return c
}
