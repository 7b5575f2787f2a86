package main

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/mysql"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/sqlite"
)

// defaultDSN is the embedded store in the current directory.
const defaultDSN = "sqlite:strata.db"

// Backends.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
	backendMySQL    = "mysql"
	backendMem      = "mem"
)

// dsn is a parsed --db value.
type dsn struct {
	backend string
	// target is what the backend's Open takes: the file path for SQLite, the connection URL
	// (without strata's own parameters) for PostgreSQL and MySQL.
	target string
	// schema is the PostgreSQL schema (?schema=NAME); empty means the backend's default.
	schema string
	// groupCommit is the PostgreSQL store's group-commit writers (?group_commit=N, 0 for off)
	// when groupSet; otherwise the store uses postgres.DefaultGroupWriters.
	groupCommit int
	groupSet    bool
}

// parseDSN reads sqlite:PATH, sqlite://PATH, postgres://..., postgresql://..., mysql://... and mem:.
func parseDSN(s string) (dsn, error) {
	const op = "open"
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" {
		return dsn{}, invalidf(op, "database %q has no scheme: want sqlite:PATH, postgres://..., mysql://... or mem: (did you mean sqlite:%s?)", s, s)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return dsn{}, invalidf(op, "database %q: sqlite needs a file path, e.g. sqlite:strata.db", s)
		}
		return dsn{backend: backendSQLite, target: path}, nil
	case "postgres", "postgresql":
		u, err := url.Parse(s)
		if err != nil {
			return dsn{}, invalidf(op, "database URL is not valid: %s", redactErr(s, err))
		}
		d := dsn{backend: backendPostgres}
		q := u.Query()
		if q.Has("schema") {
			d.schema = q.Get("schema")
			if d.schema == "" {
				return dsn{}, invalidf(op, "database %s: empty schema parameter", u.Redacted())
			}
			q.Del("schema")
		}
		if q.Has("group_commit") {
			n, err := strconv.Atoi(q.Get("group_commit"))
			if err != nil || n < 0 || n > maxGroupCommit {
				return dsn{}, invalidf(op, "database %s: group_commit=%q: want the number of writers, 0 (off) to %d", u.Redacted(), q.Get("group_commit"), maxGroupCommit)
			}
			d.groupCommit, d.groupSet = n, true
			q.Del("group_commit")
		}
		if d.schema != "" || d.groupSet { // strata's own parameters are not pgx's
			u.RawQuery = q.Encode()
		}
		d.target = u.String()
		return d, nil
	case "mysql":
		u, err := url.Parse(s)
		if err != nil {
			return dsn{}, invalidf(op, "database URL is not valid: %s", redactErr(s, err))
		}
		if u.Host == "" {
			return dsn{}, invalidf(op, "database %s: want mysql://user:pass@host:port/db", u.Redacted())
		}
		// The driver would send them to the server as session variables.
		for _, p := range []string{"schema", "group_commit"} {
			if u.Query().Has(p) {
				return dsn{}, invalidf(op, "database %s: %s is a parameter of PostgreSQL DSNs; a MySQL store lives in the database the path names", u.Redacted(), p)
			}
		}
		return dsn{backend: backendMySQL, target: s}, nil
	case "mem", "memory", "inmem":
		if strings.Trim(rest, "/") != "" {
			return dsn{}, invalidf(op, "database %q: the in-memory store takes no path (use mem:)", s)
		}
		return dsn{backend: backendMem}, nil
	}
	return dsn{}, invalidf(op, "unknown database scheme %q: want sqlite:PATH, postgres://..., mysql://... or mem:", scheme)
}

// maxGroupCommit bounds ?group_commit: more writers than that is no grouping at all.
const maxGroupCommit = 1024

// postgresOptions returns the options of the PostgreSQL store the DSN names.
func (d dsn) postgresOptions() []postgres.Option {
	var opts []postgres.Option
	if d.schema != "" {
		opts = append(opts, postgres.WithSchema(d.schema))
	}
	if d.groupSet {
		opts = append(opts, postgres.WithGroupCommit(d.groupCommit))
	}
	return opts
}

// groupWriters returns the group-commit writers of a PostgreSQL DSN.
func (d dsn) groupWriters() int {
	if !d.groupSet {
		return postgres.DefaultGroupWriters
	}
	return d.groupCommit
}

// redactErr returns the message of the url.Parse error of dsn without the URL, which may hold
// a password. When dsn may hold a user name or password (it has an '@'), the reason is left out
// too: url.Parse quotes what it took for the port or a bad escape, which is then a piece of the
// password ("invalid port \":hunter2\"" for u:hunter2#x@host).
func redactErr(dsn string, err error) string {
	if strings.Contains(dsn, "@") {
		return "it does not parse (a user name or password that holds / # ? @ : or % must be percent-encoded, e.g. %2F for /)"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// String returns the DSN for messages, with any password replaced.
func (d dsn) String() string {
	switch d.backend {
	case backendSQLite:
		return "sqlite:" + d.target
	case backendMem:
		return "mem:"
	}
	u, err := url.Parse(d.target)
	if err != nil {
		return d.backend + "://..."
	}
	s := u.Redacted()
	if d.schema != "" {
		s += " (schema " + d.schema + ")"
	}
	if d.groupSet {
		s += " (group_commit " + strconv.Itoa(d.groupCommit) + ")"
	}
	return s
}

// flagValue returns the DSN as a --db value for messages: like String, but with strata's own
// parameters (schema, group_commit) kept in the URL so that it can be pasted back (after
// filling in any password).
func (d dsn) flagValue() string {
	if d.backend != backendPostgres || (d.schema == "" && !d.groupSet) {
		return d.String()
	}
	u, err := url.Parse(d.target)
	if err != nil {
		return d.String()
	}
	q := u.Query()
	if d.schema != "" {
		q.Set("schema", d.schema)
	}
	if d.groupSet {
		q.Set("group_commit", strconv.Itoa(d.groupCommit))
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// mustExist returns a NotFound error when the store d names has not been created yet: a missing
// SQLite file, a PostgreSQL schema or a MySQL database without strata's tables. Opening would
// create it, empty. Any other trouble (an unreachable server) is left to open, which reports it as a store does.
func (d dsn) mustExist(ctx context.Context) error {
	const op = "open"
	switch d.backend {
	case backendSQLite:
		if _, err := os.Stat(d.target); errors.Is(err, fs.ErrNotExist) {
			return strata.Errorf(strata.NotFound, op, "database %s does not exist: a command that only reads creates none (check --db or STRATA_DB)", d)
		}
	case backendPostgres:
		c, err := pgx.Connect(ctx, d.target)
		if err != nil {
			return nil
		}
		defer c.Close(context.Background())
		schema := d.schema
		if schema == "" {
			schema = postgres.DefaultSchema
		}
		var found bool
		if err := c.QueryRow(ctx, `SELECT to_regclass(quote_ident($1) || '.events') IS NOT NULL`, schema).Scan(&found); err != nil {
			return nil
		}
		if !found {
			return strata.Errorf(strata.NotFound, op, "database %s holds no strata store in schema %s: a command that only reads creates none (check --db or STRATA_DB)", d, schema)
		}
	case backendMySQL:
		u, err := url.Parse(d.target)
		if err != nil {
			return nil
		}
		cfg, err := mysqlConfig(u)
		if err != nil || cfg.DBName == "" {
			return nil
		}
		db, err := openMySQL(cfg, 1)
		if err != nil {
			return nil
		}
		defer db.Close()
		var found bool
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'events'`).Scan(&found); err != nil {
			return nil
		}
		if !found {
			return strata.Errorf(strata.NotFound, op, "database %s holds no strata store: a command that only reads creates none (check --db or STRATA_DB)", d)
		}
	}
	return nil
}

// open opens the store.
func (d dsn) open(ctx context.Context) (strata.Store, error) {
	switch d.backend {
	case backendSQLite:
		return sqlite.Open(ctx, d.target)
	case backendPostgres:
		return postgres.Open(ctx, d.target, d.postgresOptions()...)
	case backendMySQL:
		return mysql.Open(ctx, d.target)
	case backendMem:
		return inmem.New(), nil
	}
	return nil, strata.Errorf(strata.Internal, "open", "unknown backend %q", d.backend)
}
