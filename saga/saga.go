// Package saga runs event-sourced sagas: durable workflows that react to events of the log and
// to timers, keep their own state as an event stream, issue commands, and schedule timers that
// are stored in the database. A saga stopped at any point (crash, deploy, restart) resumes
// exactly where it was, without issuing a command twice.
//
// How it stays exact: each input (an event of the log, or a fired timer) is one step. A step
// appends the saga's own events and a Step record naming the input, the commands and the timers,
// in one append with the saga stream's expected version; then it schedules the timers and
// dispatches the commands. Command and timer IDs derive from the input, so that a step repeated
// after a crash finds its record, decides again from the state before it (React is pure), and
// re-dispatches the same command IDs, which the aggregate repository recognises as handled.
package saga

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
)

// Definition describes a saga. React, Evolve and Correlate must be pure and deterministic: no
// I/O and no clock (use Input.At), so that a step decided again after a crash decides the same.
// A panic in any of its functions stops the runner with an Internal error, before the
// checkpoint passes the event.
type Definition[S any, E any] struct {
	// Name identifies the saga; keep it stable. Its instances live in streams Name + "-" + ID,
	// its checkpoint and timers are stored under it.
	Name string
	// Filter selects the events of the log the saga reads. Select its inputs only (usually by
	// type): the saga's own streams never feed back into it.
	Filter strata.Filter
	// Correlate returns the ID of the saga instance an event belongs to, or false to ignore it.
	Correlate func(m codec.Message) (id string, ok bool)
	// Initial returns the state of an instance that has no events yet. Nil means S's zero value.
	Initial func() S
	// React decides what an input does: the saga's own events, commands and timers.
	React func(s S, in Input) (Reaction[E], error)
	// Evolve returns the state after one of the saga's events.
	Evolve func(s S, e E) S
	// Done reports whether an instance has finished; a finished instance ignores inputs. Nil
	// means never.
	Done func(s S) bool
}

// Input is what a saga reacts to: an event of the log, or one of its timers.
type Input struct {
	// Message is the decoded event, for an event input.
	Message *codec.Message
	// Timer is the timer that fired, for a timer input.
	Timer *Fired
	// At is when the input happened: the event's RecordedAt, or the timer's DueAt.
	At time.Time
}

// Fired is a timer that came due.
type Fired struct {
	Name  string
	DueAt time.Time
	Data  []byte
}

// Reaction is what a step decides.
type Reaction[E any] struct {
	// Events are the saga's own events, appended to the instance's stream.
	Events []E
	// Commands are dispatched after the events are stored, each with an ID derived from the input.
	Commands []Command
	// Timers are scheduled after the events are stored. A saga has at most one pending timer of a
	// name: scheduling a name that is pending replaces it.
	Timers []Timer
	// CancelTimers names pending timers to cancel.
	CancelTimers []string
}

// Command is a command the saga issues to an aggregate.
type Command struct {
	// Stream is the aggregate's stream.
	Stream string
	// Command is the command.
	Command aggregate.Command
}

// Timer is a timer a saga schedules.
type Timer struct {
	Name string
	At   time.Time
	Data []byte
}

// Dispatch is a command on its way to its aggregate, with the ID that makes it idempotent and
// the metadata of the saga step (correlation of the input, causation of the step).
type Dispatch struct {
	ID      uuid.UUID
	Stream  string
	Command aggregate.Command
	Meta    strata.Metadata
}

// Dispatcher delivers a command, usually to aggregate.Repository.Handle with Dispatch.ID as the
// command ID. An error for which strata's Retryable holds (or a cancelled context) stops the
// runner, to be retried; any other error is the command's refusal, recorded in the saga's stream
// as a CommandRejected event.
type Dispatcher func(ctx context.Context, d Dispatch) error

// The type names of the records the runner keeps in every saga stream.
const (
	StepType            = "saga.Step"
	CommandRejectedType = "saga.CommandRejected"
)

// Step records one handled input in a saga stream: what came in and what went out.
type Step struct {
	// Input identifies the input: "event <id>" or "timer <id>".
	Input     string        `json:"input"`
	InputType string        `json:"inputType"`
	Position  string        `json:"position,omitempty"`
	Commands  []StepCommand `json:"commands,omitempty"`
	Timers    []StepTimer   `json:"timers,omitempty"`
	Cancelled []StepTimer   `json:"cancelled,omitempty"`
}

// StepCommand is a command a step issued.
type StepCommand struct {
	ID      uuid.UUID `json:"id"`
	Command string    `json:"command"`
	Stream  string    `json:"stream"`
}

// StepTimer is a timer a step scheduled or cancelled.
type StepTimer struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// CommandRejected records a command its aggregate refused.
type CommandRejected struct {
	CommandID uuid.UUID   `json:"commandId"`
	Command   string      `json:"command"`
	Stream    string      `json:"stream"`
	Code      strata.Code `json:"code,omitempty"`
	Error     string      `json:"error"`
}

// RegisterRecords registers Step and CommandRejected in reg, so that readers of saga streams
// decode them. It is not an error when they are registered already.
func RegisterRecords(reg *codec.Registry) error {
	if err := codec.Ensure[Step](reg, StepType, 1); err != nil {
		return err
	}
	return codec.Ensure[CommandRejected](reg, CommandRejectedType, 1)
}
