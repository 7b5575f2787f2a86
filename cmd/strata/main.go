// Command strata is the command-line tool of the strata event store: it appends and reads events,
// lists streams, runs the certificate demo and benchmarks a backend against raw SQL.
//
// It is wiring only: every store behaviour lives in the root package and the backends.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	_ "time/tzdata" // --tz names zones on machines without a zoneinfo database

	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
)

// Exit codes. Scripts can tell a lost optimistic-concurrency race from a typo.
const (
	exitOK          = 0
	exitError       = 1 // anything else: internal errors, I/O
	exitInvalid     = 2 // bad flags, arguments or input; nothing was written
	exitConflict    = 3 // an expected-version check failed or an event ID was reused
	exitNotFound    = 4
	exitUnavailable = 5 // the database is unreachable, locked or closed; retrying may help
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// env is the environment lookup a command uses (os.Getenv, or a map in tests).
type env func(string) string

// run executes one command line and returns the exit code. Errors go to stderr as one line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv env) (code int) {
	defer func() {
		// Bad input must never end in a stack trace; a panic here is a bug, reported in one line.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "strata: internal error (please report this bug): %v\n", r)
			code = exitError
		}
	}()
	root, started := newRoot(getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if !*started && strata.ErrorCode(err) == strata.Internal {
		// cobra rejected the command line before any command ran: unknown command or flag,
		// wrong number of arguments.
		err = strata.Errorf(strata.Invalid, "", "%s (see strata --help)", err.Error())
	}
	fmt.Fprintln(stderr, oneLine(err))
	return exitCode(err)
}

// exitCode maps an error's strata code to the process exit code.
func exitCode(err error) int {
	switch strata.ErrorCode(err) {
	case "":
		return exitOK
	case strata.Invalid:
		return exitInvalid
	case strata.Conflict, strata.Duplicate:
		return exitConflict
	case strata.NotFound:
		return exitNotFound
	case strata.Unavailable:
		return exitUnavailable
	}
	return exitError
}

// oneLine formats err as a single line starting with "strata: ".
func oneLine(err error) string {
	msg := err.Error()
	if !strings.HasPrefix(msg, "strata: ") && !strings.HasPrefix(msg, "strata ") {
		msg = "strata: " + msg
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(msg)
}

// invalidf returns an Invalid error for a bad command line.
func invalidf(op, format string, args ...any) error {
	return strata.Errorf(strata.Invalid, op, format, args...)
}

// newRoot builds the command tree. started is set once a command's RunE begins, which tells
// cobra's own argument and flag errors (usage errors) apart from errors of the command.
func newRoot(getenv env) (*cobra.Command, *bool) {
	started := new(bool)
	g := &globals{getenv: getenv}
	root := &cobra.Command{
		Use:   "strata",
		Short: "A verifiable event store",
		Long: `strata appends events to streams and reads them back per stream or as one gap-free global log.

The database is chosen with --db or STRATA_DB (default ` + defaultDSN + `):
  sqlite:PATH            an SQLite file (also sqlite://PATH); the first command that writes creates
                         it, commands that only read fail with exit 4 when it does not exist
  postgres://...         PostgreSQL (also postgresql://); ?schema=NAME picks the schema (default strata),
                         ?group_commit=N the concurrent writers of small appends (default ` +
			strconv.Itoa(postgres.DefaultGroupWriters) + `; 0 = off)
  mysql://user:pass@host:port/db
  mem:                   in memory, gone when the command ends

Exit codes: 0 ok, 1 error, 2 invalid input, 3 conflict, 4 not found, 5 unavailable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.PersistentFlags().StringVar(&g.db, "db", "", "database DSN (env STRATA_DB; default "+defaultDSN+")")
	root.PersistentFlags().StringVar(&g.kekFile, "kek-file", "", "key-encryption key file for personal data (env STRATA_KEK_FILE, or the key itself in STRATA_KEK)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return invalidf("", "%s: %s (see %s --help)", c.Name(), err.Error(), c.CommandPath())
	})
	wrap := func(c *cobra.Command) *cobra.Command {
		fn := c.RunE
		if fn == nil { // a group of subcommands: requireSubcommands gives it its RunE
			return c
		}
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*started = true
			return fn(cmd, args)
		}
		return c
	}
	keys := newKeysCmd()
	keys.AddCommand(newKEKCmds(g, wrap)...)
	root.AddCommand(
		wrap(newAppendCmd(g)),
		wrap(newReadCmd(g)),
		wrap(newStreamsCmd(g)),
		wrap(newDemoCmd(g)),
		wrap(newSealCmd(g)),
		wrap(newProofCmd(g)),
		wrap(newVerifyCmd(g)),
		wrap(newCosignCmd(g)),
		wrap(keys),
		withSubcommands(newBenchCmd(g, wrap), wrap(newBenchHTTPCmd(g))),
		newSchemaCmd(g, wrap),
		wrap(newEraseCmd(g)),
		newProjectionsCmd(g, wrap),
		wrap(newServeCmd(g)),
		newAPIKeyCmd(g, wrap),
		wrap(newStateCmd(g)),
		wrap(newHistoryCmd(g)),
		wrap(newQueryCmd(g)),
		newRetentionCmd(g, wrap),
		newTransmitCmd(g, wrap),
	)
	requireSubcommands(root)
	return root, started
}

// requireSubcommands makes every group of subcommands below root that has no RunE of its own
// refuse to run without one of them. Cobra would print the group's help and exit 0, for
// "strata retention rnu" too, which a script then takes for a retention run.
func requireSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		requireSubcommands(c)
		if !c.HasSubCommands() || c.RunE != nil || c.Run != nil {
			continue
		}
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			op := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			if len(args) > 0 {
				return invalidf(op, "unknown subcommand %q: want one of %s (see %s --help)", args[0], strings.Join(names, ", "), cmd.CommandPath())
			}
			return invalidf(op, "want a subcommand: one of %s (see %s --help)", strings.Join(names, ", "), cmd.CommandPath())
		}
	}
}

// withSubcommands adds subs to c and returns c.
func withSubcommands(c *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	c.AddCommand(subs...)
	return c
}

// globals holds what every command shares.
type globals struct {
	getenv  env
	db      string // --db
	kekFile string // --kek-file
}

// dsn returns the database DSN: --db, else STRATA_DB, else the default.
func (g *globals) dsn() string {
	if g.db != "" {
		return g.db
	}
	if v := g.getenv("STRATA_DB"); v != "" {
		return v
	}
	return defaultDSN
}

// open opens the store named by the DSN, creating an SQLite file that does not exist yet. The
// caller closes it.
func (g *globals) open(ctx context.Context) (strata.Store, dsn, error) {
	return g.openStore(ctx, false)
}

// openExisting is open for the commands that only read: an SQLite file that does not exist is
// a NotFound error, not a new empty database. Otherwise a typo in --db, or the default
// strata.db in another directory, read nothing, succeeded and left an empty file behind.
func (g *globals) openExisting(ctx context.Context) (strata.Store, dsn, error) {
	return g.openStore(ctx, true)
}

// openStore opens the store named by the DSN; with mustExist, an SQLite file must exist.
func (g *globals) openStore(ctx context.Context, mustExist bool) (strata.Store, dsn, error) {
	d, err := parseDSN(g.dsn())
	if err != nil {
		return nil, dsn{}, err
	}
	if mustExist {
		if err := d.mustExist(ctx); err != nil {
			return nil, d, err
		}
	}
	st, err := d.open(ctx)
	if err != nil {
		return nil, d, err
	}
	return st, d, nil
}

// closeStore closes st and keeps the first error.
func closeStore(st strata.Store, err *error) {
	if cerr := st.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// argsExactly is cobra.ExactArgs with a message that names the expected arguments.
func argsExactly(n int, want string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return invalidf(cmd.Name(), "want %s, got %d argument(s) (see %s --help)", want, len(args), cmd.CommandPath())
		}
		return nil
	}
}
