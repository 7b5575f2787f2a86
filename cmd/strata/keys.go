package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata/ledger"
)

func newKeysCmd() *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "Make the keys that sign and verify ledger checkpoints"}
	var origin, out string
	var witness bool
	gen := &cobra.Command{
		Use:   "generate --origin NAME [--out PREFIX] [--witness]",
		Short: "Generate an Ed25519 key pair: PREFIX.key (secret) and PREFIX.pub (publish it)",
		Long: `Generate a key pair in the signed-note formats (golang.org/x/mod/sumdb/note). The log's key is
named after the log's origin, e.g. ca.example/strata: every checkpoint names it on its first line.
With --witness it makes a witness's cosigning key (C2SP tlog-cosignature) instead.`,
		Example: `  strata keys generate --origin ca.example/strata --out ca-log
  strata keys generate --origin witness.example --out witness --witness`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if origin == "" {
				return invalidf("keys generate", "--origin is required (e.g. ca.example/strata)")
			}
			// PREFIX.key must name a file of its own: "", "dir/" or "." would make hidden
			// files .key and .pub (or ..key) where nobody looks for a log's secret key.
			if base := filepath.Base(out); out == "" || os.IsPathSeparator(out[len(out)-1]) || base == "." || base == ".." {
				return invalidf("keys generate", "--out %q names no file: give a path prefix such as ca-log or keys/ca-log", out)
			}
			gen := ledger.GenerateKey
			if witness {
				gen = ledger.GenerateWitnessKey
			}
			skey, vkey, err := gen(rand.Reader, origin)
			if err != nil {
				return err
			}
			// A key pair in place is never replaced: its secret key would be lost for good, and
			// the public key that the log's checkpoints verify against with it.
			for _, p := range []string{out + ".key", out + ".pub"} {
				if _, err := os.Lstat(p); err == nil {
					return invalidf("keys generate", "%s exists: move it away or choose another --out", p)
				}
			}
			if err := writeNewFile(out+".key", []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := writeNewFile(out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s.key (keep it secret) and %s.pub:\n%s\n", out, out, vkey)
			return nil
		},
	}
	gen.Flags().StringVar(&origin, "origin", "", "the log's origin (the key's name)")
	gen.Flags().StringVar(&out, "out", "strata-log", "path prefix of the two files")
	gen.Flags().BoolVar(&witness, "witness", false, "make a witness cosigning key")
	c.AddCommand(gen)
	return c
}

// writeNewFile writes data to path, which must not exist yet.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return invalidf("keys generate", "%s exists: move it away or choose another --out", path)
	}
	if err != nil {
		return fmt.Errorf("keys generate: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keys generate: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys generate: %w", err)
	}
	return nil
}

// readKey returns a key given as a file name, or literally (a key always contains '+').
func readKey(arg string) (string, error) {
	b, err := os.ReadFile(arg)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if strings.Count(arg, "+") >= 2 {
		return arg, nil
	}
	return "", invalidf("key", "cannot read key file %q: %v", arg, err)
}
