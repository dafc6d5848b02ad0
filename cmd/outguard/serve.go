package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/outguard/outguard/app"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/gctune"
	"github.com/outguard/outguard/internal/sdnotify"
)

const serveHelp = `Usage:
  outguard serve [--config FILE] [--json]

Runs the daemon: the SMTP listeners, the relay to the next hop, and the
admin listener (metrics, health, API, console).

Signals: SIGINT and SIGTERM stop accepting connections and let transactions
in flight finish within shutdown_timeout; SIGHUP reloads the configuration
and the listeners' TLS certificates (a bad file or certificate keeps the
running ones and logs why). POST /-/reload on the admin listener, with a
token of scope all, does the same as SIGHUP; reloads run one at a time.

Under systemd (a unit of Type=notify, as the Debian package installs), serve
reports READY=1 once its listeners are open, RELOADING=1 during a SIGHUP
reload and STOPPING=1 on the way out, and the outcome of the last reload as
its status line (systemctl status outguard). With socket activation, a
socket that systemd passes (LISTEN_FDS) is served by the listener its
FileDescriptorName= names, instead of opening that listener's address; a
restart then refuses no connection (docs/install.md).

serve refuses to start when the trial credentials of the example
configuration are used on a non-loopback address.

Logs go to standard error (log/slog), one line per transaction ("transaction")
with its log id, outcome, user, identity, verdict and score, the reply the
client heard and the next hop's reply; --json writes them as JSON whatever
log.format says. Lines are written in batches, at most 50 ms after they
are made (and all of them when outguard stops).

Examples:
  outguard serve --config testdata/outguard.example.yaml
  outguard serve --config /etc/outguard/outguard.yaml
`

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", serveHelp, stderr)
	path := fs.String("config", "/etc/outguard/outguard.yaml", "configuration `FILE`")
	asJSON := fs.Bool("json", false, "write the log as JSON lines")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outguard serve: unexpected argument %q (use --config FILE)\n", fs.Arg(0))
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "outguard serve: %s: the configuration cannot be used:\n", *path)
		printProblems(stderr, *path, err)
		return exitFailed
	}
	if *asJSON {
		cfg.Log.Format = "json"
	}
	lw := newLogWriter(stderr, logDelay)
	defer lw.Close()
	log := newLogger(cfg.Log, lw)
	slog.SetDefault(log)
	// Sockets systemd passes (socket activation): served instead of
	// opening the listeners' addresses.
	socks, err := sdnotify.Listeners()
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFailed
	}
	a, err := app.New(app.Options{Config: cfg, ConfigPath: *path, Logger: log, Version: Version, Listeners: socks})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFailed
	}
	if err := a.Start(); err != nil {
		log.Error("cannot start", "err", err)
		a.Stop()
		return exitFailed
	}
	// The collector lets garbage grow to the message memory budget while
	// the live heap is small (docs/config-smtp.md, "Memory").
	defer gctune.Start(cfg.Limits.MessageMemoryBytes).Stop()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Under systemd (Type=notify), say when the listeners are open, when a
	// reload runs and when the daemon stops (docs/install.md).
	notify := func(send func() (bool, error)) {
		if _, err := send(); err != nil {
			log.Warn("telling systemd the daemon's state failed", "err", err)
		}
	}
	notify(sdnotify.Ready)
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: reloading configuration", "file", *path)
			notify(sdnotify.Reloading)
			if err := a.ReloadFromFile(); err != nil {
				notify(func() (bool, error) { return sdnotify.Status("last reload failed: " + err.Error()) })
			} else {
				notify(func() (bool, error) { return sdnotify.Status("configuration reloaded") })
			}
			notify(sdnotify.Ready)
		case <-ctx.Done():
			log.Info("stopping")
			notify(sdnotify.Stopping)
			if err := a.Stop(); err != nil {
				return exitFailed
			}
			return exitOK
		}
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

const checkHelp = `Usage:
  outguard check-config [--json] FILE

Reads FILE as outguard would at start: strict YAML (an unknown key is an
error naming its line), defaults, then validation that says what is wrong and
how to fix it. Prints every problem found in one run, one a line, as
"FILE: line N: key.path: what is wrong; what is expected": values of the
wrong type, unknown keys and values that validation refuses. With --json,
"errors" holds one object per problem: {"line", "path", "message", "fix"}
(line 0: the key is missing from the file).

Exit status: 0 valid, 1 invalid, 2 bad usage.

Examples:
  outguard check-config /etc/outguard/outguard.yaml
  outguard check-config --json outguard.yaml | jq .errors
`

func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", checkHelp, stderr)
	asJSON := fs.Bool("json", false, "print the result as one JSON document")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "outguard check-config: give exactly one FILE")
		return exitUsage
	}
	cfg, err := config.Load(fs.Arg(0))
	if err == nil {
		err = app.CheckTrialCredentials(cfg)
	}
	if *asJSON {
		problems := config.ProblemsOf(err)
		if problems == nil {
			problems = []config.Problem{}
		}
		writeJSON(stdout, map[string]any{"file": fs.Arg(0), "ok": err == nil, "errors": problems})
	} else if err != nil {
		printProblems(stderr, fs.Arg(0), err)
	} else {
		fmt.Fprintf(stdout, "%s: configuration is valid\n", fs.Arg(0))
	}
	if err != nil {
		return exitFailed
	}
	return exitOK
}

// printProblems writes each problem of a configuration on its own line,
// as "FILE: line N: key.path: what is wrong; what is expected".
func printProblems(w io.Writer, file string, err error) {
	for _, p := range config.ProblemsOf(err) {
		msg := p.String()
		if !strings.HasPrefix(msg, file+":") {
			msg = file + ": " + msg
		}
		fmt.Fprintln(w, msg)
	}
}
