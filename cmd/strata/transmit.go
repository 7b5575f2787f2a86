package main

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/amqp"
	"github.com/strata-events/strata/transmit/kafka"
	"github.com/strata-events/strata/transmit/nats"
	"github.com/strata-events/strata/transmit/redis"
	"github.com/strata-events/strata/transmit/webhook"
)

// transmitSinks are the adapters a transmitters file may name, by type.
func transmitSinks() map[string]transmit.SinkFactory {
	return map[string]transmit.SinkFactory{
		"nats": nats.Factory, "amqp": amqp.Factory, "kafka": kafka.Factory,
		"redis": redis.Factory, "webhook": webhook.Factory,
	}
}

// newTransmitManager loads a transmitters file and makes the Manager that runs it on st; serve
// and `transmit run` share it. A transmitter with payload "revealed" gets the KEK of --kek-file.
func newTransmitManager(ctx context.Context, g *globals, st strata.Store, path string, logger *slog.Logger) (*transmit.Manager, error) {
	cfg, err := transmit.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	opts := []transmit.ManagerOption{transmit.WithSinks(transmitSinks()), transmit.WithManagerLogger(logger)}
	for _, t := range cfg.Transmitters {
		if t.Payload != transmit.PayloadRevealed || !t.IsEnabled() {
			continue
		}
		p, haveKEK, err := g.protector(ctx, st)
		if err != nil {
			return nil, err
		}
		if haveKEK {
			opts = append(opts, transmit.WithReveal(p.Reveal))
		}
		break
	}
	return transmit.NewManager(st, cfg, opts...)
}

// newTransmitCmd is `strata transmit run|status|prune|dlq list|dlq retry`.
func newTransmitCmd(g *globals, wrap func(*cobra.Command) *cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   "transmit",
		Short: "Run, inspect and replay the transmitters that deliver events to brokers and webhooks",
		Long: `Transmitters deliver the events of the log to NATS JetStream, RabbitMQ, Kafka, Redis Streams and
webhooks, as CloudEvents, at least once, recording every delivery in the store (docs/DELIVERY.md).
"run" runs the transmitters of a file (as "strata serve --transmitters FILE" does); "status" and
"dlq" read the records any running transmitter keeps; "prune" deletes old records.

Any number of processes may run the same transmitters against one store: for each name, the one
holding its lease delivers and the others stand by, taking over when it stops or dies.`,
	}
	dlq := &cobra.Command{Use: "dlq", Short: "List and retry dead letters: events a destination kept rejecting"}
	dlq.AddCommand(wrap(newDLQListCmd(g)), wrap(newDLQRetryCmd(g)))
	c.AddCommand(wrap(newTransmitRunCmd(g)), wrap(newTransmitStatusCmd(g)), wrap(newTransmitPruneCmd(g)), dlq)
	return c
}

func transmitStore(st strata.Store) (strata.TransmitStore, error) {
	ts, ok := st.(strata.TransmitStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, "transmit", "the store (%T) keeps no delivery records", st)
	}
	return ts, nil
}

// openTransmitDB opens the existing store of --db as a TransmitStore (a missing one holds no
// transmitter to report or retry: it is NotFound, not made). done closes it and, like
// closeStore, reports a failure to close in *err unless *err holds an error already.
func openTransmitDB(ctx context.Context, g *globals) (ts strata.TransmitStore, done func(*error), err error) {
	st, _, err := g.openExisting(ctx)
	if err != nil {
		return nil, nil, err
	}
	if ts, err = transmitStore(st); err != nil {
		closeStore(st, &err)
		return nil, nil, err
	}
	return ts, func(err *error) { closeStore(st, err) }, nil
}

func newTransmitRunCmd(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:     "run --transmitters FILE",
		Short:   "Run the transmitters of a file until Ctrl-C",
		Example: `  strata transmit run --db postgres://... --transmitters transmitters.json`,
		Args:    argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if file == "" {
				return invalidf("transmit run", "--transmitters FILE is required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			m, err := newTransmitManager(ctx, g, st, file, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
			if err != nil {
				return err
			}
			return m.Run(ctx)
		},
	}
	c.Flags().StringVar(&file, "transmitters", "", "transmitters file (JSON, see docs/DELIVERY.md)")
	return c
}

// transmitLine is one line of `transmit status`.
type transmitLine struct {
	Name       string `json:"name"`
	Checkpoint string `json:"checkpoint"`
	Pending    int64  `json:"pending"`
	Sent       int64  `json:"sent"`
	Failed     int64  `json:"failed"`
	Dead       int64  `json:"dead"`
	UpdatedAt  string `json:"updatedAt"`
	// Owner is the process holding the lease ("" when released or never claimed); its lease
	// lasts until LeaseUntil, and LeaseExpired says it has passed (the holder stalled or died:
	// a standby takes over).
	Owner        string `json:"owner,omitempty"`
	Epoch        int64  `json:"epoch"`
	LeaseUntil   string `json:"leaseUntil,omitempty"`
	LeaseExpired bool   `json:"leaseExpired,omitempty"`
}

func newTransmitStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show each transmitter's checkpoint and delivery counts as JSON lines",
		Long: `Show every transmitter that has recorded deliveries or claimed its lease, one JSON object per
line: its checkpoint in the log, its records by status (pending: requeued, sent, failed: being
retried, dead: in the dead-letter queue), when it last committed, and its lease: the owner (the
process delivering for it), the epoch (one more on every claim), until when the lease lasts and
whether it has expired (the owner stalled or died; a standby takes over).`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			ts, done, err := openTransmitDB(ctx, g)
			if err != nil {
				return err
			}
			defer done(&err)
			sts, err := ts.TransmitterStates(ctx)
			if err != nil {
				return err
			}
			w := newLineWriter(cmd.OutOrStdout())
			now := time.Now()
			for _, s := range sts {
				l := transmitLine{Name: s.Name, Checkpoint: s.Checkpoint.String(), Pending: s.Pending, Sent: s.Sent,
					Failed: s.Failed, Dead: s.Dead, UpdatedAt: timeString(s.UpdatedAt), Owner: s.Owner, Epoch: s.Epoch}
				if s.Owner != "" {
					l.LeaseUntil = timeString(s.LeaseUntil)
					l.LeaseExpired = !s.LeaseUntil.After(now)
				}
				if err := w.write(l); err != nil {
					return err
				}
			}
			return w.flush()
		},
	}
}

// pruneLine is one line of `transmit prune`: what was deleted (or, with --dry-run, would be).
type pruneLine struct {
	Transmitter string `json:"transmitter"`
	Sent        int64  `json:"sent"`
	Dead        int64  `json:"dead"`
	SentBefore  string `json:"sentBefore,omitempty"`
	DeadBefore  string `json:"deadBefore,omitempty"`
	DryRun      bool   `json:"dryRun,omitempty"`
}

func newTransmitPruneCmd(g *globals) *cobra.Command {
	var name, sentAge, deadAge string
	var dryRun bool
	c := &cobra.Command{
		Use:   "prune [--transmitter NAME] (--sent-older-than AGE | --dead-older-than AGE)... [--dry-run]",
		Short: "Delete old delivery records: sent ones, and dead letters when asked",
		Long: `Delete the delivery records of sent events older than --sent-older-than (by when they were
sent) and, with --dead-older-than, dead letters older than that (by their last attempt), of one
transmitter or of every transmitter in the store. A pruned dead letter can no longer be retried
(the event stays in the log). Failed records (being retried) and pending ones (requeued) are never
pruned. Ages are 7d, 36h or any Go duration. Prints one JSON line per transmitter with the counts
deleted, or with --dry-run the counts a run would delete. Running transmitters may prune on their
own schedule ("prune" in the transmitters file, docs/DELIVERY.md).`,
		Example: `  strata transmit prune --sent-older-than 7d
  strata transmit prune --transmitter revocations-to-nats --sent-older-than 7d --dead-older-than 90d --dry-run`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "transmit prune"
			if sentAge == "" && deadAge == "" {
				return invalidf(op, "give --sent-older-than AGE, --dead-older-than AGE or both")
			}
			if name != "" {
				if err := strata.ValidateTransmitterName(op, name); err != nil {
					return err
				}
			}
			now := time.Now()
			p := strata.DeliveryPrune{DryRun: dryRun}
			for _, f := range []struct {
				flag, age string
				to        *time.Time
			}{{"--sent-older-than", sentAge, &p.SentBefore}, {"--dead-older-than", deadAge, &p.DeadBefore}} {
				if f.age == "" {
					continue
				}
				d, err := query.ParseAge(f.age)
				if err != nil {
					return invalidf(op, "%s: %w", f.flag, err)
				}
				*f.to = strata.Timestamp(now.Add(-d))
			}
			ctx := cmd.Context()
			ts, done, err := openTransmitDB(ctx, g)
			if err != nil {
				return err
			}
			defer done(&err)
			sts, err := ts.TransmitterStates(ctx)
			if err != nil {
				return err
			}
			var names []string
			for _, s := range sts {
				if name == "" || s.Name == name {
					names = append(names, s.Name)
				}
			}
			if name != "" && len(names) == 0 {
				return strata.Errorf(strata.NotFound, op, "the store has no transmitter %q", name)
			}
			w := newLineWriter(cmd.OutOrStdout())
			for _, n := range names {
				p.Transmitter = n
				got, err := ts.PruneDeliveryRecords(ctx, p)
				if err != nil {
					return err
				}
				if err := w.write(pruneLine{Transmitter: n, Sent: got.Sent, Dead: got.Dead, SentBefore: timeString(p.SentBefore),
					DeadBefore: timeString(p.DeadBefore), DryRun: dryRun}); err != nil {
					return err
				}
			}
			return w.flush()
		},
	}
	c.Flags().StringVar(&name, "transmitter", "", "prune this transmitter only (default: every transmitter in the store)")
	c.Flags().StringVar(&sentAge, "sent-older-than", "", "delete sent records older than this age (7d, 36h)")
	c.Flags().StringVar(&deadAge, "dead-older-than", "", "also delete dead letters whose last attempt is older than this age")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")
	return c
}

// deliveryLine is one line of `transmit dlq list`.
type deliveryLine struct {
	Transmitter    string    `json:"transmitter"`
	EventID        uuid.UUID `json:"eventId"`
	Position       string    `json:"position"`
	Stream         string    `json:"stream"`
	Version        int64     `json:"version"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"lastError,omitempty"`
	FirstAttemptAt string    `json:"firstAttemptAt"`
	LastAttemptAt  string    `json:"lastAttemptAt"`
}

func newDLQListCmd(g *globals) *cobra.Command {
	var name, status, after string
	var limit int
	c := &cobra.Command{
		Use:     "list --transmitter NAME",
		Short:   "List a transmitter's dead letters (or records of another status) as JSON lines",
		Example: `  strata transmit dlq list --transmitter revocations-to-nats`,
		Args:    argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "dlq list"
			if name == "" {
				return invalidf(op, "--transmitter NAME is required")
			}
			if limit < 0 {
				return invalidf(op, "--limit must be 0 (all) or more")
			}
			from, err := strata.ParsePosition(after)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ts, done, err := openTransmitDB(ctx, g)
			if err != nil {
				return err
			}
			defer done(&err)
			w := newLineWriter(cmd.OutOrStdout())
			left := limit
			for {
				page := strata.DefaultDeliveryLimit
				if limit > 0 {
					page = min(page, left)
				}
				ds, err := ts.Deliveries(ctx, strata.DeliveryQuery{Transmitter: name, Status: strata.DeliveryStatus(status), After: from, Limit: page})
				if err != nil {
					return err
				}
				for _, d := range ds {
					if err := w.write(deliveryLine{Transmitter: name, EventID: d.EventID, Position: d.Position.String(), Stream: d.Stream,
						Version: d.Version, Type: d.Type, Status: string(d.Status), Attempts: d.Attempts, LastError: d.LastError,
						FirstAttemptAt: timeString(d.FirstAttemptAt), LastAttemptAt: timeString(d.LastAttemptAt)}); err != nil {
						return err
					}
				}
				left -= len(ds)
				if len(ds) < page || (limit > 0 && left <= 0) {
					return w.flush()
				}
				from = ds[len(ds)-1].Position
			}
		},
	}
	c.Flags().StringVar(&name, "transmitter", "", "the transmitter's name")
	c.Flags().StringVar(&status, "status", string(strata.DeliveryDead), "records of this status: dead, failed, pending or sent")
	c.Flags().StringVar(&after, "after", "", "list records after this log position (a cursor)")
	c.Flags().IntVar(&limit, "limit", 0, "list at most this many (0: all)")
	return c
}

func newDLQRetryCmd(g *globals) *cobra.Command {
	var name string
	var all bool
	c := &cobra.Command{
		Use:   "retry --transmitter NAME (EVENT_ID... | --all)",
		Short: "Put dead letters back for the running transmitter to re-send",
		Long: `Set dead letters back to pending: the running transmitter re-reads those events from the store and
sends them again (within a few seconds), with a fresh retry budget. Prints how many were requeued.`,
		Example: `  strata transmit dlq retry --transmitter revocations-to-nats --all`,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "dlq retry"
			if name == "" {
				return invalidf(op, "--transmitter NAME is required")
			}
			if all == (len(args) > 0) {
				return invalidf(op, "give event IDs or --all, not both and not neither")
			}
			var ids []uuid.UUID
			for _, a := range args {
				id, err := uuid.Parse(a)
				if err != nil {
					return invalidf(op, "%q is not an event ID", a)
				}
				ids = append(ids, id)
			}
			ctx := cmd.Context()
			ts, done, err := openTransmitDB(ctx, g)
			if err != nil {
				return err
			}
			defer done(&err)
			var n int64
			if all {
				after := strata.Start
				for {
					ds, err := ts.Deliveries(ctx, strata.DeliveryQuery{Transmitter: name, Status: strata.DeliveryDead, After: after, Limit: strata.DefaultDeliveryLimit})
					if err != nil {
						return err
					}
					if len(ds) == 0 {
						break
					}
					page := make([]uuid.UUID, len(ds))
					for i, d := range ds {
						page[i] = d.EventID
					}
					k, err := ts.RequeueDeliveries(ctx, name, page)
					if err != nil {
						return err
					}
					n += k
					after = ds[len(ds)-1].Position
				}
			} else {
				for start := 0; start < len(ids); start += strata.MaxDeliveriesPerCommit {
					k, err := ts.RequeueDeliveries(ctx, name, ids[start:min(start+strata.MaxDeliveriesPerCommit, len(ids))])
					if err != nil {
						return err
					}
					n += k
				}
			}
			w := newLineWriter(cmd.OutOrStdout())
			if err := w.write(map[string]any{"transmitter": name, "requeued": n}); err != nil {
				return err
			}
			return w.flush()
		},
	}
	c.Flags().StringVar(&name, "transmitter", "", "the transmitter's name")
	c.Flags().BoolVar(&all, "all", false, "requeue every dead letter of the transmitter")
	return c
}
