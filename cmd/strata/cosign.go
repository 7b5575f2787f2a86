package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

func newCosignCmd(g *globals) *cobra.Command {
	var key, logKey string
	c := &cobra.Command{
		Use:   "cosign --key WITNESS.key --log-key LOG.pub",
		Short: "Add a witness cosignature to the latest checkpoint (C2SP tlog-cosignature)",
		Long: `Check the latest checkpoint's log signature, then add a witness cosignature to it. A real
witness runs elsewhere, and before cosigning checks a consistency proof from the last checkpoint it
cosigned; this command only lets an operator stand in for one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			skey, err := readKey(key)
			if err != nil {
				return err
			}
			vkey, err := readKey(logKey)
			if err != nil {
				return err
			}
			w, err := ledger.NewWitnessSigner(skey, nil)
			if err != nil {
				return err
			}
			p, err := ledger.NewPolicy(vkey, nil, 0)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			ls, ok := st.(strata.LedgerStore)
			if !ok {
				return invalidf("cosign", "the store keeps no ledger")
			}
			cp, err := ls.LatestLedgerCheckpoint(ctx)
			if err != nil {
				return err
			}
			msg, err := ledger.Cosign(cp.Note, p.Log, w)
			if err != nil {
				return err
			}
			cp.Note = msg
			if err := ls.SaveLedgerCheckpoint(ctx, cp); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s", msg)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the witness's signer key")
	c.Flags().StringVar(&logKey, "log-key", "", "the log's public key")
	return c
}
