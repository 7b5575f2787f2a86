package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/eventsig"
	"github.com/strata-events/strata/ledger"
)

type verifyFlags struct {
	bundle    string
	consist   string
	old       string
	key       string
	witnesses []string
	quorum    int
	quiet     bool
	eventKeys []string
}

func newVerifyCmd(g *globals) *cobra.Command {
	var fl verifyFlags
	c := &cobra.Command{
		Use:   "verify (--bundle FILE --key LOG.pub | --consistency FILE --old OLD --key LOG.pub | [--db DSN] [--key LOG.pub])",
		Short: "Verify a proof bundle offline, or audit the whole ledger of a database",
		Long: `With --bundle, check a proof bundle offline against the log's public key (and witness keys):
the checkpoint's signatures and the inclusion of the event's leaf. No database is opened.

With --consistency, check a consistency bundle (strata proof --consistency-from) offline: that its
checkpoint extends the older one you trust in --old (a checkpoint note or a proof bundle), both
signed by the log's key. No database is opened.

Without --bundle, audit the database: recompute every leaf from the stored events, check every
stored hash, every checkpoint's root and (with --key) signatures, and the consistency of
consecutive checkpoints. Each problem is printed on its own line with its stream, version and leaf
index, and the command exits with status 1. Progress goes to stderr.`,
		Example: `  strata verify --bundle revocation.tlog-proof --key ca-log.pub
  strata verify --consistency 2024-to-now.tlog-consistency --old revocation.tlog-proof --key ca-log.pub
  strata verify --db postgres://... --key ca-log.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (fl.bundle != "" || fl.consist != "") && len(fl.eventKeys) > 0 {
				// Only the audit reads the events; an offline OK would not have checked them.
				return invalidf("verify", "--event-key works with the audit of a database only, not with --bundle or --consistency")
			}
			switch {
			case fl.bundle != "" && fl.consist != "":
				// One would be checked and the OK would seem to vouch for both.
				return invalidf("verify", "--bundle and --consistency are two checks: run verify once for each")
			case fl.old != "" && fl.consist == "":
				return invalidf("verify", "--old goes with --consistency: it is the older checkpoint a consistency bundle extends")
			}
			if fl.key == "" && (len(fl.witnesses) > 0 || cmd.Flags().Changed("quorum")) {
				// Cosignatures are checked with the log's signature; an OK without --key would
				// not have looked at them.
				return invalidf("verify", "--witness and --quorum need --key: cosignatures are checked with the log's signature")
			}
			var policy *ledger.Policy
			if fl.key != "" {
				vkey, err := readKey(fl.key)
				if err != nil {
					return err
				}
				var wks []string
				for _, w := range fl.witnesses {
					k, err := readKey(w)
					if err != nil {
						return err
					}
					wks = append(wks, k)
				}
				q := fl.quorum
				if q < 0 {
					q = len(wks)
				}
				p, err := ledger.NewPolicy(vkey, wks, q)
				if err != nil {
					return err
				}
				policy = &p
			}
			if fl.consist != "" {
				if policy == nil || fl.old == "" {
					return invalidf("verify", "--consistency needs --old (the older checkpoint you trust) and --key (the log's public key)")
				}
				return verifyConsistency(cmd, fl.consist, fl.old, *policy)
			}
			if fl.bundle != "" {
				if policy == nil {
					return invalidf("verify", "--bundle needs --key: the log's public key")
				}
				return verifyBundle(cmd, fl.bundle, *policy)
			}
			eventKeys, err := parseEventKeys(fl.eventKeys)
			if err != nil {
				return err
			}
			return audit(cmd, g, policy, fl.quiet, eventKeys)
		},
	}
	f := c.Flags()
	f.StringVar(&fl.bundle, "bundle", "", "proof bundle file to verify offline")
	f.StringVar(&fl.consist, "consistency", "", "consistency bundle file to verify offline")
	f.StringVar(&fl.old, "old", "", "with --consistency: the older checkpoint (note or proof bundle file)")
	f.StringVar(&fl.key, "key", "", "the log's public key (file or key text)")
	f.StringSliceVar(&fl.witnesses, "witness", nil, "a witness's public key (file or text); repeatable")
	f.IntVar(&fl.quorum, "quorum", -1, "witness cosignatures required (default: all --witness keys)")
	f.BoolVar(&fl.quiet, "quiet", false, "no progress on stderr")
	f.StringArrayVar(&fl.eventKeys, "event-key", nil, "audit: require every event to be signed by one of these keys, KEY-ID=PUBLIC-KEY.pem (Ed25519 or P-256); repeatable")
	return c
}

func verifyBundle(cmd *cobra.Command, path string, p ledger.Policy) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), ledger.MaxBundleLen+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return invalidf("verify", "read bundle: %v", err)
	}
	b, err := ledger.ParseBundle(data)
	if err != nil {
		return err
	}
	v, err := b.Verify(p)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "OK: event %s (%s v%d, %s, recorded %s) is leaf %d of the log %s, checkpoint size %d, root %x\n",
		v.Leaf.ID, v.Leaf.Stream, v.Leaf.Version, v.Leaf.Type, v.Leaf.RecordedAt.Format(time.RFC3339Nano), v.Index, v.Checkpoint.Origin, v.Checkpoint.Size, v.Checkpoint.Root)
	if len(v.Witnesses) > 0 {
		fmt.Fprintf(out, "cosigned by %v\n", v.Witnesses)
	}
	fmt.Fprintf(out, "data: %s\n", v.Leaf.Data)
	return nil
}

func verifyConsistency(cmd *cobra.Command, path, oldPath string, p ledger.Policy) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return invalidf("verify", "read consistency bundle: %v", err)
	}
	b, err := ledger.ParseConsistencyBundle(data)
	if err != nil {
		return err
	}
	oldData, err := os.ReadFile(oldPath)
	if err != nil {
		return invalidf("verify", "read the older checkpoint: %v", err)
	}
	old, err := ledger.CheckpointNote(oldData)
	if err != nil {
		return err
	}
	v, err := b.Verify(p, old)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "OK: the log %s at %d leaves (root %x) extends its checkpoint at %d leaves (root %x)\n",
		v.New.Origin, v.New.Size, v.New.Root, v.Old.Size, v.Old.Root)
	if len(v.Witnesses) > 0 {
		fmt.Fprintf(out, "cosigned by %v\n", v.Witnesses)
	}
	return nil
}

func audit(cmd *cobra.Command, g *globals, policy *ledger.Policy, quiet bool, eventKeys []eventsig.Verifier) (err error) {
	ctx := cmd.Context()
	// An audit of a file that is not there would create an empty store and find it sound.
	if d, err := parseDSN(g.dsn()); err == nil && d.backend == backendSQLite {
		if _, err := os.Stat(d.target); errors.Is(err, fs.ErrNotExist) {
			return strata.Errorf(strata.NotFound, "verify", "no database at %s: an audit reads an existing store (check --db)", d.target)
		}
	}
	st, _, err := g.openExisting(ctx) // nor does a schema or database that holds no store
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	errw := cmd.ErrOrStderr()
	start := time.Now()
	last := start
	opts := ledger.AuditOptions{Policy: policy, ProgressEvery: 1 << 14}
	if !quiet {
		opts.Progress = func(p ledger.AuditProgress) {
			if now := time.Now(); now.Sub(last) >= time.Second {
				last = now
				fmt.Fprintf(errw, "verify: %d of %d leaves, %d events read (%.0f/s)\n", p.Leaves, p.Sealed, p.Events, float64(p.Events)/now.Sub(start).Seconds())
			}
		}
	}
	rep, err := ledger.Audit(ctx, st, opts)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "PROBLEM %s\n", p)
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(out, "PROBLEM ... and %d more\n", rep.Dropped)
	}
	sig := "signatures checked"
	if !rep.Signed {
		sig = "signatures NOT checked (no --key)"
	}
	fmt.Fprintf(out, "%d leaves, %d events (%d not sealed yet), %d checkpoints, %s, in %s\n",
		rep.Leaves, rep.Events, rep.Unsealed, rep.Checkpoints, sig, time.Since(start).Round(time.Millisecond))
	if rep.Tombstoned > 0 {
		fmt.Fprintf(out, "%d events hold tombstones: retention removed their payloads, their sealed leaf hashes match\n", rep.Tombstoned)
		if rep.TombstonedByUnsealedRuns > 0 {
			fmt.Fprintf(out, "%d of them by retention runs recorded after the sealed part of the log: the audit after their sealing vouches for them\n", rep.TombstonedByUnsealedRuns)
		}
	}
	problems := len(rep.Problems) + rep.Dropped
	if rep.Signed && rep.Checkpoints == 0 {
		// --key asks whether the log's key vouches for this log: with no checkpoint it vouches
		// for nothing (a new or emptied log, or the wrong database).
		fmt.Fprintln(out, "PROBLEM no checkpoint to check with --key: the log's key vouches for none of this store (strata seal signs one)")
		problems++
	}
	if len(eventKeys) > 0 {
		checked, bad, err := verifyEventSignatures(ctx, st, eventKeys, out)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d event signatures checked, %d missing or bad\n", checked, bad)
		problems += bad
	}
	if problems > 0 {
		return fmt.Errorf("verify: the ledger does not verify: %d problems", problems)
	}
	fmt.Fprintln(out, "OK")
	return nil
}
