package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

type retentionFlags struct {
	policies      []string
	maxAge        string
	batch         int
	principal     string
	allowUnsealed bool
	schedule      string
}

func (fl *retentionFlags) config() (*query.Retention, error) {
	r := &query.Retention{Batch: fl.batch, Principal: fl.principal, AllowUnsealed: fl.allowUnsealed, Schedule: fl.schedule}
	def := query.Policy{Name: "default"}
	if fl.maxAge != "" {
		d, err := query.ParseAge(fl.maxAge)
		if err != nil {
			return nil, err
		}
		def.MaxAge = d
	}
	// A --policy without tenant= and types= applies to every event, as the default does: it
	// takes the default's place. Behind the default it would govern nothing, and the default's
	// age would remove what it was given to keep.
	r.Policies = append(r.Policies, def)
	catchAll := ""
	for _, s := range fl.policies {
		p, err := query.ParsePolicy(s)
		if err != nil {
			return nil, err
		}
		if p.Tenant != "" || len(p.Types) > 0 {
			if p.Name == "default" {
				return nil, invalidf("retention", "the policy name default is taken by --max-age")
			}
			r.Policies = append(r.Policies, p)
			continue
		}
		switch {
		case catchAll != "":
			return nil, invalidf("retention", "--policy %q and --policy %q both apply to every event (neither names a tenant or types)", catchAll, s)
		case fl.maxAge != "":
			return nil, invalidf("retention", "--max-age and --policy %q both set the policy of every event (it names no tenant or types)", s)
		}
		catchAll = s
		if p.Name == "" {
			p.Name = "default"
		}
		r.Policies[0] = p
	}
	if fl.schedule != "" {
		if _, err := query.ParseSchedule(fl.schedule); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func newRetentionCmd(g *globals, wrap func(*cobra.Command) *cobra.Command) *cobra.Command {
	var fl retentionFlags
	c := &cobra.Command{
		Use:   "retention",
		Short: "Remove old payloads, keeping tombstones that the ledger audit verifies",
		Long: `Retention removes the payload and metadata (all but the tenant) of events older than their
policy's age, keeping each event's row (its stream version, position and times) and a tombstone with
its ledger leaf hash, so that strata verify and every proof still pass. Each run is recorded in the
stream strata-retention (counts and positions, no personal data). Streams under legal hold are never
touched, nor events the ledger has not sealed (unless --allow-unsealed). A run also prunes the
transmitters' records of events delivered before the default policy's cutoff (dead letters stay).

  strata retention plan [policy flags]       what a run would remove now (a dry run)
  strata retention run [policy flags]        remove; with --schedule, run on a cron schedule until ^C
  strata retention hold STREAM --reason R    put a stream under legal hold
  strata retention release STREAM            lift a hold
  strata retention holds                     list the holds

Policies: the default keeps --max-age (90d). Each --policy is name=N[,tenant=T][,types=A|B]
(,age=365d | ,keep); an event falls under its most specific policy (tenant and type, tenant,
type, default). A --policy without tenant= and types= is the default (e.g. name=all,keep: keep
what no other policy names).`,
	}
	// The policy flags belong to plan and run: hold, release and holds would ignore them.
	policyFlags := func(c *cobra.Command) {
		pf := c.Flags()
		pf.StringArrayVar(&fl.policies, "policy", nil, "a policy: name=N,tenant=T,types=A|B,age=365d or ...,keep (repeatable)")
		pf.StringVar(&fl.maxAge, "max-age", "", "the default policy's age (default 90d)")
		pf.IntVar(&fl.batch, "batch", 0, "events per transaction (default 2000)")
		pf.StringVar(&fl.principal, "principal", "", "who runs retention (recorded on its audit events)")
		pf.BoolVar(&fl.allowUnsealed, "allow-unsealed", false, "also remove events the ledger has not sealed")
	}
	report := func(cmd *cobra.Command, rep *query.Report) error {
		w := newLineWriter(cmd.OutOrStdout())
		if err := w.write(rep); err != nil {
			return err
		}
		return w.flush()
	}
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Print what a retention run would remove now, removing nothing",
		Args:  argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			r, err := fl.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			purgers(r, st)
			rep, err := r.Plan(ctx, st)
			if err != nil {
				return err
			}
			return report(cmd, rep)
		},
	}
	run := &cobra.Command{
		Use:   "run",
		Short: "Remove the payloads past their retention (once, or on --schedule)",
		Args:  argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			r, err := fl.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			purgers(r, st)
			if fl.schedule != "" {
				sctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				if err := r.Start(sctx, st); err != nil && sctx.Err() == nil {
					return err
				}
				return nil
			}
			rep, err := r.Run(ctx, st)
			if err != nil {
				return err
			}
			return report(cmd, rep)
		},
	}
	policyFlags(plan)
	policyFlags(run)
	run.Flags().StringVar(&fl.schedule, "schedule", "", "run on this cron schedule (5 fields, UTC; e.g. '0 3 * * *' or @daily) until interrupted")
	var reason, heldBy string
	hold := &cobra.Command{
		Use:   "hold STREAM --reason R",
		Short: "Put a stream under legal hold: retention never touches it",
		Args:  argsExactly(1, "STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return invalidf("retention hold", "--reason is required")
			}
			return withRetention(cmd.Context(), g, false, func(rs strata.RetentionStore) error {
				return rs.PlaceLegalHold(cmd.Context(), strata.LegalHold{Stream: args[0], Reason: reason, HeldBy: heldBy})
			})
		},
	}
	hold.Flags().StringVar(&reason, "reason", "", "why (a case number)")
	hold.Flags().StringVar(&heldBy, "by", "", "who places the hold")
	release := &cobra.Command{
		Use:   "release STREAM",
		Short: "Lift a legal hold",
		Args:  argsExactly(1, "STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRetention(cmd.Context(), g, false, func(rs strata.RetentionStore) error {
				return rs.ReleaseLegalHold(cmd.Context(), args[0])
			})
		},
	}
	holds := &cobra.Command{
		Use:   "holds",
		Short: "List the streams under legal hold",
		Args:  argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRetention(cmd.Context(), g, true, func(rs strata.RetentionStore) error {
				w := newLineWriter(cmd.OutOrStdout())
				for h, err := range rs.LegalHolds(cmd.Context()) {
					if err != nil {
						w.flush()
						return err
					}
					if err := w.write(holdLine{Stream: h.Stream, Reason: h.Reason, HeldBy: h.HeldBy, HeldAt: timeString(h.HeldAt)}); err != nil {
						return err
					}
				}
				return w.flush()
			})
		},
	}
	c.AddCommand(wrap(plan), wrap(run), wrap(hold), wrap(release), wrap(holds))
	return c
}

// holdLine is one hold of `strata retention holds`.
type holdLine struct {
	Stream string `json:"stream"`
	Reason string `json:"reason"`
	HeldBy string `json:"heldBy,omitempty"`
	HeldAt string `json:"heldAt"`
}

// purgers adds the purgers of what st keeps besides events.
func purgers(r *query.Retention, st strata.Store) {
	if ts, ok := st.(strata.TransmitStore); ok {
		r.Purgers = append(r.Purgers, query.DeliveryPurger(ts))
	}
}

// withRetention runs fn on the store's retention; readOnly commands do not create a database.
func withRetention(ctx context.Context, g *globals, readOnly bool, fn func(strata.RetentionStore) error) (err error) {
	open := g.open
	if readOnly {
		open = g.openExisting
	}
	st, _, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	rs, ok := st.(strata.RetentionStore)
	if !ok {
		return invalidf("retention", "the store (%T) has no retention", st)
	}
	return fn(rs)
}
