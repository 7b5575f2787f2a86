package pki

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/saga"
)

// NewRegistry returns a codec registry with every event type of the domain, the upcaster of
// CertificateRevoked schema 1, and the records of the command log and of sagas.
func NewRegistry() (*codec.Registry, error) {
	reg := codec.NewRegistry()
	for _, err := range []error{
		codec.Register[CertificateIssued](reg, "CertificateIssued", 1),
		codec.Register[CertificateRenewed](reg, "CertificateRenewed", 1),
		codec.Register[CertificateSuspended](reg, "CertificateSuspended", 1),
		codec.Register[CertificateReinstated](reg, "CertificateReinstated", 1),
		codec.Register[CertificateRevoked](reg, "CertificateRevoked", 2),
		codec.Register[RevocationRequested](reg, "RevocationRequested", 1),
		codec.Register[RevocationApproved](reg, "RevocationApproved", 1),
		codec.Register[ApprovalOpened](reg, "ApprovalOpened", 1),
		codec.Register[ApprovalCounted](reg, "ApprovalCounted", 1),
		codec.Register[ApprovalGranted](reg, "ApprovalGranted", 1),
		codec.Register[ApprovalExpired](reg, "ApprovalExpired", 1),
		reg.Upcast("CertificateRevoked", 1, upcastRevokedV1),
		aggregate.RegisterCommandLog(reg),
		saga.RegisterRecords(reg),
	} {
		if err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// revokedV1 is how CertificateRevoked was stored at schema 1: an RFC 5280 reason code and a
// single approver.
type revokedV1 struct {
	Serial       string          `json:"serial"`
	ReasonCode   int             `json:"reasonCode"`
	InvalidSince json.RawMessage `json:"invalidSince"`
	ApprovedBy   string          `json:"approvedBy"`
}

// rfc5280Reasons names the CRLReason codes of RFC 5280 §5.3.1.
var rfc5280Reasons = map[int]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
	9: "privilegeWithdrawn", 10: "aACompromise",
}

func upcastRevokedV1(r codec.Record) ([]codec.Record, error) {
	var v1 revokedV1
	if err := json.Unmarshal(r.Data, &v1); err != nil {
		return nil, err
	}
	reason, ok := rfc5280Reasons[v1.ReasonCode]
	if !ok {
		return nil, fmt.Errorf("unknown RFC 5280 reason code %d", v1.ReasonCode)
	}
	v2 := map[string]any{"serial": v1.Serial, "reason": reason}
	if len(v1.InvalidSince) > 0 {
		v2["invalidSince"] = v1.InvalidSince
	}
	if v1.ApprovedBy != "" {
		v2["approvedBy"] = []string{v1.ApprovedBy}
	}
	data, err := json.Marshal(v2)
	if err != nil {
		return nil, err
	}
	return []codec.Record{{Type: r.Type, Schema: 2, Data: data, Meta: r.Meta}}, nil
}

// Service wires the domain to a store: the two aggregates and the approval saga, whose
// commands go to the certificate repository.
type Service struct {
	Registry     *codec.Registry
	Certificates *aggregate.Repository[Certificate, CertificateCommand, CertificateEvent]
	Requests     *aggregate.Repository[Request, RequestCommand, RequestEvent]
	Approvals    *saga.Runner[ApprovalState, ApprovalEvent]
}

// Config configures a Service.
type Config struct {
	// Committee and Quorum decide revocation requests; default three members, "alice", "bob"
	// and "carol", two of whom must approve.
	Committee []string
	Quorum    int
	// Aggregate options for both repositories (snapshots, command log, retries).
	Aggregate []aggregate.Option
	// Saga options for the approval saga (clock, timer poll).
	Saga []saga.Option
	// Transforms are installed in the registry, in order: a *shred.Protector encrypts the
	// subject's DN and e-mail.
	Transforms []codec.Transform
}

// NewService returns the domain on store.
func NewService(store strata.Store, cfg Config) (*Service, error) {
	if len(cfg.Committee) == 0 {
		cfg.Committee = []string{"alice", "bob", "carol"}
	}
	if cfg.Quorum == 0 {
		cfg.Quorum = 2
	}
	if cfg.Quorum < 1 || cfg.Quorum > len(cfg.Committee) {
		return nil, strata.Errorf(strata.Invalid, "pki", "quorum %d of a committee of %d", cfg.Quorum, len(cfg.Committee))
	}
	reg, err := NewRegistry()
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.Transforms {
		reg.Use(t)
	}
	s := &Service{Registry: reg}
	if s.Certificates, err = aggregate.New(store, reg, CertificateDecider, cfg.Aggregate...); err != nil {
		return nil, err
	}
	if s.Requests, err = aggregate.New(store, reg, RequestDecider(cfg.Committee, cfg.Quorum), cfg.Aggregate...); err != nil {
		return nil, err
	}
	if s.Approvals, err = saga.NewRunner(store, reg, ApprovalSaga, s.Dispatch, cfg.Saga...); err != nil {
		return nil, err
	}
	return s, nil
}

// Dispatch delivers a saga's command to its aggregate, with the saga's command ID, so that a
// command dispatched again after a crash is recognised as handled.
func (s *Service) Dispatch(ctx context.Context, d saga.Dispatch) error {
	switch c := d.Command.(type) {
	case CertificateCommand:
		_, err := s.Certificates.Handle(ctx, aggregate.Envelope[CertificateCommand]{ID: d.ID, Stream: d.Stream, Command: c, Meta: d.Meta})
		return err
	case RequestCommand:
		_, err := s.Requests.Handle(ctx, aggregate.Envelope[RequestCommand]{ID: d.ID, Stream: d.Stream, Command: c, Meta: d.Meta})
		return err
	}
	return strata.Errorf(strata.Invalid, "pki dispatch", "no aggregate handles %s", d.Command.CommandName())
}
