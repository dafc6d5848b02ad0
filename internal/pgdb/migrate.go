package pgdb

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles are the schema migrations, NNNN_name.sql, applied in
// order of NNNN. A released migration is never edited: add a new one.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock Migrate holds, so that
// nodes starting at once apply each migration once ("outguard" in ASCII).
const migrationLock int64 = 0x6f75746775617264

// Migration is one embedded schema migration.
type Migration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	sql     string
}

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	ents, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".sql")
		num, name, ok2 := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgdb: migration file %s: name it NNNN_what.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("pgdb: migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Applied is a migration recorded in the version table.
type Applied struct {
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	AppliedAt time.Time `json:"applied_at"`
	// Node is the node_name of the node that applied it.
	Node string `json:"node"`
}

// Result is what Migrate did.
type Result struct {
	// Applied are the migrations this call applied, in order.
	Applied []Migration `json:"applied"`
	// Version is the schema version after the call.
	Version int `json:"version"`
}

// Migrate applies the embedded migrations not yet recorded in
// outguard_schema_migrations, each in its own transaction with its record.
// It holds a session advisory lock meanwhile, so that nodes starting at
// once wait for each other and each migration is applied once. node is
// recorded as who applied them. A database whose version is newer than
// this binary's is refused, so that an old node does not run on a schema
// it does not know.
func Migrate(ctx context.Context, pool *pgxpool.Pool, node string) (Result, error) {
	migs, err := Migrations()
	if err != nil {
		return Result{}, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("pgdb: migrate: %w", err)
	}
	defer conn.Release()
	// The lock waits for another node's migration: no statement timeout
	// on this session while it does (the migrations themselves are
	// short on an empty schema, and ctx bounds the whole).
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		return Result{}, fmt.Errorf("pgdb: migrate: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET statement_timeout")
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return Result{}, fmt.Errorf("pgdb: migrate: waiting for the migration lock: %w", err)
	}
	defer func() {
		// A connection that cannot say it released the lock is closed,
		// which releases it, rather than returned to the pool holding it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS outguard_schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		node       text NOT NULL
	)`); err != nil {
		return Result{}, fmt.Errorf("pgdb: migrate: creating the version table: %w", err)
	}
	// Versions are numbered in blocks (0001-0099 the core and identity,
	// 01xx the log and quarantine, 02xx the other stores), so a later
	// release may add a version below the highest applied: every embedded
	// version not recorded is applied, not only those above the maximum.
	rows, err := conn.Query(ctx, "SELECT version FROM outguard_schema_migrations")
	if err != nil {
		return Result{}, fmt.Errorf("pgdb: migrate: reading the version: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return Result{}, fmt.Errorf("pgdb: migrate: reading the version: %w", err)
	}
	known := map[int]bool{}
	for _, m := range migs {
		known[m.Version] = true
	}
	applied := map[int]bool{}
	current := 0
	for _, v := range done {
		applied[v] = true
		current = max(current, v)
		if !known[v] {
			return Result{Version: current}, fmt.Errorf("pgdb: the database schema has migration %04d, which this outguard does not know (a schema newer than this outguard): upgrade this node", v)
		}
	}
	res := Result{Version: current}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO outguard_schema_migrations (version, name, node) VALUES ($1, $2, $3)", m.Version, m.Name, node)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("pgdb: migration %04d_%s: %w", m.Version, m.Name, err)
		}
		res.Applied = append(res.Applied, m)
		res.Version = max(res.Version, m.Version)
	}
	return res, nil
}

// Status returns the migrations recorded in the database, oldest first,
// and the embedded ones not yet applied.
func Status(ctx context.Context, pool *pgxpool.Pool) (applied []Applied, pending []Migration, err error) {
	migs, err := Migrations()
	if err != nil {
		return nil, nil, err
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('outguard_schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return nil, nil, fmt.Errorf("pgdb: status: %w", err)
	}
	done := map[int]bool{}
	if exists {
		rows, err := pool.Query(ctx, "SELECT version, name, applied_at, node FROM outguard_schema_migrations ORDER BY version")
		if err != nil {
			return nil, nil, fmt.Errorf("pgdb: status: %w", err)
		}
		applied, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Applied, error) {
			var a Applied
			err := r.Scan(&a.Version, &a.Name, &a.AppliedAt, &a.Node)
			return a, err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("pgdb: status: %w", err)
		}
		for _, a := range applied {
			done[a.Version] = true
		}
	}
	for _, m := range migs {
		if !done[m.Version] {
			pending = append(pending, m)
		}
	}
	return applied, pending, nil
}
