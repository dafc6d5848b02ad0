package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Defaults and bounds of the store section. They match the quarantine
// package's defaults, which config does not import.
const (
	DefaultStoreFile                = "outguard.db"
	DefaultStoreLogRetention        = 30 * 24 * time.Hour
	DefaultStoreQuarantineRetention = 14 * 24 * time.Hour
	DefaultStoreSweepInterval       = time.Hour
	DefaultStoreQueueSize           = 4096
	DefaultStoreMaxBatch            = 2048
	MinStoreRetention               = time.Hour
	MaxStoreRetention               = 10 * 365 * 24 * time.Hour
	MinStoreSweepInterval           = time.Minute
	MaxStoreSweepInterval           = 24 * time.Hour
	MaxStoreQueueSize               = 1 << 20
	MaxStoreMaxBatch                = 100000

	StoreBackendBbolt    = "bbolt"
	StoreBackendPostgres = "postgres"

	DefaultPostgresMaxConns         = 16
	MaxPostgresMaxConns             = 1000
	DefaultPostgresStatementTimeout = 5 * time.Second
	MinPostgresStatementTimeout     = 100 * time.Millisecond
	MaxPostgresStatementTimeout     = 10 * time.Minute
	DefaultPostgresSpoolMaxRecords  = 1000000
	MaxPostgresSpoolMaxRecords      = 100000000
	// MaxNodeNameLength bounds node_name: it is stored in records and
	// used as a metric label.
	MaxNodeNameLength = 63
)

// Store configures the embedded database: the message log, the quarantine
// and the report rollups (and the other components' buckets, which share
// the file). See docs/config-store.md.
type Store struct {
	// Path is the bbolt database file. Empty: outguard.db in data_dir.
	// Relative paths are relative to the configuration file. Only one
	// process can open it: the CLI talks to the daemon instead.
	Path string `yaml:"path"`
	// LogRetention is how long message log records, and the report
	// rollups, are kept. Default 30d.
	LogRetention Duration `yaml:"log_retention"`
	// QuarantineRetention is how long the content of quarantined messages
	// is kept; the log record stays, marked expired. At most
	// log_retention. Default 14d.
	QuarantineRetention Duration `yaml:"quarantine_retention"`
	// SweepInterval is how often retention runs. Default 1h.
	SweepInterval Duration `yaml:"sweep_interval"`
	// QueueSize bounds the log records waiting to be written; when it is
	// full, replies to clients wait (backpressure), nothing is dropped.
	// Default 4096.
	QueueSize int `yaml:"queue_size"`
	// MaxBatch bounds the writes committed together in one transaction
	// (one fsync). Default 2048.
	MaxBatch int `yaml:"max_batch"`
	// MinFreeSpace is the free space kept on the filesystem of the
	// database: below it, MAIL is answered 452 4.3.1. Default the smaller
	// of 2% and 256 MiB; "0" turns it off.
	MinFreeSpace FreeSpace `yaml:"min_free_space"`
	// Backend is where the shared records live: "bbolt" (default, the
	// file above) or "postgres" (a PostgreSQL database shared by a fleet
	// of nodes). See docs/config-store.md, "Several nodes".
	Backend string `yaml:"backend"`
	// Postgres configures the postgres backend.
	Postgres Postgres `yaml:"postgres"`
}

// Postgres configures the PostgreSQL backend (docs/config-store.md).
type Postgres struct {
	// DSN is a libpq connection string or URL. Exactly one of DSN and
	// DSNFile is set when the backend is postgres.
	DSN string `yaml:"dsn"`
	// DSNFile is a file holding the DSN (so that the password stays out
	// of the configuration). Relative to the configuration file.
	DSNFile string `yaml:"dsn_file"`
	// MaxConns bounds the connection pool. Default 16.
	MaxConns int `yaml:"max_conns"`
	// StatementTimeout bounds every statement on the server. Default 5s.
	StatementTimeout Duration `yaml:"statement_timeout"`
	// SpoolMaxRecords bounds the node's local spool, where the log
	// records of relayed mail wait while PostgreSQL is out of reach;
	// past it, mail is answered 451 4.3.0. Default 1,000,000.
	SpoolMaxRecords int `yaml:"spool_max_records"`
}

// ReadDSN returns the postgres DSN: store.postgres.dsn, or the content of
// store.postgres.dsn_file with surrounding white space removed.
func (c *Postgres) ReadDSN() (string, error) {
	if c.DSNFile == "" {
		return c.DSN, nil
	}
	b, err := os.ReadFile(c.DSNFile)
	if err != nil {
		return "", fmt.Errorf("store.postgres.dsn_file: %w", err)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", fmt.Errorf("store.postgres.dsn_file %s is empty: put the connection string in it", c.DSNFile)
	}
	return dsn, nil
}

func (c *Store) setDefaults() {
	setDur(&c.LogRetention, DefaultStoreLogRetention)
	// A short log retention shortens the default quarantine retention
	// with it, rather than making the default invalid.
	setDur(&c.QuarantineRetention, min(DefaultStoreQuarantineRetention, c.LogRetention.D()))
	setDur(&c.SweepInterval, DefaultStoreSweepInterval)
	setInt(&c.QueueSize, DefaultStoreQueueSize)
	setInt(&c.MaxBatch, DefaultStoreMaxBatch)
	if c.Backend == "" {
		c.Backend = StoreBackendBbolt
	}
	setInt(&c.Postgres.MaxConns, DefaultPostgresMaxConns)
	setDur(&c.Postgres.StatementTimeout, DefaultPostgresStatementTimeout)
	setInt(&c.Postgres.SpoolMaxRecords, DefaultPostgresSpoolMaxRecords)
}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *Store) validate(cfg *Config) error {
	var msgs []string
	bad := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	for _, d := range []struct {
		key string
		v   Duration
	}{{"store.log_retention", c.LogRetention}, {"store.quarantine_retention", c.QuarantineRetention}} {
		if d.v.D() < MinStoreRetention || d.v.D() > MaxStoreRetention {
			bad("%s %s: use a duration from 1h to 3650d, e.g. \"30d\"", d.key, d.v)
		}
	}
	if c.QuarantineRetention > c.LogRetention {
		bad("store.quarantine_retention %s exceeds store.log_retention %s: quarantined content goes with its log record; lower quarantine_retention or raise log_retention", c.QuarantineRetention, c.LogRetention)
	}
	if c.SweepInterval.D() < MinStoreSweepInterval || c.SweepInterval.D() > MaxStoreSweepInterval {
		bad("store.sweep_interval %s: use a duration from 1m to 24h", c.SweepInterval)
	}
	if c.QueueSize < 1 || c.QueueSize > MaxStoreQueueSize {
		bad("store.queue_size %d: use 1 to %d (records waiting to be written)", c.QueueSize, MaxStoreQueueSize)
	}
	if c.MaxBatch < 1 || c.MaxBatch > MaxStoreMaxBatch {
		bad("store.max_batch %d: use 1 to %d (writes per transaction)", c.MaxBatch, MaxStoreMaxBatch)
	}
	if c.Path != "" && (c.Path == "." || c.Path[len(c.Path)-1] == '/' || c.Path[len(c.Path)-1] == filepath.Separator) {
		bad("store.path %q is a directory; name the database file, e.g. \"/var/lib/outguard/outguard.db\"", c.Path)
	}
	msgs = append(msgs, c.validateBackend()...)
	if len(msgs) == 0 {
		return nil
	}
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = fmt.Errorf("%w: %s", ErrInvalid, m)
	}
	return errors.Join(errs...)
}

// validateBackend returns what is wrong with store.backend and
// store.postgres.
func (c *Store) validateBackend() []string {
	var msgs []string
	bad := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	p := &c.Postgres
	switch c.Backend {
	case StoreBackendBbolt:
		if p.DSN != "" || p.DSNFile != "" {
			bad("store.postgres.dsn is set but store.backend is %q: set store.backend: postgres to use it, or remove store.postgres", c.Backend)
		}
	case StoreBackendPostgres:
		switch {
		case p.DSN == "" && p.DSNFile == "":
			bad("store.backend postgres needs store.postgres.dsn or store.postgres.dsn_file, e.g. dsn: \"postgres://outguard@db.example.net/outguard\"")
		case p.DSN != "" && p.DSNFile != "":
			bad("store.postgres: set dsn or dsn_file, not both")
		case p.DSN != "":
			if _, err := pgconn.ParseConfig(p.DSN); err != nil {
				// pgconn's message can quote the DSN, password included:
				// say what kind of problem it is without it.
				bad("store.postgres.dsn is not a valid PostgreSQL connection string or URL (libpq syntax, e.g. \"host=db port=5432 user=outguard dbname=outguard\" or \"postgres://outguard@db/outguard\")")
			}
		}
	default:
		bad("store.backend %q: use bbolt (one node, the default) or postgres (a fleet sharing one database)", c.Backend)
	}
	if p.MaxConns < 1 || p.MaxConns > MaxPostgresMaxConns {
		bad("store.postgres.max_conns %d: use 1 to %d", p.MaxConns, MaxPostgresMaxConns)
	}
	if d := p.StatementTimeout.D(); d < MinPostgresStatementTimeout || d > MaxPostgresStatementTimeout {
		bad("store.postgres.statement_timeout %s: use a duration from 100ms to 10m, e.g. \"5s\"", p.StatementTimeout)
	}
	if p.SpoolMaxRecords < 1 || p.SpoolMaxRecords > MaxPostgresSpoolMaxRecords {
		bad("store.postgres.spool_max_records %d: use 1 to %d (log records kept on this node while PostgreSQL is out of reach; about 500 bytes of disk each)", p.SpoolMaxRecords, MaxPostgresSpoolMaxRecords)
	}
	return msgs
}

// resolvePaths makes relative file paths in this section absolute.
func (c *Store) resolvePaths(abs func(*string)) {
	abs(&c.Path)
	abs(&c.Postgres.DSNFile)
}

// StorePath returns the database file: store.path, or outguard.db in
// data_dir.
func (c *Config) StorePath() string {
	if c.Store.Path != "" {
		return c.Store.Path
	}
	return filepath.Join(c.DataDir, DefaultStoreFile)
}
