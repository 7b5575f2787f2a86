package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/shred"
)

// kek returns the key-encryption key the command line names: --kek-file, else STRATA_KEK_FILE,
// else STRATA_KEK (64 hex digits); nil when none is set.
func (g *globals) kek() (*shred.LocalKEK, error) {
	path := g.kekFile
	if path == "" {
		path = g.getenv("STRATA_KEK_FILE")
	}
	if path != "" {
		return shred.KEKFromFile(path)
	}
	if text := g.getenv("STRATA_KEK"); text != "" {
		return shred.ParseKEK(text)
	}
	return nil, nil
}

// protector returns the crypto-shredding pipeline on st with the configured KEK (or none: then
// it can erase and declare, and refuses to write or read personal data).
func (g *globals) protector(ctx context.Context, st strata.Store) (*shred.Protector, bool, error) {
	k, err := g.kek()
	if err != nil {
		return nil, false, err
	}
	var kp shred.KeyProvider
	if k != nil {
		kp = k
	}
	p, err := shred.New(ctx, st, kp)
	return p, k != nil, err
}

func newSchemaCmd(g *globals, wrap func(*cobra.Command) *cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   "schema",
		Short: "Declare which fields of an event type hold personal data",
		Long: `Declare, per event type, the JSON paths of the fields that hold personal data and the path of
the field that names the data subject. The declaration is stored in the database: every writer
(this CLI, the HTTP API, programs in any language through them) then encrypts those fields under
the subject's key, and strata erase makes them unreadable.

A path is made of field names separated by dots; "[]" stands for every element of an array and
"*" for every member of an object (the values of a map):

  subjectDN              a field of the payload
  holder.email           a field of a nested object
  approvers[].email      the email of every element of the array approvers
  contacts.*.email       the email of every member of the object contacts

The subject path names one field, outside arrays, maps and the sensitive paths: one event has one
data subject. A malformed path is refused and nothing is stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return invalidf("schema", "want a subcommand: strata schema set or strata schema list")
		},
	}
	var sensitive []string
	var subject string
	set := &cobra.Command{
		Use:   "set TYPE --sensitive PATH[,PATH...] --subject PATH",
		Short: "Declare the sensitive fields and the subject field of an event type",
		Example: `  strata schema set CertificateIssued --sensitive subjectDN,subjectEmail --subject subjectId
  strata schema set RevocationApproved --sensitive 'approvers[].email,contacts.*.email' --subject subjectId`,
		Args: argsExactly(1, "TYPE"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if len(sensitive) == 0 {
				return invalidf("schema set", "name the sensitive fields with --sensitive")
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			p, _, err := g.protector(ctx, st)
			if err != nil {
				return err
			}
			s := strata.EventSchema{Type: args[0], Sensitive: sensitive, Subject: subject}
			if err := p.Declare(ctx, s); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: sensitive %s, subject %s\n", s.Type, strings.Join(s.Sensitive, ", "), orNone(s.Subject))
			return err
		},
	}
	set.Flags().StringSliceVar(&sensitive, "sensitive", nil, "JSON paths of personal-data fields: dot-separated names, [] for every element of an array, * for every member of an object (approvers[].email, contacts.*.email); comma-separated or repeated")
	set.Flags().StringVar(&subject, "subject", "", "JSON path of the one field naming the data subject, outside arrays and maps (else the metadata key subject)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the declared event schemas",
		Args:  argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			ss, ok := st.(strata.SchemaStore)
			if !ok {
				return invalidf("schema list", "this store keeps no schemas")
			}
			list, err := ss.EventSchemas(ctx)
			if err != nil {
				return err
			}
			for _, s := range list {
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: sensitive %s, subject %s\n", s.Type, strings.Join(s.Sensitive, ", "), orNone(s.Subject)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.AddCommand(wrap(set), wrap(list))
	return c
}

func orNone(s string) string {
	if s == "" {
		return "(metadata key " + shred.MetaSubject + ")"
	}
	return s
}

func newEraseCmd(g *globals) *cobra.Command {
	var meta []string
	var tenant string
	c := &cobra.Command{
		Use:   "erase SUBJECT",
		Short: "Erase a data subject: destroy its key, so its personal data reads as redacted",
		Long: `Erase a data subject (GDPR art. 17): delete the subject's data keys for good and record a
SubjectErased event (no personal data). Every encrypted field of the subject reads as "` + shred.Redacted + `"
(or null) from then on, in every event, everywhere; the events, their order and the ledger's proofs
are unchanged. Erasing twice changes nothing. There is no undo.

A subject ID is scoped by tenant: the same ID in two tenants names two data subjects, with a key
each. With --tenant, only that tenant's subject is erased (recorded in its erasure stream, as
that tenant's event); a subject the tenant has no personal data of is an error and nothing is
written. Without --tenant, the subject is erased in every tenant (recorded in erasure-SUBJECT).`,
		Example: `  strata erase subject-4711 --tenant acme-ca --meta principal=dpo:mkim --meta ticket=GDPR-2023-17
  strata erase subject-4711 --meta principal=dpo:mkim   # in every tenant`,
		Args: argsExactly(1, "SUBJECT"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			m, err := parseMeta("erase", meta)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			p, _, err := g.protector(ctx, st)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("tenant") {
				tomb, err := p.Erase(ctx, args[0], m)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "erased %s in every tenant at %s; recorded in %s\n", tomb.Subject, timeString(tomb.ErasedAt), shred.ErasureStream(tomb.Subject))
				return err
			}
			tomb, err := p.EraseTenant(ctx, tenant, args[0], m)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "erased %s of tenant %q at %s; recorded in %s\n", tomb.Subject, tenant, timeString(tomb.ErasedAt), shred.TenantErasureStream(tenant, tomb.Subject))
			return err
		},
	}
	c.Flags().StringArrayVar(&meta, "meta", nil, "metadata key=value of the erasure event, e.g. principal=dpo (repeatable)")
	c.Flags().StringVar(&tenant, "tenant", "", "erase the subject of this tenant only (\"\" for events without a tenant); default: every tenant")
	return c
}

// newKEKCmds returns the key-encryption-key subcommands of strata keys.
func newKEKCmds(g *globals, wrap func(*cobra.Command) *cobra.Command) []*cobra.Command {
	generate := &cobra.Command{
		Use:   "generate-kek",
		Short: "Print a new key-encryption key (64 hex digits) for STRATA_KEK or a key file",
		Args:  argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := shred.GenerateKEK()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k)
			return err
		},
	}
	var to string
	rotate := &cobra.Command{
		Use:   "rotate-kek --to-file NEW",
		Short: "Re-wrap every data key with a new key-encryption key",
		Long: `Re-wrap every subject's data key with the key-encryption key in --to-file; the current one comes
from --kek-file, STRATA_KEK_FILE or STRATA_KEK. Data keys are unchanged, so nothing is re-encrypted
and readers never stop: give every process both keys (new current, old older) before, rotate, then
drop the old key. Safe to run again; erasures that happen meanwhile win.`,
		Args: argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if to == "" {
				return invalidf("keys rotate-kek", "name the new key-encryption key with --to-file")
			}
			next, err := shred.KEKFromFile(to)
			if err != nil {
				return err
			}
			cur, err := g.kek()
			if err != nil {
				return err
			}
			if cur == nil {
				return invalidf("keys rotate-kek", "no current key-encryption key: set --kek-file, STRATA_KEK_FILE or STRATA_KEK")
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			p, err := shred.New(ctx, st, shred.NewKeyring(next, cur))
			if err != nil {
				return err
			}
			n, err := p.RotateKEK(ctx, next)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "re-wrapped %d data keys with %s\n", n, next.KEK())
			return err
		},
	}
	rotate.Flags().StringVar(&to, "to-file", "", "file with the new key-encryption key")
	return []*cobra.Command{wrap(generate), wrap(rotate)}
}
