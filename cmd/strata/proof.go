package main

import (
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata/ledger"
)

func newProofCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "proof EVENT_ID [--out FILE]",
		Short: "Write a self-contained proof that an event is in the latest signed checkpoint",
		Long: `Write a proof bundle (C2SP tlog-proof: the event's leaf, its inclusion proof and the signed
checkpoint) that strata verify --bundle checks offline, with no database.`,
		Example: `  strata proof 0190e3c2-... --out revocation.tlog-proof`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			id, err := uuid.Parse(args[0])
			if err != nil {
				return invalidf("proof", "%q is not an event ID (a UUID)", args[0])
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			p, err := ledger.NewProver(st)
			if err != nil {
				return err
			}
			b, err := p.Bundle(ctx, id)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b.Marshal())
				return err
			}
			if err := os.WriteFile(out, b.Marshal(), 0o644); err != nil {
				return fmt.Errorf("proof: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: event %s at leaf %d of %d\n", out, id, b.Index, mustSize(b))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	return c
}

func mustSize(b *ledger.Bundle) uint64 {
	text := b.Checkpoint
	for i := 0; i+1 < len(text); i++ {
		if text[i] == '\n' && text[i+1] == '\n' {
			if c, err := ledger.ParseCheckpoint(text[:i+1]); err == nil {
				return c.Size
			}
		}
	}
	return 0
}
