// Command outguard is the outbound SMTP filter daemon and its command-line
// tools. Run `outguard help` for the verbs.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// Exit codes every verb keeps to (outguard help, "Exit status").
const (
	exitOK      = 0
	exitFailed  = 1 // a refused or failed request, an invalid file
	exitUsage   = 2 // bad usage
	exitRuntime = 1
)

// verb is one subcommand.
type verb struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// verbs is every verb, with the one-line summary 'outguard help' lists.
// It is filled in init rather than declared with its value because the
// manpage verb reads it.
var verbs map[string]verb

func init() {
	verbs = map[string]verb{
		"arf":           {"offline ARF tools: arf parse FILE...", runARF},
		"audit":         {"list the audit trail of administrative actions", runAudit},
		"campaigns":     {"list campaigns (one content sent by many identities), show, confirm or lock one", runCampaigns},
		"check-config":  {"validate a configuration file", runCheckConfig},
		"classify":      {"run the configured engines on message files, offline", runClassify},
		"feedback":      {"upload feedback reports (ARF) to the daemon: feedback ingest FILE...", runFeedback},
		"hash-password": {"hash a password or admin token for the configuration", runHashPassword},
		"learn":         {"teach the content model that messages are spam or ham", runLearn},
		"lock":          {"lock an outgoing user or an identity", runLock},
		"locks":         {"list locks", runLocks},
		"logs":          {"search the message log", runLogs},
		"manpage":       {"print this manual as a man page (roff, section 8)", runManpage},
		"notify":        {"send an identity's customer notice to its contact now (preview with --dry-run)", runNotify},
		"model":         {"show, export, import or reset what the content model learnt", runModel},
		"quarantine":    {"show, download, release or delete a quarantined message", runQuarantine},
		"report":        {"top identities, users, domains or senders over a period", runReport},
		"serve":         {"run the daemon", runServe},
		"store":         {"the shared PostgreSQL store: store migrate applies the schema migrations, store copy copies a node's bbolt database into it", runStore},
		"totp-secret":   {"make the TOTP second-factor secret of a console account, with its otpauth:// URI", runTOTPSecret},
		"unlock":        {"lift the lock on an outgoing user or an identity", runUnlock},
		"usage":         {"an identity's counts against its automatic-lock thresholds", runUsage},
		"version":       {"print the version", runVersion},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			if v, ok := verbs[args[1]]; ok {
				return v.run([]string{"--help"}, stdout, stderr)
			}
		}
		usage(stdout)
		return exitOK
	case "--version", "-version":
		name = "version"
	}
	v, ok := verbs[name]
	if !ok {
		fmt.Fprintf(stderr, "outguard: unknown verb %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	return v.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `outguard - inline SMTP smarthost filter for outbound mail

Usage:
  outguard VERB [flags] [args]

outguard sits between sending MTAs and the outbound MTA. It authenticates
the senders, finds the end user (identity) behind every message, classifies
it, refuses mail from locked users and identities, quarantines and reports
what it blocks, and relays the rest in lockstep with the next hop.

Verbs:
`)
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, verbs[n].summary)
	}
	fmt.Fprint(w, `
Run 'outguard VERB --help' for a verb's flags and examples.

Exit status: 0 success, 1 a refused or failed request, 2 bad usage. An
action that was already done (a second release, unlock or delete) is a
success that says "already". A request the daemon refuses as malformed
(HTTP 400, e.g. a missing --domain) is bad usage too.
`)
}

// helpText formats a verb's --help: usage line, description, flags and
// examples.
func helpText(usageLine, description, examples string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %s\n\n%s\n", usageLine, strings.TrimSpace(description))
	if examples != "" {
		fmt.Fprintf(&b, "\nExamples:\n%s\n", strings.TrimRight(examples, "\n"))
	}
	return b.String()
}
