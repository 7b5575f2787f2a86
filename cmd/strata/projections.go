package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/projection"
)

// newProjectionsCmd is `strata projections list|status|rebuild|pause|resume|reset`.
func newProjectionsCmd(g *globals, wrap func(*cobra.Command) *cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   "projections",
		Short: "Inspect and control projections",
		Long: `Inspect and control the projections whose state the store keeps: their partitions, checkpoints,
lag, failures and leases. Workers run in the applications that define the projections; these
commands pause, resume, reset and rebuild them from outside. The certificate_status projection of
the PKI example can also be run here (rebuild --run).`,
	}
	c.AddCommand(
		wrap(newProjectionsListCmd(g)),
		wrap(newProjectionsStatusCmd(g)),
		wrap(newProjectionsRebuildCmd(g)),
		wrap(newProjectionsControlCmd(g, "pause", "Pause a projection at its next lease renewal", func(ctx context.Context, st strata.Store, name string, v int) error {
			return projection.Pause(ctx, st, name, v)
		})),
		wrap(newProjectionsControlCmd(g, "resume", "Resume a paused projection", func(ctx context.Context, st strata.Store, name string, v int) error {
			return projection.Resume(ctx, st, name, v)
		})),
		wrap(newProjectionsControlCmd(g, "reset", "Move a projection back to the start of the log; its workers rebuild it", func(ctx context.Context, st strata.Store, name string, v int) error {
			return projection.Reset(ctx, st, name, v)
		})),
	)
	return c
}

// projectionLine is one line of `projections list`: one projection version.
type projectionLine struct {
	Name       string  `json:"name"`
	Version    int     `json:"version"`
	Active     bool    `json:"active"`
	Partitions int     `json:"partitions"`
	State      string  `json:"state"`
	Processed  int64   `json:"processed"`
	LagEvents  int64   `json:"lagEvents"`
	LagSeconds float64 `json:"lagSeconds"`
	Progress   float64 `json:"progress"`
}

// partitionLine is one line of `projections status`.
type partitionLine struct {
	Name          string                    `json:"name"`
	Version       int                       `json:"version"`
	Partition     int                       `json:"partition"`
	Partitions    int                       `json:"partitions"`
	Active        bool                      `json:"active"`
	State         string                    `json:"state"`
	Checkpoint    string                    `json:"checkpoint"`
	Processed     int64                     `json:"processed"`
	LagEvents     int64                     `json:"lagEvents"`
	LagSeconds    float64                   `json:"lagSeconds"`
	RebuildTarget string                    `json:"rebuildTarget,omitempty"`
	Owner         string                    `json:"owner,omitempty"`
	LeaseUntil    string                    `json:"leaseUntil,omitempty"`
	Failure       *strata.ProjectionFailure `json:"failure,omitempty"`
}

func summarize(sts []projection.Status) []projectionLine {
	var out []projectionLine
	for _, s := range sts {
		if n := len(out); n == 0 || out[n-1].Name != s.Key.Name || out[n-1].Version != s.Key.Version {
			out = append(out, projectionLine{Name: s.Key.Name, Version: s.Key.Version, Active: s.Active, Partitions: s.Partitions, State: string(s.State)})
		}
		l := &out[len(out)-1]
		if s.State.Worse(projection.State(l.State)) {
			l.State = string(s.State)
		}
		l.Processed += s.Processed
		l.LagEvents += s.LagEvents
		l.LagSeconds = max(l.LagSeconds, s.LagSeconds)
	}
	for i := range out {
		if t := out[i].Processed + out[i].LagEvents; t > 0 {
			out[i].Progress = float64(out[i].Processed) / float64(t)
		} else {
			out[i].Progress = 1
		}
	}
	return out
}

func newProjectionsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List projection versions as JSON lines",
		Long: `List every projection version, one JSON object per line: name, version, whether readers use it
(active), partitions, the worst state of its partitions (failed, paused, stopped, rebuilding,
catching up, running), events read, lag in events and seconds, and progress.`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			sts, err := projection.Statuses(ctx, st, "")
			if err != nil {
				return err
			}
			w := newLineWriter(cmd.OutOrStdout())
			for _, l := range summarize(sts) {
				if err := w.write(l); err != nil {
					return err
				}
			}
			return w.flush()
		},
	}
}

func newProjectionsStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show every partition of a projection (or of all) as JSON lines",
		Long: `Show each partition: state, checkpoint, events read, lag in events and seconds, lease owner and
expiry, and the failure record (event, position, error) of a failed partition.`,
		Example: `  strata projections status certificate_status`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			sts, err := projection.Statuses(ctx, st, name)
			if err != nil {
				return err
			}
			if name != "" && len(sts) == 0 {
				return strata.Errorf(strata.NotFound, "projections status", "no projection %q", name)
			}
			w := newLineWriter(cmd.OutOrStdout())
			for _, s := range sts {
				l := partitionLine{Name: s.Key.Name, Version: s.Key.Version, Partition: s.Key.Partition, Partitions: s.Partitions, Active: s.Active,
					State: string(s.State), Checkpoint: s.Checkpoint.String(), Processed: s.Processed, LagEvents: s.LagEvents, LagSeconds: s.LagSeconds,
					Owner: s.Owner, Failure: s.Failure}
				if !s.RebuildTarget.IsZero() {
					l.RebuildTarget = s.RebuildTarget.String()
				}
				if !s.LeaseUntil.IsZero() {
					l.LeaseUntil = timeString(s.LeaseUntil)
				}
				if err := w.write(l); err != nil {
					return err
				}
			}
			return w.flush()
		},
	}
}

// pickVersion returns version, or when it is 0 the active version of name, else its newest.
func pickVersion(ctx context.Context, st strata.Store, op, name string, version int) (int, error) {
	if version > 0 {
		return version, nil
	}
	sts, err := projection.Statuses(ctx, st, name)
	if err != nil {
		return 0, err
	}
	for _, s := range sts {
		if s.Active {
			return s.Key.Version, nil
		}
		version = max(version, s.Key.Version)
	}
	if version == 0 {
		return 0, strata.Errorf(strata.NotFound, op, "no projection %q", name)
	}
	return version, nil
}

func newProjectionsControlCmd(g *globals, use, short string, fn func(context.Context, strata.Store, string, int) error) *cobra.Command {
	var version int
	c := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  argsExactly(1, "a projection name"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			v, err := pickVersion(ctx, st, "projections "+use, args[0], version)
			if err != nil {
				return err
			}
			if err := fn(ctx, st, args[0], v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s version %d\n", use, args[0], v)
			return nil
		},
	}
	c.Flags().IntVar(&version, "version", 0, "the version (default: the active one, else the newest)")
	return c
}

func newProjectionsRebuildCmd(g *globals) *cobra.Command {
	var (
		version int
		noWait  bool
		runIt   bool
	)
	c := &cobra.Command{
		Use:   "rebuild NAME",
		Short: "Replay a projection from the start of the log, with a progress bar",
		Long: `Reset the projection to the start of the log in rebuild mode (its workers clear its read model,
replay history and emit nothing until they pass today's end of the log), then show the progress
on stderr until every partition has caught up. --run runs the workers here, for the projections
this binary knows (certificate_status); otherwise the application's workers do the work.`,
		Example: `  strata projections rebuild certificate_status --run`,
		Args:    argsExactly(1, "a projection name"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			name := args[0]
			if runIt && noWait {
				return invalidf("projections rebuild", "--run works here until the rebuild has caught up, --no-wait returns at once: leave out one of --run and --no-wait")
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			var p *projection.Projection
			if runIt {
				if name != pki.StatusProjectionName {
					return invalidf("projections rebuild", "--run knows only %s, not %q", pki.StatusProjectionName, name)
				}
				view, err := pki.NewStatusView(st, nil)
				if err != nil {
					return err
				}
				if version == 0 {
					version, _ = pickVersion(ctx, st, "projections rebuild", name, 0)
				}
				pp := view.Projection(max(version, 1))
				p = &pp
				version = pp.Version
			}
			v, err := pickVersion(ctx, st, "projections rebuild", name, version)
			if err != nil {
				return err
			}
			if err := projection.Reset(ctx, st, name, v); err != nil && !(p != nil && strata.ErrorCode(err) == strata.NotFound) {
				return err // a projection run here for the first time is built from the start anyway
			}
			if noWait && p == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "rebuild: %s version %d reset; its workers rebuild it\n", name, v)
				return nil
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			errc := make(chan error, 1)
			if p != nil {
				w, err := projection.NewWorker(st, *p)
				if err != nil {
					return err
				}
				go func() { errc <- w.Catchup(ctx) }()
			}
			return watchRebuild(ctx, cmd.ErrOrStderr(), st, name, p != nil, errc)
		},
	}
	f := c.Flags()
	f.IntVar(&version, "version", 0, "the version (default: the active one, else the newest)")
	f.BoolVar(&noWait, "no-wait", false, "reset and return without waiting (not with --run)")
	f.BoolVar(&runIt, "run", false, "run the projection's workers in this process (certificate_status)")
	return c
}

// watchRebuild draws a progress bar on w until every partition of name has left rebuild mode
// and caught up (or the local worker ends).
func watchRebuild(ctx context.Context, w io.Writer, st strata.Store, name string, local bool, errc <-chan error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	draw := func(final bool) (bool, error) {
		sts, err := projection.Statuses(ctx, st, name)
		if err != nil {
			return false, err
		}
		var done, total int64
		rebuilding := false
		var failed *strata.ProjectionFailure
		for _, s := range sts {
			done += s.Processed
			total += s.Processed + s.LagEvents
			if s.State == projection.Rebuilding || (s.State == projection.Stopped && !local && s.LagEvents > 0) {
				rebuilding = true
			}
			if s.Failure != nil {
				failed = s.Failure
			}
		}
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		const width = 30
		bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-3)
		fmt.Fprintf(w, "\r%s [%s] %5.1f%% %d/%d events %.0f/s", name, bar, 100*frac, done, total, rate)
		if final {
			fmt.Fprintln(w)
		}
		if failed != nil {
			fmt.Fprintln(w)
			return true, strata.Errorf(strata.Internal, "projections rebuild", "failed on event %s at %s: %s", failed.EventID, failed.Position, failed.Error)
		}
		return !rebuilding && done == total, nil
	}
	for {
		select {
		case err := <-errc:
			if _, derr := draw(true); derr != nil && err == nil {
				err = derr
			}
			return err
		case <-ctx.Done():
			fmt.Fprintln(w)
			return ctx.Err()
		case <-tick.C:
			finished, err := draw(false)
			if err != nil {
				return err
			}
			if finished && !local {
				draw(true)
				return nil
			}
		}
	}
}
