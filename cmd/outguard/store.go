package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb"
)

var storeHelp = helpText(
	"outguard store migrate --config FILE [--status] [--timeout DURATION] [--json]",
	`Manages the shared PostgreSQL store of a fleet (store.backend postgres,
docs/config-store.md "Several nodes").

migrate connects with store.postgres of the configuration FILE and applies
the schema migrations built into this binary that the database does not
have yet, each in its own transaction, recorded in the table
outguard_schema_migrations with the node that applied it (node_name).
Every node also does this when it starts, so running migrate by hand is
only needed to upgrade the schema before the nodes, or to check it. Nodes
and migrate calls starting at once take turns through an advisory lock:
each migration is applied once. A database whose schema is newer than this
binary is refused: upgrade outguard first.

With --status nothing is changed: it lists the migrations applied (version,
name, when, by which node) and those this binary would apply.

With --json, one object: {"version": N, "applied": [...]} after migrate,
{"applied": [...], "pending": [...]} with --status.

Exit status: 0 success (also when there was nothing to apply), 1 the
database could not be reached or a migration failed, 2 bad usage or a
configuration that is invalid or not on the postgres backend.`,
	`  outguard store migrate --config /etc/outguard/outguard.yaml
  outguard store migrate --config /etc/outguard/outguard.yaml --status --json | jq .pending`)

func runStore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("store", storeHelp, stderr)
	path := fs.String("config", "", "the configuration `FILE` (its store.postgres section)")
	status := fs.Bool("status", false, "list applied and pending migrations; change nothing")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after `DURATION` (waiting for another node's migration included)")
	asJSON := fs.Bool("json", false, "print the result as one JSON document")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() != 1 || fs.Arg(0) != "migrate" {
		fmt.Fprintln(stderr, "outguard store: usage: outguard store migrate --config FILE (see outguard store --help)")
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "outguard store migrate: --config FILE is required")
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, *path, err)
		return exitUsage
	}
	if cfg.Store.Backend != config.StoreBackendPostgres {
		fmt.Fprintf(stderr, "outguard store migrate: %s has store.backend %s; migrations are for the postgres backend\n", *path, cfg.Store.Backend)
		return exitUsage
	}
	dsn, err := cfg.Store.Postgres.ReadDSN()
	if err != nil {
		fmt.Fprintf(stderr, "outguard store migrate: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: dsn, MaxConns: 2, StatementTimeout: cfg.Store.Postgres.StatementTimeout.D(), NodeName: cfg.NodeName})
	if err != nil {
		fmt.Fprintf(stderr, "outguard store migrate: %v\n", err)
		return exitFailed
	}
	defer pool.Close()
	if *status {
		applied, pending, err := pgdb.Status(ctx, pool)
		if err != nil {
			fmt.Fprintf(stderr, "outguard store migrate: %v\n", err)
			return exitFailed
		}
		if *asJSON {
			if applied == nil {
				applied = []pgdb.Applied{}
			}
			if pending == nil {
				pending = []pgdb.Migration{}
			}
			writeJSON(stdout, map[string]any{"applied": applied, "pending": pending})
			return exitOK
		}
		for _, a := range applied {
			fmt.Fprintf(stdout, "applied  %04d %s (%s by %s)\n", a.Version, a.Name, a.AppliedAt.UTC().Format(time.RFC3339), a.Node)
		}
		for _, m := range pending {
			fmt.Fprintf(stdout, "pending  %04d %s\n", m.Version, m.Name)
		}
		return exitOK
	}
	res, err := pgdb.Migrate(ctx, pool, cfg.NodeName)
	if *asJSON {
		if res.Applied == nil {
			res.Applied = []pgdb.Migration{}
		}
		out := map[string]any{"version": res.Version, "applied": res.Applied}
		if err != nil {
			out["error"] = err.Error()
		}
		writeJSON(stdout, out)
	} else {
		for _, m := range res.Applied {
			fmt.Fprintf(stdout, "applied %04d %s\n", m.Version, m.Name)
		}
		if err == nil {
			if len(res.Applied) == 0 {
				fmt.Fprintf(stdout, "schema already at version %d: nothing to apply\n", res.Version)
			} else {
				fmt.Fprintf(stdout, "schema at version %d\n", res.Version)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "outguard store migrate: %v\n", err)
		return exitFailed
	}
	return exitOK
}
