package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

// nextLine ends a page of `strata query` when another page follows.
type nextLine struct {
	Next string `json:"next"`
}

// countLine is the output of `strata query --count`.
type countLine struct {
	Count int64 `json:"count"`
}

func newQueryCmd(g *globals) *cobra.Command {
	var q strata.EventQuery
	var from, to string
	var count, all, createIndexes bool
	c := &cobra.Command{
		Use:   "query --tenant T [filters]",
		Short: "Search one tenant's events by type, who, why, stream and time, a page at a time",
		Long: `Print the tenant's events that match every filter given, oldest first (by recording time, then
position), one JSON object per line. A page holds --limit events (default 100, at most 1000); when
another page follows, a last line {"next":"CURSOR"} says so: pass it as --cursor for the next page.
Cursors stay valid while events are appended. --all prints every page. --count prints
{"count":N} of every match instead (it takes no --cursor, --limit or --all).

The tenant is required: no query reads across tenants. --correlation finds one request's events
(every stream it touched), --session what one operator did in one sitting.

--create-indexes builds the search indexes, and takes no other flag (once per store; each index
costs appends of tenant events a little, so they are not made by default; see docs/AUDITOR.md).`,
		Example: `  strata query --tenant acme-ca --type CertificateRevoked --from 2023-03-14 --to 2023-03-15
  strata query --tenant acme-ca --correlation req-1 --all
  strata query --tenant acme-ca --principal operator:mkim --count
  strata query --create-indexes`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "query"
			if err := queryFlagsAgree(cmd, count, createIndexes); err != nil {
				return err
			}
			ctx := cmd.Context()
			now := time.Now()
			if from != "" {
				if q.RecordedFrom, err = query.ParseTime(from, now); err != nil {
					return err
				}
			}
			if to != "" {
				if q.RecordedTo, err = query.ParseTime(to, now); err != nil {
					return err
				}
			}
			if !createIndexes {
				if _, _, _, err := strata.PrepareEventQuery(op, q); err != nil {
					return err
				}
			}
			open := g.openExisting
			if createIndexes {
				open = g.open // it sets up a store: a new one too
			}
			st, _, err := open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			reveal, err := g.revealer(ctx, st)
			if err != nil {
				return err
			}
			w := newLineWriter(cmd.OutOrStdout())
			if createIndexes {
				ix, ok := st.(strata.QueryIndexer)
				if !ok {
					return nil // this backend needs none (in memory)
				}
				return ix.CreateQueryIndexes(ctx)
			}
			if count {
				n, err := query.Count(ctx, st, q)
				if err != nil {
					return err
				}
				if err := w.write(countLine{n}); err != nil {
					return err
				}
				return w.flush()
			}
			for {
				p, err := query.Page(ctx, st, q)
				if err != nil {
					w.flush()
					return err
				}
				for _, e := range p.Events {
					if reveal != nil {
						if err := reveal(ctx, &e); err != nil {
							w.flush()
							return err
						}
					}
					if err := w.write(newEventLine(e)); err != nil {
						return err
					}
				}
				if p.Next == "" {
					break
				}
				if !all {
					if err := w.write(nextLine{p.Next}); err != nil {
						return err
					}
					break
				}
				q.Cursor = p.Next
			}
			return w.flush()
		},
	}
	f := c.Flags()
	f.StringVar(&q.Tenant, "tenant", "", "the tenant searched (required)")
	f.StringArrayVar(&q.Types, "type", nil, "keep events of this type (repeatable)")
	f.StringVar(&q.Subsystem, "subsystem", "", "keep events of this subsystem")
	f.StringVar(&q.Category, "category", "", "keep events of this category")
	f.StringVar(&q.Principal, "principal", "", "keep events by this principal")
	f.StringVar(&q.Session, "session", "", "keep events of this session")
	f.StringVar(&q.Correlation, "correlation", "", "keep events of this correlation")
	f.StringVar(&q.Causation, "causation", "", "keep events caused by this")
	f.StringVar(&q.StreamPrefix, "prefix", "", "keep events whose stream starts with this")
	f.StringVar(&from, "from", "", "keep events recorded at or after this time")
	f.StringVar(&to, "to", "", "keep events recorded before this time")
	f.IntVar(&q.Limit, "limit", 0, "events per page (default 100, at most 1000)")
	f.StringVar(&q.Cursor, "cursor", "", "continue after the page that printed this cursor")
	f.BoolVar(&all, "all", false, "print every page")
	f.BoolVar(&count, "count", false, "print how many events match")
	f.BoolVar(&createIndexes, "create-indexes", false, "build the search indexes and exit")
	return c
}

// queryFlagsAgree refuses the flags that --count and --create-indexes would ignore: the store
// counts every match, whatever the cursor and page size, and building the indexes searches
// nothing. Printing an answer to another question than the one asked is worse than an error.
func queryFlagsAgree(cmd *cobra.Command, count, createIndexes bool) error {
	changed := func(names ...string) string {
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				return "--" + n
			}
		}
		return ""
	}
	if createIndexes {
		if f := changed("tenant", "type", "subsystem", "category", "principal", "session", "correlation", "causation",
			"prefix", "from", "to", "limit", "cursor", "all", "count"); f != "" {
			return invalidf("query", "--create-indexes builds the search indexes and searches nothing: leave out %s", f)
		}
	}
	if count {
		if f := changed("cursor", "limit", "all"); f != "" {
			return invalidf("query", "--count counts every matching event, from the first and not by page: leave out %s", f)
		}
	}
	return nil
}
