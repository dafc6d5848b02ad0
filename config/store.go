package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
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
}

func (c *Store) setDefaults() {
	setDur(&c.LogRetention, DefaultStoreLogRetention)
	// A short log retention shortens the default quarantine retention
	// with it, rather than making the default invalid.
	setDur(&c.QuarantineRetention, min(DefaultStoreQuarantineRetention, c.LogRetention.D()))
	setDur(&c.SweepInterval, DefaultStoreSweepInterval)
	setInt(&c.QueueSize, DefaultStoreQueueSize)
	setInt(&c.MaxBatch, DefaultStoreMaxBatch)
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
	if len(msgs) == 0 {
		return nil
	}
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = fmt.Errorf("%w: %s", ErrInvalid, m)
	}
	return errors.Join(errs...)
}

// resolvePaths makes relative file paths in this section absolute.
func (c *Store) resolvePaths(abs func(*string)) { abs(&c.Path) }

// StorePath returns the database file: store.path, or outguard.db in
// data_dir.
func (c *Config) StorePath() string {
	if c.Store.Path != "" {
		return c.Store.Path
	}
	return filepath.Join(c.DataDir, DefaultStoreFile)
}
