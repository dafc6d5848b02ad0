// Package pgtest gives each test its own fresh PostgreSQL database on the
// throwaway server named by OUTGUARD_TEST_PG_DSN (.ci/postgres.sh starts
// one). Without it a test skips, visibly, unless OUTGUARD_REQUIRE_EXTERNAL
// is set, when it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/pgdb"
)

// EnvDSN is the variable naming a superuser DSN to the test server.
const EnvDSN = "OUTGUARD_TEST_PG_DSN"

// ServerDSN returns the test server's DSN, or skips t (fails it when
// OUTGUARD_REQUIRE_EXTERNAL is set) when there is none.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
			t.Fatalf("%s is not set and OUTGUARD_REQUIRE_EXTERNAL is: start a server with `export $(bash .ci/postgres.sh)`", EnvDSN)
		}
		t.Skipf("SKIP: PostgreSQL test: %s is not set (start a throwaway server with `export $(bash .ci/postgres.sh)`)", EnvDSN)
	}
	return dsn
}

// NewDatabase creates an empty database for t, dropped at cleanup, and
// returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	cfg, admin := connectServer(t)
	defer admin.Close(context.Background())
	var b [8]byte
	rand.Read(b[:])
	name := "outguard_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("pgtest: dropping %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping %s: %v", name, err)
		}
	})
	return withDatabase(cfg, name)
}

// connectServer connects to the test server's administrative database
// (skipping or failing t as ServerDSN does when there is none) and
// returns its configuration and the connection, for the caller to close.
func connectServer(t testing.TB) (*pgx.ConnConfig, *pgx.Conn) {
	t.Helper()
	cfg, err := pgx.ParseConfig(ServerDSN(t))
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: connecting to the test server: %v", err)
	}
	return cfg, admin
}

// withDatabase returns a keyword/value DSN for the server of cfg and
// database name.
func withDatabase(cfg *pgx.ConnConfig, name string) string {
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", q(cfg.Host), cfg.Port, q(cfg.User), q(name))
	if cfg.Password != "" {
		dsn += " password=" + q(cfg.Password)
	}
	return dsn
}

// Pool opens a pool on a fresh database for t, migrated, closed at
// cleanup.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := NewDatabase(t)
	return OpenPool(t, dsn, true)
}

// OpenPool opens a pool on dsn, closed at cleanup; migrate applies the
// migrations first.
func OpenPool(t testing.TB, dsn string, migrate bool) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: dsn, MaxConns: 8, StatementTimeout: 30 * time.Second, NodeName: "test"})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	if migrate {
		if _, err := pgdb.Migrate(ctx, pool, "test"); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	return pool
}

// KeptDatabase returns the DSN of the database name on the test server,
// created if missing and never dropped: for benchmarks that load a large
// data set once and reuse it in later runs.
func KeptDatabase(t testing.TB, name string) string {
	t.Helper()
	cfg, admin := connectServer(t)
	defer admin.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
			t.Fatalf("pgtest: creating %s: %v", name, err)
		}
	}
	return withDatabase(cfg, name)
}
