package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/query"
)

// stateModel is a model the CLI can fold a stream with, its state as JSON. stateAt and history
// fold with the events' personal data decrypted when reveal is set (a key-encryption key is
// configured); snapshots always hold what the store holds.
type stateModel struct {
	stateAt   func(ctx context.Context, st strata.Store, stream string, at query.At, reveal revealFunc) (stateLine, error)
	history   func(ctx context.Context, st strata.Store, stream string, opts query.HistoryOptions, reveal revealFunc, fn func(query.Entry) error) error
	snapshots func(ctx context.Context, st strata.Store, stream string, every int) (int, error)
}

// revealFunc decrypts the personal data of an event for printing (see globals.revealer).
type revealFunc = func(context.Context, *strata.Event) error

// revealing is m folding revealed events when reveal is set (see query.Revealing).
func revealing[S any](m query.Model[S], reveal revealFunc) query.Model[S] {
	if reveal == nil {
		return m
	}
	return query.Revealing(m, reveal)
}

// stateLine is the output of `strata state`.
type stateLine struct {
	Stream         string          `json:"stream"`
	At             string          `json:"at"`
	KnownAt        string          `json:"knownAt,omitempty"`
	Version        int64           `json:"version"`
	LastRecordedAt string          `json:"lastRecordedAt,omitempty"`
	FromSnapshot   int64           `json:"fromSnapshot,omitempty"`
	Folded         int             `json:"folded"`
	Skipped        int             `json:"skippedLaterOccurring,omitempty"`
	State          json.RawMessage `json:"state"`
	Changes        []eventLine     `json:"changes,omitempty"`
}

func modelOf[S any](m query.Model[S]) stateModel {
	return stateModel{
		stateAt: func(ctx context.Context, st strata.Store, stream string, at query.At, reveal revealFunc) (stateLine, error) {
			s, err := query.StateAt(ctx, st, revealing(m, reveal), stream, at)
			if err != nil {
				return stateLine{}, err
			}
			b, err := json.Marshal(s.State)
			if err != nil {
				return stateLine{}, strata.Errorf(strata.Internal, "state", "encode state: %w", err)
			}
			return stateLine{Stream: stream, Version: s.Version, LastRecordedAt: timeString(s.LastRecordedAt), FromSnapshot: s.FromSnapshot, Folded: s.Events, Skipped: s.Skipped, State: b}, nil
		},
		history: func(ctx context.Context, st strata.Store, stream string, opts query.HistoryOptions, reveal revealFunc, fn func(query.Entry) error) error {
			for e, err := range query.History(ctx, st, revealing(m, reveal), stream, opts) {
				if err != nil {
					return err
				}
				if err := fn(e); err != nil {
					return err
				}
			}
			return nil
		},
		snapshots: func(ctx context.Context, st strata.Store, stream string, every int) (int, error) {
			return query.TakeSnapshots(ctx, st, m, stream, every)
		},
	}
}

// models returns the model named by --model: "json" (any stream: its JSON objects merged) or
// "certificate" (the PKI example's certificate aggregate).
func models(name, validField string) (stateModel, error) {
	switch name {
	case "", "json":
		if validField != "" {
			return modelOf(query.JSONFieldModel(validField)), nil
		}
		return modelOf(query.JSONModel()), nil
	case "certificate":
		reg, err := pki.NewRegistry()
		if err != nil {
			return stateModel{}, err
		}
		return modelOf(query.DeciderModel("pki.certificate/1", reg, pki.CertificateDecider)), nil
	}
	return stateModel{}, invalidf("state", "--model %q: want json or certificate", name)
}

func newStateCmd(g *globals) *cobra.Command {
	var at, knownAt, changesOn, tz, model, validField string
	var snapEvery int
	c := &cobra.Command{
		Use:   "state STREAM [--at T [--known-at T]]",
		Short: "Print a stream's state as recorded at a time, or as known at one time about another",
		Long: `Print the state of STREAM as one JSON object.

  --at T                 the state as recorded at T (transaction time): the events committed by T
  --at T --known-at K    the state at T as known at K (bitemporal): the events committed by K that
                         occurred (valid time) by T, e.g. a revocation recorded on 20 March with an
                         invalidity date of 14 March: --at 2023-03-15 --known-at 2023-03-21 is revoked,
                         --known-at 2023-03-16 is not
  --changes-on DAY       also list the events that changed it that day (by either time, the
                         valid one from --valid-field where it is set): the day in UTC, or in
                         --tz ZONE (an IANA name such as Europe/Berlin)
  --model certificate    fold with the PKI certificate aggregate instead of merging JSON objects
  --valid-field F        an event holds (valid time) from its payload's time field F when it has
                         one, e.g. a revocation's invalidSince, else from its occurredAt
  --take-snapshots N     first save a temporal snapshot after every N-th version (speeds up later asks)

With a key-encryption key (--kek-file, STRATA_KEK_FILE or STRATA_KEK), personal data prints in
clear, or as its redaction marker once erased: each event is opened in memory before it is folded,
from the stream's first event (snapshots keep the stored ciphertext, and serve asks without a key).

Times: RFC 3339, 2006-01-02[T15:04] (UTC), now, or relative such as -90d.`,
		Example: `  strata state certificate-7F3A --at 2023-03-14T09:00 --model certificate
  strata state certificate-7F3A --at 2023-03-15 --known-at 2023-03-21 --model certificate
  strata state certificate-7F3A --at 2023-03-14T09:00 --changes-on 2023-03-14`,
		Args: argsExactly(1, "STREAM"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "state"
			now := time.Now()
			var qa query.At
			var line stateLine
			if at != "" {
				t, err := query.ParseTime(at, now)
				if err != nil {
					return err
				}
				qa.Recorded = t
			}
			if knownAt != "" {
				if at == "" {
					return invalidf(op, "--known-at needs --at (the time the state is asked about)")
				}
				k, err := query.ParseTime(knownAt, now)
				if err != nil {
					return err
				}
				qa = query.At{Recorded: k, Occurred: qa.Recorded}
			}
			if validField != "" && model != "json" {
				return invalidf(op, "--valid-field works with --model json")
			}
			if validField != "" && knownAt == "" {
				return invalidf(op, "--valid-field works with --known-at (it sets when an event holds, which only --known-at asks)")
			}
			if snapEvery < 0 {
				return invalidf(op, "--take-snapshots must be 1 or more (0: take none)")
			}
			if tz != "" && changesOn == "" {
				return invalidf(op, "--tz works with --changes-on (it sets the zone of that day)")
			}
			// Every flag is read before --take-snapshots writes: a refused command writes nothing.
			var day time.Time
			if changesOn != "" {
				if day, err = query.ParseTime(changesOn, now); err != nil {
					return err
				}
				if day, err = startOfDay(day, tz); err != nil {
					return err
				}
			}
			m, err := models(model, validField)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			reveal, err := g.revealer(ctx, st)
			if err != nil {
				return err
			}
			if snapEvery > 0 {
				if _, err := m.snapshots(ctx, st, args[0], snapEvery); err != nil {
					return err
				}
			}
			if line, err = m.stateAt(ctx, st, args[0], qa, reveal); err != nil {
				return err
			}
			line.At = timeString(qa.Recorded)
			if knownAt != "" {
				line.At, line.KnownAt = timeString(qa.Occurred), timeString(qa.Recorded)
			}
			if line.At == "" {
				line.At = timeString(strata.Timestamp(now))
			}
			if changesOn != "" {
				next := day.AddDate(0, 0, 1) // 23 or 25 hours on a day that changes the clocks
				seen := map[string]bool{}
				rec, err := query.Changes(ctx, st, args[0], day, next)
				if err != nil {
					return err
				}
				var validTime func(strata.Event) time.Time
				if validField != "" {
					validTime = query.FieldValidTime(validField)
				}
				occ, err := query.ChangesValid(ctx, st, args[0], day, next, validTime)
				if err != nil {
					return err
				}
				line.Changes = []eventLine{}
				for _, e := range append(rec, occ...) {
					if seen[e.ID.String()] {
						continue
					}
					seen[e.ID.String()] = true
					if reveal != nil {
						if err := reveal(ctx, &e); err != nil {
							return err
						}
					}
					line.Changes = append(line.Changes, newEventLine(e))
				}
			}
			w := newLineWriter(cmd.OutOrStdout())
			if err := w.write(line); err != nil {
				return err
			}
			return w.flush()
		},
	}
	f := c.Flags()
	f.StringVar(&at, "at", "", "the time asked about (default now)")
	f.StringVar(&knownAt, "known-at", "", "as known at this time: --at becomes the valid (occurred) time")
	f.StringVar(&changesOn, "changes-on", "", "also list the events that changed the stream on this day")
	f.StringVar(&tz, "tz", "", "with --changes-on: the time zone of the day (IANA name; default UTC)")
	f.StringVar(&model, "model", "json", "how to fold the events: json or certificate")
	f.IntVar(&snapEvery, "take-snapshots", 0, "save temporal snapshots every N versions first")
	f.StringVar(&validField, "valid-field", "", "with --known-at: an event holds from this RFC 3339 payload field when it has one (e.g. invalidSince)")
	return c
}

// startOfDay returns the start of the day that holds t in the time zone tz (UTC when empty):
// a day named by its date alone (2023-03-14) is that date in tz, and a time is the day it
// falls on there.
func startOfDay(t time.Time, tz string) (time.Time, error) {
	if tz == "" {
		return t.Truncate(24 * time.Hour), nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, invalidf("state", "--tz %q: %v", tz, err)
	}
	if t.Equal(t.Truncate(24 * time.Hour)) {
		// A date alone parses as its midnight in UTC: take the same date in tz.
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc), nil
	}
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc), nil
}
