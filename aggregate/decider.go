// Package aggregate handles commands against event-sourced state: a pure [Decider] says which
// events a command causes, and a [Repository] loads the state from a stream (from a snapshot
// when there is one), decides, and appends with the expected version, retrying on concurrency
// conflicts and appending nothing new when the same command is handled twice.
//
// A decider is three pure functions over a state S, commands C and events E:
//
//	Decide(S, C) ([]E, error)   what a command causes, or why it is refused
//	Evolve(S, E) S              what an event does to the state
//	Initial() S                 the state of a stream with no events
//
// They do no I/O, read no clock and never panic on input, so that they are tested with
// Given/When/Then (package aggregatetest) and replayed safely for decades.
package aggregate

import (
	"fmt"

	"github.com/strata-events/strata"
)

// Command is what a decider takes. Its name identifies it in the command log and in include and
// exclude patterns, e.g. "pki.RevokeCertificate"; keep it stable.
type Command interface {
	CommandName() string
}

// Creator is implemented by a command that starts a stream, such as IssueCertificate. Handle
// decides such a command on the initial state and appends it expecting no stream, without
// reading the stream first: one round trip to the store instead of two. When the stream exists
// after all (or the decider refuses the command on the initial state), Handle loads the stream
// and decides again as for any other command, so the decider always has the last word on the
// real state. A command ID handled before is still recognised.
type Creator interface {
	Command
	// CreatesStream reports whether this command is meant for a stream with no events.
	CreatesStream() bool
}

// Decider is the pure core of an aggregate.
type Decider[S any, C Command, E any] struct {
	// Initial returns the state of a stream with no events. Nil means S's zero value.
	Initial func() S
	// Decide returns the events cmd causes in state s, none when cmd changes nothing (an
	// idempotent command), or an error that says why cmd is refused.
	Decide func(s S, cmd C) ([]E, error)
	// Evolve returns the state after e.
	Evolve func(s S, e E) S
}

// initial returns a fresh initial state.
func (d Decider[S, C, E]) initial() S {
	if d.Initial == nil {
		var zero S
		return zero
	}
	return d.Initial()
}

// Fold evolves s through events.
func (d Decider[S, C, E]) Fold(s S, events ...E) S {
	for _, e := range events {
		s = d.Evolve(s, e)
	}
	return s
}

// validate reports a decider that lacks a function.
func (d Decider[S, C, E]) validate(op string) (err error) {
	if d.Decide == nil || d.Evolve == nil {
		return strata.Errorf(strata.Invalid, op, "a decider needs Decide and Evolve")
	}
	// Initial takes nothing and must be pure: one call under recover tells whether it panics,
	// so that the repository's calls never crash the process.
	if d.Initial != nil {
		defer func() {
			if p := recover(); p != nil {
				err = strata.Errorf(strata.Invalid, op, "the decider's Initial panicked: %v", p)
			}
		}()
		d.Initial()
	}
	return nil
}

// asEvent converts a decoded value to the decider's event type.
func asEvent[E any](v any, typ string) (E, error) {
	e, ok := v.(E)
	if !ok {
		var zero E
		return zero, fmt.Errorf("event type %q decodes to %T, which is not an event of this aggregate (%T)", typ, v, any(&zero))
	}
	return e, nil
}
