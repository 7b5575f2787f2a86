// Package aggregatetest tests deciders Given/When/Then: given the events a stream holds, when a
// command is decided, then exactly these events follow, or this error.
//
//	aggregatetest.Given(pki.Certificate, issued).
//		When(pki.RevokeCertificate{Serial: "7F3A", Reason: "keyCompromise"}).
//		Then(t, pki.CertificateRevoked{Serial: "7F3A", Reason: "keyCompromise"})
//
// No store is involved: deciders are pure.
package aggregatetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-events/strata/aggregate"
)

// Scenario is a decider, the events given and the command decided.
type Scenario[S any, C aggregate.Command, E any] struct {
	d     aggregate.Decider[S, C, E]
	given []E
	cmd   C
	when  bool
}

// Given starts a scenario with the events the stream already holds.
func Given[S any, C aggregate.Command, E any](d aggregate.Decider[S, C, E], events ...E) *Scenario[S, C, E] {
	return &Scenario[S, C, E]{d: d, given: events}
}

// When sets the command to decide.
func (s *Scenario[S, C, E]) When(cmd C) *Scenario[S, C, E] {
	s.cmd, s.when = cmd, true
	return s
}

// State returns the state the given events fold into.
func (s *Scenario[S, C, E]) State() S {
	var state S
	if s.d.Initial != nil {
		state = s.d.Initial()
	}
	return s.d.Fold(state, s.given...)
}

func (s *Scenario[S, C, E]) decide(t testing.TB) ([]E, error) {
	t.Helper()
	if !s.when {
		t.Fatalf("scenario without When")
	}
	return s.d.Decide(s.State(), s.cmd)
}

// Then asserts that the command is accepted and causes exactly want, in order (none for a
// command that changes nothing).
func (s *Scenario[S, C, E]) Then(t testing.TB, want ...E) {
	t.Helper()
	got, err := s.decide(t)
	if err != nil {
		t.Fatalf("when %s: refused with %v; want %d events", s.cmd.CommandName(), err, len(want))
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("when %s:\n got %s\nwant %s", s.cmd.CommandName(), list(got), list(want))
	}
}

// ThenError asserts that the command is refused with an error for which errors.Is(err, target)
// holds, and causes no events.
func (s *Scenario[S, C, E]) ThenError(t testing.TB, target error) {
	t.Helper()
	got, err := s.decide(t)
	if err == nil {
		t.Fatalf("when %s: accepted with %s; want error %v", s.cmd.CommandName(), list(got), target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("when %s: error %v; want %v", s.cmd.CommandName(), err, target)
	}
	if len(got) > 0 {
		t.Fatalf("when %s: refused but also returned %s", s.cmd.CommandName(), list(got))
	}
}

func list[E any](events []E) string {
	if len(events) == 0 {
		return "no events"
	}
	parts := make([]string, len(events))
	for i, e := range events {
		parts[i] = fmt.Sprintf("%#v", e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
