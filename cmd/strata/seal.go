package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/strata-events/strata"
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
			var signer note.Signer
			if key != "" {
				skey, err := readKey(key)
				if err != nil {
					return err
				}
				if signer, err = ledger.NewSigner(skey); err != nil {
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
			if signer != nil {
				// The sealer refuses another key only when it signs, after sealing.
				if err := checkSigningKey(ctx, st, "seal", signer); err != nil {
					return err
				}
			}
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

// checkSigningKey returns an Invalid error when the log's latest checkpoint is not signed by
// signer. The sealer finds that out only when it signs, after it has sealed; commands call this
// first, so that a wrong key is refused before anything is written.
func checkSigningKey(ctx context.Context, st strata.Store, op string, signer note.Signer) error {
	ls, ok := st.(strata.LedgerStore)
	if !ok {
		return nil // the sealer reports the missing ledger
	}
	latest, err := ls.LatestLedgerCheckpoint(ctx)
	if errors.Is(err, strata.ErrNotFound) {
		return nil // the first checkpoint: any key may sign it
	}
	if err != nil {
		return err
	}
	_, err = note.Open(latest.Note, note.VerifierList())
	var unk *note.UnverifiedNoteError
	if errors.As(err, &unk) {
		for _, sig := range unk.Note.UnverifiedSigs {
			if sig.Name == signer.Name() && sig.Hash == signer.KeyHash() {
				return nil
			}
		}
	}
	return strata.Errorf(strata.Invalid, op, "the log's checkpoints are signed by another key than %s (the latest, at %d leaves, is not signed by it): a log keeps one signing key; use that one", signer.Name(), latest.Size)
}
