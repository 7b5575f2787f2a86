package aggregate

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// The type names of the command log's events.
const (
	CommandSucceededType = "CommandSucceeded"
	CommandFailedType    = "CommandFailed"
)

// CommandLog records handled commands as events: CommandSucceeded, atomically with the events
// the command caused, or CommandFailed when the decider refused it or conflicts outlasted the
// retries. The events carry the command's metadata (principal, session, tenant, correlation),
// so that the log answers "who asked for what, when, and what came of it".
type CommandLog struct {
	// Stream names the log stream for an aggregate stream. Nil means "commands-" followed by the
	// aggregate stream (a stream name too long for the prefix is logged to "commands-" followed
	// by its SHA-1). One log stream per aggregate keeps appends to different aggregates apart.
	Stream func(aggregateStream string) string
	// Include lists command-name patterns to log; empty means every command. Exclude lists
	// patterns not to log, and wins over Include. In a pattern, "*" matches one dot-separated
	// segment, or part of one ("pki.Revoke*"), and "**" any number of segments: "pki.**",
	// "health.**".
	Include, Exclude []string
}

// CommandSucceeded records a command that was handled.
type CommandSucceeded struct {
	CommandID uuid.UUID `json:"commandId"`
	Command   string    `json:"command"`
	Stream    string    `json:"stream"`
	// FromVersion and ToVersion are the stream's version before and after the command; equal
	// when the command caused no events.
	FromVersion int64 `json:"fromVersion"`
	ToVersion   int64 `json:"toVersion"`
	Events      int   `json:"events"`
	// DurationMicros is how long the handling took, loading and retries included.
	DurationMicros int64 `json:"durationMicros"`
}

// CommandFailed records a command that was refused or could not be appended.
type CommandFailed struct {
	CommandID      uuid.UUID   `json:"commandId"`
	Command        string      `json:"command"`
	Stream         string      `json:"stream"`
	Version        int64       `json:"version"`
	Code           strata.Code `json:"code,omitempty"`
	Error          string      `json:"error"`
	DurationMicros int64       `json:"durationMicros"`
}

// RegisterCommandLog registers CommandSucceeded and CommandFailed in reg, so that readers of
// the log decode them. Registering into a registry that has them already is not an error.
func RegisterCommandLog(reg *codec.Registry) error {
	if err := codec.Ensure[CommandSucceeded](reg, CommandSucceededType, 1); err != nil {
		return err
	}
	return codec.Ensure[CommandFailed](reg, CommandFailedType, 1)
}

func (l *CommandLog) init(reg *codec.Registry) error {
	for _, p := range append(append([]string(nil), l.Include...), l.Exclude...) {
		if p == "" {
			return strata.Errorf(strata.Invalid, "aggregate new", "empty command-log pattern")
		}
	}
	return RegisterCommandLog(reg)
}

// logs reports whether the command named name is logged.
func (l *CommandLog) logs(name string) bool {
	if l == nil {
		return false
	}
	for _, p := range l.Exclude {
		if MatchCommand(p, name) {
			return false
		}
	}
	if len(l.Include) == 0 {
		return true
	}
	for _, p := range l.Include {
		if MatchCommand(p, name) {
			return true
		}
	}
	return false
}

func (l *CommandLog) stream(aggregate string) string {
	if l.Stream != nil {
		return l.Stream(aggregate)
	}
	s := "commands-" + aggregate
	if len(s) > strata.MaxStreamNameLen {
		s = "commands-" + uuid.NewSHA1(uuid.NameSpaceOID, []byte(aggregate)).String()
	}
	return s
}

// succeeded returns the CommandSucceeded record to append with the command's events.
func (l *CommandLog) succeeded(ctx context.Context, reg *codec.Registry, id uuid.UUID, stream, name string, meta strata.Metadata, start time.Time, from, to int64, n int) (strata.StreamAppend, bool, error) {
	if !l.logs(name) {
		return strata.StreamAppend{}, false, nil
	}
	rec := CommandSucceeded{CommandID: id, Command: name, Stream: stream, FromVersion: from, ToVersion: to, Events: n, DurationMicros: time.Since(start).Microseconds()}
	d, err := reg.EncodeID(ctx, uuid.NewSHA1(id, []byte(CommandSucceededType)), rec, meta)
	if err != nil {
		return strata.StreamAppend{}, false, err
	}
	return strata.StreamAppend{Stream: l.stream(stream), Expected: strata.Any, Events: []strata.EventData{d}}, true, nil
}

// failed appends a CommandFailed record. A failure to log is not the caller's error: the
// caller gets the command's own error.
func (l *CommandLog) failed(ctx context.Context, reg *codec.Registry, store strata.Store, id uuid.UUID, stream, name string, meta strata.Metadata, version int64, start time.Time, cause error) {
	if !l.logs(name) {
		return
	}
	rec := CommandFailed{CommandID: id, Command: name, Stream: stream, Version: version, Error: cause.Error(), DurationMicros: time.Since(start).Microseconds()}
	var se *strata.Error
	if errors.As(cause, &se) {
		rec.Code = se.Code // a store error; a domain error (the decider refused) has no code
	}
	d, err := reg.EncodeID(ctx, uuid.NewSHA1(id, []byte(CommandFailedType)), rec, meta)
	if err != nil {
		return
	}
	_, _ = store.Append(ctx, l.stream(stream), strata.Any, d)
}

// MatchCommand reports whether a command name matches a pattern: segments are separated by
// dots, "**" matches any number of segments (zero included), and within a segment "*" matches
// any run of characters.
func MatchCommand(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "."), strings.Split(name, "."))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := len(name); i >= 0; i-- {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 || !matchSegment(pat[0], name[0]) {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// matchSegment matches one segment against a pattern in which "*" matches any run.
func matchSegment(pat, s string) bool {
	star := strings.IndexByte(pat, '*')
	if star < 0 {
		return pat == s
	}
	if !strings.HasPrefix(s, pat[:star]) {
		return false
	}
	rest := pat[star+1:]
	s = s[star:]
	for i := len(s); i >= 0; i-- {
		if matchSegment(rest, s[i:]) {
			return true
		}
	}
	return false
}
