package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/outguard/outguard/app"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/storecopy"
)

// copyArgs are the settings of outguard store copy, checked by runStore.
type copyArgs struct {
	cfg    *config.Config
	dsn    string
	src    string // the bbolt file
	dryRun bool
	batch  int
	wait   time.Duration
	asJSON bool
}

// storeCopy runs outguard store copy (see storeHelp).
func storeCopy(a copyArgs, stdout, stderr io.Writer) int {
	const name = "outguard store copy"
	fail := func(rep *storecopy.Report, err error) int {
		if a.asJSON {
			out := map[string]any{"error": err.Error()}
			if rep != nil {
				out["source"], out["dry_run"], out["kinds"] = rep.Source, rep.DryRun, rep.Kinds
			}
			writeJSON(stdout, out)
		} else if rep != nil && len(rep.Kinds) > 0 {
			printCopyReport(stdout, rep)
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFailed
	}
	// Ctrl-C or SIGTERM ends the copy: the batch under way is rolled
	// back, the ones before it stay.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := os.Stat(a.src); errors.Is(err, fs.ErrNotExist) {
		return fail(nil, fmt.Errorf("%s: no such file (give the node's database file, its store.path)", a.src))
	} else if err != nil {
		return fail(nil, err)
	}
	db, err := storecopy.Open(a.src, a.wait)
	if errors.Is(err, storecopy.ErrLocked) {
		return fail(nil, fmt.Errorf("%w: copying from a running node is not supported; stop it first (systemctl stop outguard) and run the copy again", err))
	}
	if err != nil {
		return fail(nil, err)
	}
	defer db.Close()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: a.dsn, MaxConns: 3, StatementTimeout: a.cfg.Store.Postgres.StatementTimeout.D(), NodeName: a.cfg.NodeName})
	if err != nil {
		return fail(nil, err)
	}
	defer pool.Close()
	if !a.dryRun {
		if _, err := pgdb.Migrate(ctx, pool, a.cfg.NodeName); err != nil {
			return fail(nil, err)
		}
	}
	kinds := app.StoreCopyKinds()
	var prog *progress
	opts := storecopy.Options{
		Source: a.src,
		Node:   a.cfg.NodeName,
		Batch:  a.batch,
		DryRun: a.dryRun,
		Begin: func(counts []storecopy.Count) {
			total := 0
			for _, c := range counts {
				total += c.Remaining()
			}
			if !a.dryRun {
				prog = newProgress(stderr, name, "records", total)
			}
		},
		Step: func(_ string, o storecopy.Outcome) {
			if prog != nil {
				prog.step(outcomeName(o))
			}
		},
	}
	rep, err := storecopy.Run(ctx, db, pool, kinds, opts)
	if prog != nil {
		prog.finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w; what was committed stays: run the copy again to go on", err)
		}
		if errors.Is(err, storecopy.ErrBusy) {
			err = fmt.Errorf("%w: wait for it to end (it holds an advisory lock on the database)", err)
		}
		return fail(&rep, err)
	}
	if a.asJSON {
		writeJSON(stdout, rep)
		return exitOK
	}
	printCopyReport(stdout, &rep)
	return exitOK
}

func outcomeName(o storecopy.Outcome) string {
	switch o.State {
	case storecopy.Copied:
		return "copied"
	case storecopy.Present:
		return "already present"
	default:
		return "skipped"
	}
}

// printCopyReport prints one line per kind and the reasons of skipped
// records.
func printCopyReport(w io.Writer, rep *storecopy.Report) {
	if rep.DryRun {
		fmt.Fprintf(w, "dry run: nothing written; records in %s:\n", rep.Source)
	} else {
		fmt.Fprintf(w, "copy of %s:\n", rep.Source)
	}
	width := len("kind")
	for _, c := range rep.Kinds {
		width = max(width, len(c.Kind))
	}
	if rep.DryRun {
		fmt.Fprintf(w, "  %-*s %9s %13s %9s\n", width, "kind", "total", "done earlier", "to copy")
	} else {
		fmt.Fprintf(w, "  %-*s %9s %9s %16s %9s %13s\n", width, "kind", "total", "copied", "already present", "skipped", "done earlier")
	}
	var copied, present, skipped, remaining int64
	for _, c := range rep.Kinds {
		if rep.DryRun {
			fmt.Fprintf(w, "  %-*s %9d %13d %9d\n", width, c.Kind, c.Total, c.Earlier, c.Remaining())
		} else {
			fmt.Fprintf(w, "  %-*s %9d %9d %16d %9d %13d\n", width, c.Kind, c.Total, c.Copied, c.Present, c.Skipped, c.Earlier)
		}
		copied, present, skipped, remaining = copied+c.Copied, present+c.Present, skipped+c.Skipped, remaining+int64(c.Remaining())
	}
	for _, c := range rep.Kinds {
		for _, r := range c.SortedReasons() {
			fmt.Fprintf(w, "%s: %d skipped: %s\n", c.Kind, c.Reasons[r], r)
		}
	}
	switch {
	case rep.DryRun:
		fmt.Fprintf(w, "%d records to copy\n", remaining)
	case remaining > 0:
		var left []string
		for _, c := range rep.Kinds {
			if c.Remaining() > 0 {
				left = append(left, c.Kind)
			}
		}
		fmt.Fprintf(w, "not finished (%s): run the copy again to go on\n", strings.Join(left, ", "))
	default:
		fmt.Fprintf(w, "done: %d copied, %d already present, %d skipped\n", copied, present, skipped)
	}
}
