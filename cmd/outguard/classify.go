package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/outguard/outguard/app"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
)

func init() {
	register("classify", "run the configured engines on message files, offline", runClassify)
}

const classifyHelp = `Usage:
  outguard classify [--config FILE] [--json] MESSAGE.eml...

Runs the classification engines configured in FILE (the built-in engine,
and rspamd and clamd when they are enabled there) on each message file and
prints its class (clean, spam, phishing, virus), score and the reasons that
decided it. No daemon and no next hop are involved; use it to test rules and
to answer "why was this blocked".

Without --config only the built-in engine runs, with its default rules.

With --json, one JSON object per line and file, with the keys file, class,
score, reasons (a list of strings) and error (set when the file could not be
read or a scanner failed).

Exit status: 0 when every file was classified, 1 when any could not be, 2 on
bad usage.

Examples:
  outguard classify suspicious.eml
  outguard classify --config /etc/outguard/outguard.yaml --json quarantine/*.eml
`

// builtinOnly is the configuration used without --config.
const builtinOnly = `listeners: [{address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}]
next_hop: {type: capture}
domains: [{name: classify.invalid, users: [{name: classify, networks: ["127.0.0.1/32"]}]}]
`

func runClassify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("classify", classifyHelp, stderr)
	path := fs.String("config", "", "configuration `FILE` whose filter section to use")
	asJSON := fs.Bool("json", false, "one JSON object per line and file")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "outguard classify: give at least one MESSAGE file")
		return exitUsage
	}
	var cfg *config.Config
	var err error
	if *path != "" {
		cfg, err = config.Load(*path)
	} else {
		cfg, err = config.Parse([]byte(builtinOnly))
	}
	if err != nil {
		fmt.Fprintf(stderr, "outguard classify: %v\n", err)
		return exitFailed
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cl, err := app.NewClassifier(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "outguard classify: %v\n", err)
		return exitFailed
	}
	if cl == nil {
		fmt.Fprintln(stderr, "outguard classify: every engine is disabled in the configuration")
		return exitFailed
	}
	code := exitOK
	for _, f := range fs.Args() {
		res := filter.ClassifyFile(context.Background(), cl, f)
		if res.Error != "" {
			code = exitFailed
		}
		if *asJSON {
			writeJSON(stdout, res)
			continue
		}
		if res.Error != "" {
			fmt.Fprintf(stdout, "%s: error: %s\n", f, res.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s (score %.1f)\n", f, res.Class, res.Score)
		for _, r := range res.Reasons {
			fmt.Fprintf(stdout, "  %s\n", r)
		}
		if len(res.Defects) > 0 {
			fmt.Fprintf(stdout, "  defects: %s\n", strings.Join(res.Defects, "; "))
		}
	}
	return code
}
