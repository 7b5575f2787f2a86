package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata/ledger"
)

func newProofCmd(g *globals) *cobra.Command {
	var out, from string
	c := &cobra.Command{
		Use:   "proof (EVENT_ID | --consistency-from OLD) [--out FILE]",
		Short: "Write a self-contained proof that an event is in the latest signed checkpoint",
		Long: `Write a proof bundle (C2SP tlog-proof: the event's leaf, its inclusion proof and the signed
checkpoint) that strata verify --bundle checks offline, with no database.

With --consistency-from OLD, write instead a consistency bundle: the latest signed checkpoint and
the proof that it extends the older checkpoint in OLD (a signed checkpoint note, or a proof bundle
kept from earlier, whose checkpoint is used), checked offline by strata verify --consistency.`,
		Example: `  strata proof 0190e3c2-... --out revocation.tlog-proof
  strata proof --consistency-from revocation.tlog-proof --out 2024-to-now.tlog-consistency`,
		Args: func(cmd *cobra.Command, args []string) error {
			if from != "" {
				return argsExactly(0, "no event ID with --consistency-from")(cmd, args)
			}
			return argsExactly(1, "an event ID")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if from != "" {
				return writeConsistency(cmd, g, from, out)
			}
			id, err := uuid.Parse(args[0])
			if err != nil {
				return invalidf("proof", "%q is not an event ID (a UUID)", args[0])
			}
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx) // a proof is read from a store that exists
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
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: event %s at leaf %d of %d\n", out, id, b.Index, noteSize(b.Checkpoint))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	c.Flags().StringVar(&from, "consistency-from", "", "prove that the latest checkpoint extends the checkpoint in this file")
	return c
}

// writeConsistency writes the consistency bundle from the checkpoint in the file from to the
// latest checkpoint.
func writeConsistency(cmd *cobra.Command, g *globals, from, out string) (err error) {
	data, err := os.ReadFile(from)
	if err != nil {
		return invalidf("proof", "read the older checkpoint: %v", err)
	}
	note, err := ledger.CheckpointNote(data)
	if err != nil {
		return err
	}
	old, err := noteCheckpoint(note)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	st, _, err := g.openExisting(ctx) // a proof is read from a store that exists
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	p, err := ledger.NewProver(st)
	if err != nil {
		return err
	}
	b, err := p.ConsistencyBundle(ctx, old.Size)
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
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: consistency from %d to %d leaves\n", out, old.Size, noteSize(b.Checkpoint))
	return nil
}

// noteCheckpoint parses the checkpoint that a signed note carries, without checking its
// signatures (the text before the blank line that starts the signatures).
func noteCheckpoint(note []byte) (ledger.Checkpoint, error) {
	text, _, _ := bytes.Cut(note, []byte("\n\n"))
	return ledger.ParseCheckpoint(append(text[:len(text):len(text)], '\n'))
}

// noteSize is the tree size of the checkpoint in note, 0 if it does not parse.
func noteSize(note []byte) uint64 {
	c, _ := noteCheckpoint(note)
	return c.Size
}
