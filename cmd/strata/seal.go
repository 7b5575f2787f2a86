package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata/ledger"
)

func newSealCmd(g *globals) *cobra.Command {
	var key string
	var batch int
	c := &cobra.Command{
		Use:   "seal [--key LOG.key]",
		Short: "Seal the log into the ledger's Merkle tree once, and sign a checkpoint",
		Long: `Append every committed event that is not sealed yet to the ledger's Merkle tree, in log order,
and with --key sign a checkpoint of the tree. It resumes where the last run stopped, so running it
again, or after a crash, neither seals an event twice nor skips one.`,
		Example: `  strata seal --db postgres://... --key ca-log.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			opts := []ledger.Option{ledger.WithBatch(batch)}
			if key != "" {
				skey, err := readKey(key)
				if err != nil {
					return err
				}
				signer, err := ledger.NewSigner(skey)
				if err != nil {
					return err
				}
				opts = append(opts, ledger.WithSigner(signer))
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			s, err := ledger.NewSealer(st, opts...)
			if err != nil {
				return err
			}
			n, head, err := s.SealOnce(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "sealed %d events; the tree has %d leaves (last position %s)\n", n, head.Size, head.Last)
			if key != "" {
				c, err := s.Checkpoint(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "checkpoint:\n%s", c.Note)
			}
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "signer key file (from strata keys generate) to sign a checkpoint")
	c.Flags().IntVar(&batch, "batch", ledger.DefaultBatch, "leaves per transaction")
	return c
}
