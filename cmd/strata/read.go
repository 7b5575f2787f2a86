package main

import (
	"context"
	"iter"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
)

type readFlags struct {
	all      bool
	from     string
	backward bool
	limit    int
	types    []string
	prefix   string
	tenant   string
	follow   bool
}

func newReadCmd(g *globals) *cobra.Command {
	var fl readFlags
	c := &cobra.Command{
		Use:   "read (STREAM | --all)",
		Short: "Read a stream, or the global log, as JSON lines",
		Long: `Read events as one JSON object per line: id, stream, version, position, type, schema, data,
meta, recordedAt and occurredAt.

  strata read STREAM [--from VERSION] [--backward] [--limit N]
  strata read --all [--from CURSOR] [--type T]... [--prefix P] [--tenant T] [--limit N] [--follow]

With --all, --from is a position printed by an earlier read ("42" or "1017.42"): reading resumes
strictly after it. --follow keeps printing events as they are committed until interrupted.`,
		Example: `  strata read certificate-7F3A
  strata read --all --type CertificateRevoked --tenant acme-ca
  strata read --all --from 42 --follow`,
		Args: func(cmd *cobra.Command, args []string) error {
			if fl.all && len(args) != 0 {
				return invalidf("read", "--all reads the global log and takes no STREAM argument")
			}
			if !fl.all && len(args) != 1 {
				return invalidf("read", "want STREAM or --all (see strata read --help)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if fl.all {
				return readAll(cmd, g, fl)
			}
			return readStream(cmd, g, args[0], fl)
		},
	}
	f := c.Flags()
	f.BoolVar(&fl.all, "all", false, "read the global log instead of one stream")
	f.StringVar(&fl.from, "from", "", "stream: first version to read; --all: the cursor to read after")
	f.BoolVar(&fl.backward, "backward", false, "read the stream from the end (or from --from) towards version 1")
	f.IntVar(&fl.limit, "limit", 0, "print at most N events (0: no limit)")
	f.StringArrayVar(&fl.types, "type", nil, "--all: keep events of this type (repeatable)")
	f.StringVar(&fl.prefix, "prefix", "", "--all: keep events whose stream name starts with this")
	f.StringVar(&fl.tenant, "tenant", "", "--all: keep events of this tenant")
	f.BoolVar(&fl.follow, "follow", false, "--all: keep printing new events until interrupted")
	return c
}

func readStream(cmd *cobra.Command, g *globals, stream string, fl readFlags) (err error) {
	const op = "read"
	for _, f := range []struct {
		name string
		set  bool
	}{{"--type", len(fl.types) > 0}, {"--prefix", fl.prefix != ""}, {"--tenant", fl.tenant != ""}, {"--follow", fl.follow}} {
		if f.set {
			return invalidf(op, "%s works with --all only", f.name)
		}
	}
	if fl.limit < 0 {
		return invalidf(op, "--limit must be 0 or more")
	}
	var from int64
	if fl.from != "" {
		if from, err = strconv.ParseInt(fl.from, 10, 64); err != nil || from < 0 {
			return invalidf(op, "--from %q: want a stream version (0 or more)", fl.from)
		}
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
	return printEvents(cmd, st.ReadStream(ctx, stream, strata.ReadStreamOptions{From: from, Backward: fl.backward, Limit: fl.limit}), 0, false, reveal)
}

func readAll(cmd *cobra.Command, g *globals, fl readFlags) (err error) {
	const op = "read"
	if fl.backward {
		return invalidf(op, "--backward works with a STREAM only")
	}
	if fl.limit < 0 {
		return invalidf(op, "--limit must be 0 or more")
	}
	after, err := strata.ParsePosition(fl.from)
	if err != nil {
		return invalidf(op, "--from %q: want a position printed by an earlier read, such as 42 or 1017.42", fl.from)
	}
	filter := strata.Filter{Types: fl.types, StreamPrefix: fl.prefix, Tenant: fl.tenant}

	ctx := cmd.Context()
	if fl.follow {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
	}
	st, _, err := g.openExisting(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	reveal, err := g.revealer(ctx, st)
	if err != nil {
		return err
	}
	if fl.follow {
		err := printEvents(cmd, st.Subscribe(ctx, after, filter), fl.limit, true, reveal)
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of --follow
		}
		return err
	}
	return printEvents(cmd, st.ReadAll(ctx, strata.ReadAllOptions{After: after, Filter: filter, Limit: fl.limit}), 0, false, reveal)
}

// revealer returns what decrypts personal data for printing: nil (print as stored, ciphertext
// and all) when no key-encryption key is configured.
func (g *globals) revealer(ctx context.Context, st strata.Store) (func(context.Context, *strata.Event) error, error) {
	p, haveKEK, err := g.protector(ctx, st)
	if err != nil || !haveKEK {
		return nil, err
	}
	return p.Reveal, nil
}

// printEvents writes each event as a JSON line, stopping after limit events when limit > 0.
// When following, it flushes after every event so that a pipe sees it at once. reveal, if set,
// decrypts personal data first.
func printEvents(cmd *cobra.Command, seq iter.Seq2[strata.Event, error], limit int, follow bool, reveal func(context.Context, *strata.Event) error) error {
	w := newLineWriter(cmd.OutOrStdout())
	n := 0
	for e, err := range seq {
		if err != nil {
			w.flush()
			return err
		}
		if reveal != nil {
			if err := reveal(cmd.Context(), &e); err != nil {
				w.flush()
				return err
			}
		}
		if err := w.write(newEventLine(e)); err != nil {
			return err
		}
		if follow {
			if err := w.flush(); err != nil {
				return err
			}
		}
		if n++; limit > 0 && n >= limit {
			break
		}
	}
	return w.flush()
}
