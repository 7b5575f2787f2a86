package pki

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/saga"
)

// Errors the revocation-request decider refuses commands with.
var (
	ErrUnknownRequest     = errors.New("pki: unknown revocation request")
	ErrRequestExists      = errors.New("pki: revocation request already made")
	ErrNotCommitteeMember = errors.New("pki: not a member of the revocation committee")
)

// ApprovalWindow is how long a revocation request waits for its approvals.
const ApprovalWindow = 72 * time.Hour

// RequestStream returns the stream of the revocation request id.
func RequestStream(id string) string { return "revocation-" + id }

// Commands of a revocation request.
type (
	// RequestRevocation asks the committee to revoke a certificate.
	RequestRevocation struct {
		RequestID   string
		Serial      string
		Reason      string
		RequestedBy string
	}
	// ApproveRevocation is one member's approval.
	ApproveRevocation struct {
		RequestID string
		Approver  string
	}
)

// CommandName implements aggregate.Command.
func (RequestRevocation) CommandName() string { return "pki.RequestRevocation" }

// CommandName implements aggregate.Command.
func (ApproveRevocation) CommandName() string { return "pki.ApproveRevocation" }

// Events of a revocation request.
type (
	// RevocationRequested: someone asked for a revocation; Committee and Quorum say who decides.
	RevocationRequested struct {
		RequestID   string   `json:"requestId"`
		Serial      string   `json:"serial"`
		Reason      string   `json:"reason"`
		RequestedBy string   `json:"requestedBy"`
		Committee   []string `json:"committee"`
		Quorum      int      `json:"quorum"`
	}
	// RevocationApproved: one member approved.
	RevocationApproved struct {
		RequestID string `json:"requestId"`
		Serial    string `json:"serial"`
		Approver  string `json:"approver"`
	}
)

// RequestEvent is any event of a revocation request.
type RequestEvent interface{ requestEvent() }

func (RevocationRequested) requestEvent() {}
func (RevocationApproved) requestEvent()  {}

// Request is the state of a revocation request.
type Request struct {
	ID        string   `json:"id"`
	Serial    string   `json:"serial"`
	Committee []string `json:"committee"`
	Approvers []string `json:"approvers"`
}

// RequestCommand is any command of a revocation request.
type RequestCommand interface {
	aggregate.Command
	requestID() string
}

func (c RequestRevocation) requestID() string { return c.RequestID }
func (c ApproveRevocation) requestID() string { return c.RequestID }

// RequestDecider returns the revocation-request aggregate for a committee that needs quorum
// approvals.
func RequestDecider(committee []string, quorum int) aggregate.Decider[Request, RequestCommand, RequestEvent] {
	committee = slices.Clone(committee)
	slices.Sort(committee)
	return aggregate.Decider[Request, RequestCommand, RequestEvent]{
		Decide: func(r Request, cmd RequestCommand) ([]RequestEvent, error) {
			switch cmd := cmd.(type) {
			case RequestRevocation:
				if r.ID != "" {
					return nil, fmt.Errorf("%w: %s", ErrRequestExists, r.ID)
				}
				if cmd.RequestID == "" || cmd.Serial == "" || cmd.Reason == "" {
					return nil, fmt.Errorf("%w: a revocation request needs an ID, a serial and a reason", ErrInvalidCommand)
				}
				return []RequestEvent{RevocationRequested{RequestID: cmd.RequestID, Serial: cmd.Serial, Reason: cmd.Reason,
					RequestedBy: cmd.RequestedBy, Committee: committee, Quorum: quorum}}, nil
			case ApproveRevocation:
				if r.ID == "" {
					return nil, fmt.Errorf("%w: %s", ErrUnknownRequest, cmd.RequestID)
				}
				if !slices.Contains(r.Committee, cmd.Approver) {
					return nil, fmt.Errorf("%w: %q", ErrNotCommitteeMember, cmd.Approver)
				}
				if slices.Contains(r.Approvers, cmd.Approver) {
					return nil, nil // approving twice changes nothing
				}
				return []RequestEvent{RevocationApproved{RequestID: r.ID, Serial: r.Serial, Approver: cmd.Approver}}, nil
			}
			return nil, fmt.Errorf("%w: unknown command %s", ErrInvalidCommand, cmd.CommandName())
		},
		Evolve: func(r Request, e RequestEvent) Request {
			switch e := e.(type) {
			case RevocationRequested:
				r = Request{ID: e.RequestID, Serial: e.Serial, Committee: slices.Clone(e.Committee)}
			case RevocationApproved:
				r.Approvers = append(slices.Clone(r.Approvers), e.Approver)
			}
			return r
		},
	}
}

// Events of the approval saga, kept in its own streams.
type (
	// ApprovalOpened: the saga started waiting for approvals until Deadline.
	ApprovalOpened struct {
		RequestID string    `json:"requestId"`
		Serial    string    `json:"serial"`
		Reason    string    `json:"reason"`
		Quorum    int       `json:"quorum"`
		Deadline  time.Time `json:"deadline"`
	}
	// ApprovalCounted: one more distinct approval.
	ApprovalCounted struct {
		Approver string `json:"approver"`
	}
	// ApprovalGranted: the quorum was reached; the saga issued RevokeCertificate.
	ApprovalGranted struct {
		ApprovedBy []string `json:"approvedBy"`
	}
	// ApprovalExpired: the deadline passed without a quorum.
	ApprovalExpired struct {
		Approvals int `json:"approvals"`
	}
)

// ApprovalEvent is any event of the approval saga.
type ApprovalEvent interface{ approvalEvent() }

func (ApprovalOpened) approvalEvent()  {}
func (ApprovalCounted) approvalEvent() {}
func (ApprovalGranted) approvalEvent() {}
func (ApprovalExpired) approvalEvent() {}

// ApprovalState is the approval saga's state.
type ApprovalState struct {
	Open      bool
	Closed    bool
	Outcome   string // "granted" or "expired"
	RequestID string
	Serial    string
	Reason    string
	Quorum    int
	Deadline  time.Time
	Approvers []string
}

// deadlineTimer is the name of the approval saga's one timer.
const deadlineTimer = "deadline"

// ApprovalSagaName is the approval saga's stable name.
const ApprovalSagaName = "revocation-approval"

// ApprovalSaga is the saga that waits for a quorum of approvals and then revokes the
// certificate, recording who approved, or expires after ApprovalWindow.
var ApprovalSaga = saga.Definition[ApprovalState, ApprovalEvent]{
	Name:   ApprovalSagaName,
	Filter: strata.Filter{Types: []string{"RevocationRequested", "RevocationApproved"}, StreamPrefix: "revocation-"},
	Correlate: func(m codec.Message) (string, bool) {
		switch v := m.Value.(type) {
		case RevocationRequested:
			return v.RequestID, v.RequestID != ""
		case RevocationApproved:
			return v.RequestID, v.RequestID != ""
		}
		return "", false
	},
	React:  reactApproval,
	Evolve: evolveApproval,
	Done:   func(s ApprovalState) bool { return s.Closed },
}

func reactApproval(s ApprovalState, in saga.Input) (saga.Reaction[ApprovalEvent], error) {
	var r saga.Reaction[ApprovalEvent]
	switch {
	case in.Timer != nil && in.Timer.Name == deadlineTimer:
		if s.Open {
			r.Events = []ApprovalEvent{ApprovalExpired{Approvals: len(s.Approvers)}}
		}
		return r, nil
	case in.Message == nil:
		return r, nil
	}
	switch v := in.Message.Value.(type) {
	case RevocationRequested:
		if s.Open || s.Closed {
			return r, nil
		}
		deadline := in.At.Add(ApprovalWindow)
		r.Events = []ApprovalEvent{ApprovalOpened{RequestID: v.RequestID, Serial: v.Serial, Reason: v.Reason, Quorum: v.Quorum, Deadline: deadline}}
		r.Timers = []saga.Timer{{Name: deadlineTimer, At: deadline}}
	case RevocationApproved:
		if !s.Open || slices.Contains(s.Approvers, v.Approver) {
			return r, nil
		}
		if !in.At.Before(s.Deadline) {
			return r, nil // too late: the deadline timer closes the request
		}
		r.Events = []ApprovalEvent{ApprovalCounted{Approver: v.Approver}}
		approvers := append(slices.Clone(s.Approvers), v.Approver)
		if len(approvers) >= s.Quorum {
			slices.Sort(approvers)
			r.Events = append(r.Events, ApprovalGranted{ApprovedBy: approvers})
			r.Commands = []saga.Command{{Stream: CertificateStream(s.Serial), Command: RevokeCertificate{
				Serial: s.Serial, Reason: s.Reason, ApprovedBy: approvers, At: in.At}}}
			r.CancelTimers = []string{deadlineTimer}
		}
	}
	return r, nil
}

func evolveApproval(s ApprovalState, e ApprovalEvent) ApprovalState {
	switch e := e.(type) {
	case ApprovalOpened:
		s = ApprovalState{Open: true, RequestID: e.RequestID, Serial: e.Serial, Reason: e.Reason, Quorum: e.Quorum, Deadline: e.Deadline}
	case ApprovalCounted:
		s.Approvers = append(slices.Clone(s.Approvers), e.Approver)
	case ApprovalGranted:
		s.Open, s.Closed, s.Outcome = false, true, "granted"
	case ApprovalExpired:
		s.Open, s.Closed, s.Outcome = false, true, "expired"
	}
	return s
}
