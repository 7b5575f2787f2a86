package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata/query"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var entity, tenant, field, model, from, to string
	var prefixes []string
	c := &cobra.Command{
		Use:   "history (STREAM | --entity ID --tenant T)",
		Short: "Print each event of a stream or an entity with who, when, why and the JSON diff it made",
		Long: `Print one JSON object per event: id, stream, version, position, type, recordedAt and
occurredAt (when), principal and session (who), reason, correlation and causation (why), and diff,
the changes of the stream's state as JSON Pointer paths with old and new values.

  strata history STREAM [--model certificate] [--from T] [--to T]
  strata history --entity ID --tenant T [--field serial] [--prefix P]...

An entity is what events of several streams are about: the events of the tenant whose payload's
top-level --field (default serial) is ID, or whose metadata key "entity" is ID. --prefix bounds the
search to streams with these prefixes; without it every event of the tenant is scanned.`,
		Example: `  strata history certificate-7F3A --model certificate
  strata history --entity 7F3A --tenant acme-ca --prefix certificate- --prefix revocation-`,
		Args: func(cmd *cobra.Command, args []string) error {
			if entity != "" && len(args) == 0 || entity == "" && len(args) == 1 {
				return nil
			}
			return invalidf("history", "want STREAM or --entity ID (see strata history --help)")
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "history"
			// The flags of one form do nothing in the other: refuse them rather than print
			// something other than what was asked for.
			other, form := []string{"tenant", "field", "prefix"}, "--entity"
			if entity != "" {
				other, form = []string{"from", "to", "model"}, "STREAM"
			}
			for _, name := range other {
				if cmd.Flags().Changed(name) {
					return invalidf(op, "--%s works with %s only", name, form)
				}
			}
			now := time.Now()
			var opts query.HistoryOptions
			if from != "" {
				if opts.From, err = query.ParseTime(from, now); err != nil {
					return err
				}
			}
			if to != "" {
				if opts.To, err = query.ParseTime(to, now); err != nil {
					return err
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
			w := newLineWriter(cmd.OutOrStdout())
			defer w.flush()
			if entity != "" {
				if tenant == "" {
					return invalidf(op, "--entity needs --tenant")
				}
				for e, err := range query.EntityHistory(ctx, st, query.Entity{Tenant: tenant, ID: entity, Field: field, StreamPrefixes: prefixes, Reveal: reveal}) {
					if err != nil {
						return err
					}
					if err := w.write(e); err != nil {
						return err
					}
				}
				return w.flush()
			}
			m, err := models(model, "")
			if err != nil {
				return err
			}
			if err := m.history(ctx, st, args[0], opts, reveal, func(e query.Entry) error { return w.write(e) }); err != nil {
				return err
			}
			return w.flush()
		},
	}
	f := c.Flags()
	f.StringVar(&entity, "entity", "", "the entity's ID, across streams")
	f.StringVar(&tenant, "tenant", "", "the tenant whose events are searched (with --entity)")
	f.StringVar(&field, "field", "serial", "the payload field that names the entity")
	f.StringArrayVar(&prefixes, "prefix", nil, "search streams with this prefix (repeatable)")
	f.StringVar(&model, "model", "json", "how to fold a stream: json or certificate")
	f.StringVar(&from, "from", "", "print events recorded from this time")
	f.StringVar(&to, "to", "", "print events recorded before this time")
	return c
}
