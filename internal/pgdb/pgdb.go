// Package pgdb opens the PostgreSQL database a fleet of outguard nodes
// shares (store.backend postgres, docs/config-store.md) and applies the
// schema migrations embedded in the binary.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configure Open. They mirror store.postgres.
type Options struct {
	// DSN is a libpq connection string or URL.
	DSN string
	// MaxConns bounds the pool; 0 is pgxpool's default.
	MaxConns int
	// StatementTimeout is set as statement_timeout on every connection; 0
	// leaves the server's.
	StatementTimeout time.Duration
	// NodeName is set as application_name ("outguard/NODE") so that
	// pg_stat_activity tells the nodes apart.
	NodeName string
}

// ErrInvalid wraps errors in Options.
var ErrInvalid = errors.New("pgdb: invalid options")

// Open creates the connection pool and checks that the server answers
// within ctx. It does not migrate: call Migrate.
func Open(ctx context.Context, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// The parser's message can quote the DSN with its password.
		return nil, fmt.Errorf("%w: the DSN is not a valid PostgreSQL connection string or URL", ErrInvalid)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(o.MaxConns)
	}
	rp := cfg.ConnConfig.RuntimeParams
	if o.StatementTimeout > 0 {
		rp["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	if o.NodeName != "" {
		rp["application_name"] = "outguard/" + o.NodeName
	}
	// Times are stored as timestamptz and compared in UTC.
	rp["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdb: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgdb: connecting to %s: %w", where(cfg), err)
	}
	return pool, nil
}

// where names the server and database of cfg, without credentials.
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

// TouchNode records that node runs version now: at start, and then
// periodically, so that operators see the fleet in outguard_nodes.
func TouchNode(ctx context.Context, pool *pgxpool.Pool, node, version string, started time.Time) error {
	_, err := pool.Exec(ctx, `
		INSERT INTO outguard_nodes (node_name, version, started_at, last_seen)
		VALUES ($1, $2, $3, now())
		ON CONFLICT (node_name) DO UPDATE
		SET version = excluded.version, started_at = excluded.started_at, last_seen = now()`,
		node, version, started)
	if err != nil {
		return fmt.Errorf("pgdb: recording node %s: %w", node, err)
	}
	return nil
}

// RoundTimeout is how long one round of writes on pool (a few statements
// and their commit) may take before the caller gives up on it: three
// times the pool's statement_timeout (5s when the pool sets none), at
// least a second. The server cancels a slow statement by itself; this
// client-side deadline is for a connection that stopped answering (a
// black-holed network, a frozen primary), which TCP alone notices only
// after many minutes (docs/config-store.md, "When PostgreSQL is
// unreachable").
func RoundTimeout(pool *pgxpool.Pool) time.Duration {
	st := 5 * time.Second
	if v, ok := pool.Config().ConnConfig.RuntimeParams["statement_timeout"]; ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			st = time.Duration(ms) * time.Millisecond
		}
	}
	return max(3*st, time.Second)
}
