package main

import (
	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
)

func newStreamsCmd(g *globals) *cobra.Command {
	var (
		prefix, after string
		limit         int
	)
	c := &cobra.Command{
		Use:   "streams",
		Short: "List streams as JSON lines",
		Long: `List streams in name order, one JSON object per line: name, version, firstRecordedAt and
lastRecordedAt. --after NAME continues a listing after the last name printed.`,
		Example: `  strata streams --prefix certificate-`,
		Args:    argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if limit < 0 {
				return invalidf("streams", "--limit must be 0 or more")
			}
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			w := newLineWriter(cmd.OutOrStdout())
			for s, err := range st.Streams(ctx, strata.ListStreamsOptions{Prefix: prefix, After: after, Limit: limit}) {
				if err != nil {
					w.flush()
					return err
				}
				line := streamLine{Name: s.Stream, Version: s.Version, FirstRecordedAt: timeString(s.FirstRecordedAt), LastRecordedAt: timeString(s.LastRecordedAt)}
				if err := w.write(line); err != nil {
					return err
				}
			}
			return w.flush()
		},
	}
	f := c.Flags()
	f.StringVar(&prefix, "prefix", "", "keep streams whose names start with this")
	f.StringVar(&after, "after", "", "start after this stream name")
	f.IntVar(&limit, "limit", 0, "print at most N streams (0: no limit)")
	return c
}
