package main

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

const manpageHelp = `Usage:
  outguard manpage [--date YYYY-MM-DD]

Prints outguard's manual page, outguard(8), in roff: the overview of
'outguard help' and one section per verb holding that verb's --help text,
so the man page and --help never disagree. The Debian package installs it
(make deb writes it); read it with 'man outguard' or
'outguard manpage | man -l -'.

Examples:
  outguard manpage > outguard.8
`

func runManpage(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("manpage", manpageHelp, stderr)
	date := fs.String("date", "", "the date in the page's title line (default today)")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outguard manpage: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *date == "" {
		*date = time.Now().UTC().Format("2006-01-02")
	}
	writeManpage(stdout, *date)
	return exitOK
}

// writeManpage writes outguard(8): NAME, SYNOPSIS, DESCRIPTION (the
// overview), one section per verb with its --help verbatim, EXIT STATUS
// and FILES.
func writeManpage(w io.Writer, date string) {
	fmt.Fprintf(w, ".TH OUTGUARD 8 %q %q \"System Manager's Manual\"\n", date, "outguard "+Version)
	fmt.Fprint(w, ".SH NAME\noutguard \\- inline SMTP smarthost filter for outbound mail\n")
	fmt.Fprint(w, ".SH SYNOPSIS\n.B outguard\n.I verb\n[\\fIflags\\fR] [\\fIargs\\fR]\n")
	var overview bytes.Buffer
	usage(&overview)
	fmt.Fprint(w, ".SH DESCRIPTION\n")
	verbatim(w, overview.String())
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprint(w, ".SH VERBS\n")
	for _, n := range names {
		var help bytes.Buffer
		verbs[n].run([]string{"--help"}, &help, io.Discard)
		fmt.Fprintf(w, ".SS %s\n", roffEscape("outguard "+n))
		verbatim(w, help.String())
	}
	fmt.Fprint(w, `.SH EXIT STATUS
0 success, 1 a refused or failed request or an invalid file, 2 bad usage.
.SH FILES
.TP
.I /etc/outguard/outguard.yaml
the configuration (a conffile of the Debian package)
.TP
.I /var/lib/outguard
the database and the spool
.TP
.I /usr/share/outguard
Prometheus alerting rules and the Grafana dashboard
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
`)
}

// verbatim writes text as a no-fill block, escaped for roff.
func verbatim(w io.Writer, text string) {
	fmt.Fprint(w, ".nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintln(w, roffEscape(line))
	}
	fmt.Fprint(w, ".fi\n")
}

// roffEscape makes a line print as written: backslashes doubled, and a
// leading dot or apostrophe (a roff request) protected by a zero-width
// character.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
