package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/outguard/outguard/arf"
)

const arfHelp = `Usage:
  outguard arf parse [--identity-header NAME] [--identity-occurrence first|last|only]
                     [--trace-header NAME] [--json] FILE...

Parses abuse feedback reports (RFC 5965 ARF, and the legacy formats of large
mailbox providers) offline, without a daemon, and prints what each holds.
"-" reads standard input. The parser is tolerant of real-world deviations
(text/rfc822-headers, base64 parts, missing Version, obsolete time zones,
redacted addresses) and refuses what is not a feedback report with a named
reason.

With --json, one JSON object per line and file with the keys: file, ok,
error (not-arf, no-feedback-report, missing-feedback-type, limit-exceeded,
malformed-conflicting-dates, unreadable; empty when ok), warnings, profile,
feedback_type, version, user_agent, original_mail_from, original_rcpt_to,
arrival_date (RFC 3339, UTC), source_ip, source_port, reported_domain,
reported_uri, incidents, message_id, identity.

The identity is taken from --identity-header (default X-AuthUser) of the
original message's top-level header only. When the header is there more
than once, --identity-occurrence says which one counts, as the identity
rule's occurrence does (docs/config-identity.md): first, last, or only
(the default: different values name no identity, warning
identity-ambiguous). The daemon uses the occurrence of its rules.

Exit status: 0 when every file parsed, 1 otherwise, 2 on bad usage.

Examples:
  outguard arf parse complaint.eml
  outguard arf parse --json reports/*.eml | jq -r 'select(.ok) | .identity'
  outguard arf parse --identity-header X-Hosting-Account - < report.eml
`

func runARF(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		w := stderr
		code := exitUsage
		if len(args) > 0 {
			w, code = stdout, exitOK
		}
		fmt.Fprint(w, arfHelp)
		return code
	}
	if args[0] != "parse" {
		fmt.Fprintf(stderr, "outguard arf: unknown subcommand %q (want parse)\n", args[0])
		return exitUsage
	}
	fs := newFlags("arf parse", arfHelp, stderr)
	idh := fs.String("identity-header", "X-AuthUser", "header of the original holding the identity")
	occ := fs.String("identity-occurrence", "only", "which occurrence of the identity header counts: first, last or only (as the identity rule reading it)")
	trh := fs.String("trace-header", "X-Outguard-Trace", "header of the original holding outguard's trace token")
	asJSON := fs.Bool("json", false, "one JSON object per line and file")
	if c := parseFlags(fs, args[1:], stdout); c >= 0 {
		return c
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "outguard arf parse: give at least one FILE (or - for standard input)")
		return exitUsage
	}
	o, err := arf.ParseOccurrence(*occ)
	if err != nil {
		return usageError(stderr, "arf parse", "--identity-occurrence %q: use first, last or only", *occ)
	}
	code := exitOK
	for _, name := range fs.Args() {
		res := parseARFFile(name, arf.ParseOptions{IdentityHeader: *idh, IdentityOccurrence: o, TraceHeader: *trh})
		if !res.OK {
			code = exitFailed
		}
		if *asJSON {
			writeJSON(stdout, res)
			continue
		}
		printARF(stdout, res)
	}
	return code
}

func parseARFFile(name string, opts arf.ParseOptions) arf.Result {
	var r io.Reader
	if name == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return arf.NewResult(name, nil, fmt.Errorf("%w: %v", arf.ErrUnreadable, err))
		}
		defer f.Close()
		r = f
	}
	fb, err := arf.Parse(r, opts)
	return arf.NewResult(name, fb, err)
}

func printARF(w io.Writer, r arf.Result) {
	if !r.OK {
		fmt.Fprintf(w, "%s: refused: %s\n", r.File, r.Detail)
		return
	}
	fmt.Fprintf(w, "%s: %s report (%s)\n", r.File, r.FeedbackType, r.Profile)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-19s %s\n", k+":", v)
		}
	}
	row("user agent", r.UserAgent)
	row("version", r.Version)
	row("original mail from", r.OriginalMailFrom)
	row("original rcpt to", strings.Join(r.OriginalRcptTo, ", "))
	row("arrival date", r.ArrivalDate)
	row("source ip", r.SourceIP)
	row("reported domain", strings.Join(r.ReportedDomain, ", "))
	row("reported uri", strings.Join(r.ReportedURI, ", "))
	row("message id", r.MessageID)
	row("identity", r.Identity)
	for _, warn := range r.Warnings {
		row("warning", warn)
	}
}
