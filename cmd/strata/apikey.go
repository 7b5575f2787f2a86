package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
)

// newAPIKeyCmd is `strata apikey create|list|revoke`.
func newAPIKeyCmd(g *globals, wrap func(*cobra.Command) *cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list and revoke API keys of strata serve",
		Long: `API keys authenticate requests to strata serve (Authorization: Bearer KEY). Each key has a role
(reader, writer, auditor, admin) and one tenant: it sees and writes that tenant's events only.
A key is printed once, when it is created; the store keeps only its SHA-256 hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return invalidf("apikey", "want a subcommand: strata apikey create, list or revoke")
		},
	}
	var role, tenant, name string
	create := &cobra.Command{
		Use:     "create --role ROLE --tenant TENANT [--name LABEL]",
		Short:   "Create an API key and print it once",
		Example: `  strata apikey create --role writer --tenant acme-ca --name "issuing service"`,
		Args:    argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			const op = "apikey create"
			r := strata.Role(role)
			if !r.Valid() {
				return invalidf(op, "--role %q: want reader, writer, auditor or admin", role)
			}
			if tenant == "" {
				return invalidf(op, "name the key's tenant with --tenant")
			}
			key, rec, err := httpapi.NewKey(r, tenant, name)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			ks, ok := st.(strata.APIKeyStore)
			if !ok {
				return invalidf(op, "this store keeps no API keys")
			}
			stored, err := ks.CreateAPIKey(ctx, rec)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(cmd.ErrOrStderr(), "created API key %s (role %s, tenant %s); it is shown only now:\n", stored.ID, stored.Role, stored.Tenant)
			_, err = fmt.Fprintln(out, key)
			return err
		},
	}
	create.Flags().StringVar(&role, "role", "", "reader, writer, auditor or admin")
	create.Flags().StringVar(&tenant, "tenant", "", "the one tenant the key sees and writes")
	create.Flags().StringVar(&name, "name", "", "a label for people")

	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (IDs, roles, tenants; never the keys)",
		Args:  argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, _, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			ks, ok := st.(strata.APIKeyStore)
			if !ok {
				return invalidf("apikey list", "this store keeps no API keys")
			}
			w := newLineWriter(cmd.OutOrStdout())
			after := ""
			for {
				page, err := ks.ListAPIKeys(ctx, after, 0)
				if err != nil {
					return err
				}
				for _, k := range page {
					if err := w.write(apiKeyLine{ID: k.ID, Role: string(k.Role), Tenant: k.Tenant, Name: k.Name, CreatedAt: timeString(k.CreatedAt), RevokedAt: timeString(k.RevokedAt)}); err != nil {
						return err
					}
				}
				if len(page) < strata.DefaultAPIKeyLimit {
					return w.flush()
				}
				after = page[len(page)-1].ID
			}
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key (strata serve stops accepting it within seconds)",
		Args:  argsExactly(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			st, _, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer closeStore(st, &err)
			ks, ok := st.(strata.APIKeyStore)
			if !ok {
				return invalidf("apikey revoke", "this store keeps no API keys")
			}
			id := args[0]
			if kid, ok := httpapi.ParseKey(id); ok {
				id = kid // the whole key was given
			}
			k, err := ks.RevokeAPIKey(ctx, id)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked %s at %s\n", k.ID, timeString(k.RevokedAt))
			return err
		},
	}
	c.AddCommand(wrap(create), wrap(list), wrap(revoke))
	return c
}

// apiKeyLine is one line of `strata apikey list`.
type apiKeyLine struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	Tenant    string `json:"tenant"`
	Name      string `json:"name,omitempty"`
	CreatedAt string `json:"createdAt"`
	RevokedAt string `json:"revokedAt,omitempty"`
}
