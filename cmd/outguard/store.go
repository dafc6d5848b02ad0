package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb"
)

var storeHelp = helpText(
	`outguard store migrate --config FILE [--status] [--timeout DURATION] [--json]
  outguard store copy --config FILE --from bbolt:PATH --to postgres [--dry-run] [--json]`,
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

copy copies a node's bbolt database (PATH, its store.path) into the
PostgreSQL database of store.postgres of FILE, to grow from one node to a
fleet (docs/config-store.md "Growing from one node"): the message log,
quarantined content, report roll-ups, locks with their history, would-lock
records, automatic-lock windows, the ARF outbox (pending, expired and sent
reports), the notification outbox, feedback reports and their
de-duplication index, baseline profiles, campaigns and the content model's
overlay. Records are attributed to node_name of FILE. It applies the
schema migrations first. Stop the node first (systemctl stop outguard):
a bbolt file open by a running outguard is refused after --wait. The copy
is resumable: each batch commits with its progress (table
store_copy_progress), so a copy interrupted at any point, run again, goes
on after the last batch; a record already in the database is counted as
present, never written twice. It prints, per kind, the records copied,
already present, skipped (with the reasons) and done by an earlier run;
a progress bar on standard error while it is a terminal. --dry-run counts
the records and what an earlier run did, and writes nothing.

With --json, one object: {"source": PATH, "dry_run": bool, "kinds":
[{"kind", "total", "earlier", "copied", "present", "skipped", "reasons",
"done"}...]}, with "error" when it failed.

Exit status: 0 success (also when there was nothing to apply or copy,
and when records were skipped: the reasons are listed), 1 the database
could not be reached, a migration or the copy failed or was interrupted
(run copy again to go on), or the bbolt file is missing or open by a
running outguard, 2 bad usage or a configuration that is invalid or not
on the postgres backend.`,
	`  outguard store migrate --config /etc/outguard/outguard.yaml
  outguard store migrate --config /etc/outguard/outguard.yaml --status --json | jq .pending
  systemctl stop outguard
  outguard store copy --config /etc/outguard/outguard.yaml --from bbolt:/var/lib/outguard/outguard.db --to postgres --dry-run
  outguard store copy --config /etc/outguard/outguard.yaml --from bbolt:/var/lib/outguard/outguard.db --to postgres`)

func runStore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("store", storeHelp, stderr)
	path := fs.String("config", "", "the configuration `FILE` (its store.postgres section and node_name)")
	status := fs.Bool("status", false, "migrate: list applied and pending migrations; change nothing")
	timeout := fs.Duration("timeout", 5*time.Minute, "migrate: give up after `DURATION` (waiting for another node's migration included)")
	asJSON := fs.Bool("json", false, "print the result as one JSON document")
	from := fs.String("from", "", "copy: the node's database, bbolt:`PATH`")
	to := fs.String("to", "", "copy: where to: `postgres` (store.postgres of FILE)")
	dryRun := fs.Bool("dry-run", false, "copy: count the records; write nothing")
	batch := fs.Int("batch", 500, "copy: records per transaction")
	wait := fs.Duration("wait", 2*time.Second, "copy: wait up to `DURATION` for the bbolt file's lock before refusing (a running outguard holds it)")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "migrate" && fs.Arg(0) != "copy") {
		fmt.Fprintln(stderr, "outguard store: usage: outguard store migrate|copy --config FILE (see outguard store --help)")
		return exitUsage
	}
	verb := "outguard store " + fs.Arg(0)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"status", "timeout", "from", "to", "dry-run", "batch", "wait"} {
		if set[name] && strings.HasPrefix(fs.Lookup(name).Usage, "migrate:") != (fs.Arg(0) == "migrate") {
			fmt.Fprintf(stderr, "%s: --%s is not a flag of %s\n", verb, name, fs.Arg(0))
			return exitUsage
		}
	}
	if *path == "" {
		fmt.Fprintf(stderr, "%s: --config FILE is required\n", verb)
		return exitUsage
	}
	var src string
	if fs.Arg(0) == "copy" {
		var ok bool
		if src, ok = strings.CutPrefix(*from, "bbolt:"); !ok || src == "" {
			fmt.Fprintf(stderr, "%s: --from bbolt:PATH is required (the node's database file, its store.path)\n", verb)
			return exitUsage
		}
		if *to != "postgres" {
			fmt.Fprintf(stderr, "%s: --to postgres is required (the only destination: store.postgres of the configuration)\n", verb)
			return exitUsage
		}
		if *batch < 1 {
			fmt.Fprintf(stderr, "%s: --batch must be at least 1\n", verb)
			return exitUsage
		}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, *path, err)
		return exitUsage
	}
	if cfg.Store.Backend != config.StoreBackendPostgres {
		fmt.Fprintf(stderr, "%s: %s has store.backend %s; %s is for the postgres backend\n", verb, *path, cfg.Store.Backend, fs.Arg(0))
		return exitUsage
	}
	dsn, err := cfg.Store.Postgres.ReadDSN()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", verb, err)
		return exitUsage
	}
	if fs.Arg(0) == "copy" {
		return storeCopy(copyArgs{cfg: cfg, dsn: dsn, src: src, dryRun: *dryRun, batch: *batch, wait: *wait, asJSON: *asJSON}, stdout, stderr)
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
