package main

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
)

var lockHelp = helpText(
	"outguard lock identity IDENTITY --domain D --reason TEXT [--for DURATION] [--json]\n"+
		"  outguard lock user NAME --reason TEXT [--for DURATION] [--json]",
	`Locks an identity (the end user behind an outgoing user, within its
administrative domain) or a whole outgoing user. Mail from a locked user is
refused at MAIL FROM; mail of a locked identity is refused after DATA, both
with 550 5.7.1. Locked senders stay visible in logs and reports.

--reason is required and is kept in the lock's history and the audit
trail, with your token's name as the actor. --for makes the lock temporary
(90m, 12h, 7d, 2w); without it the lock stays until unlocked. Locking what
is already locked fails (unlock first), so a second admin cannot silently
replace the first one's reason. --domain may be left out with a token scoped
to one domain; a user's domain is known from the configuration.

With --json, the lock as one document: kind, domain, name, reason, actor,
start, expires, state.
`+clientHelp,
	`  outguard lock identity alice@customer.example --domain out.example.net --reason "phishing kit" --for 24h
  outguard lock user webhost3 --reason "compromised server, ticket 4711"`)

var unlockHelp = helpText(
	"outguard unlock identity IDENTITY --domain D --reason TEXT [--json]\n"+
		"  outguard unlock user NAME --reason TEXT [--json]",
	`Lifts the lock in force on an identity or an outgoing user. --reason is
required and is kept in the history and the audit trail. Unlocking an
automatic lock counts toward escalation: after the configured number of
automatic locks of an identity, the next one is permanent.
`+clientHelp,
	`  outguard unlock identity alice@customer.example --domain out.example.net --reason "password reset, site cleaned"
  outguard unlock user webhost3 --reason "server reinstalled"`)

// lockTarget splits the positional arguments of lock and unlock into the
// kind (identity or user) and the rest.
func lockTarget(verb string, args []string, stderr io.Writer) (kind string, rest []string, code int) {
	if len(args) == 0 {
		return "", nil, usageError(stderr, verb, "say what to %s: identity IDENTITY --domain D, or user NAME", verb)
	}
	switch args[0] {
	case "identity", "user":
		return args[0], args[1:], -1
	}
	return "", nil, usageError(stderr, verb, "%q: use %s identity IDENTITY --domain D, or %s user NAME", args[0], verb, verb)
}

func runLock(args []string, stdout, stderr io.Writer) int {
	return runLockVerb("lock", lockHelp, args, stdout, stderr)
}

func runUnlock(args []string, stdout, stderr io.Writer) int {
	return runLockVerb("unlock", unlockHelp, args, stdout, stderr)
}

func runLockVerb(verb, help string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(verb, help, stderr)
	cf := addClientFlags(fs, verb)
	domain := fs.String("domain", "", "administrative `DOMAIN` of the identity (or user)")
	reason := fs.String("reason", "", "why: `TEXT` for the history and audit trail (required)")
	var dur *string
	if verb == "lock" {
		dur = fs.String("for", "", "make the lock temporary: `DURATION` like 90m, 12h, 7d")
	}
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	kind, rest, code := lockTarget(verb, fs.Args(), stderr)
	if code >= 0 {
		return code
	}
	if len(rest) != 1 {
		return usageError(stderr, verb, "give exactly one %s name (quote names with spaces)", kind)
	}
	name := rest[0]
	if strings.TrimSpace(*reason) == "" {
		return usageError(stderr, verb, "--reason TEXT is required")
	}
	if dur != nil {
		if c, ok := checkDuration(stderr, verb, "for", *dur); !ok {
			return c
		}
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	var l apiv1.Lock
	var err error
	if verb == "lock" {
		err = cl.call("POST", "/locks", nil, apiv1.LockRequest{Kind: kind, Domain: *domain, Name: name, Reason: *reason, Duration: *dur}, &l)
	} else {
		path, perr := lockPath(kind, *domain, name)
		if perr != nil {
			return usageError(stderr, verb, "%v", perr)
		}
		err = cl.call("DELETE", path, nil, apiv1.UnlockRequest{Reason: *reason}, &l)
	}
	if err != nil {
		return cl.fail(err)
	}
	if cf.json {
		writeJSON(stdout, l)
		return exitOK
	}
	what := fmt.Sprintf("%s %s (%s)", l.Kind, clean(l.Name, 200), l.Domain)
	switch {
	case verb == "unlock":
		fmt.Fprintf(stdout, "unlocked %s\n", what)
	case l.Expires.IsZero():
		fmt.Fprintf(stdout, "locked %s until unlocked\n", what)
	default:
		fmt.Fprintf(stdout, "locked %s until %s UTC\n", what, fmtTime(l.Expires))
	}
	return exitOK
}

// lockPath is the API path of one lock.
func lockPath(kind, domain, name string) (string, error) {
	if kind == "user" {
		return "/locks/user/" + url.PathEscape(name), nil
	}
	if domain == "" {
		return "", fmt.Errorf("--domain D is required for an identity")
	}
	return "/locks/identity/" + url.PathEscape(domain) + "/" + url.PathEscape(name), nil
}

var locksHelp = helpText(
	"outguard locks [--active] [--kind identity|user] [--domain D] [--limit N] [--json]",
	`Lists the latest lock of every locked (or formerly locked) user and
identity: in force (active), expired or unlocked. --active keeps those in
force. The table shows kind, domain, name, state, actor (a token's name,
auto or feedback), start, expiry and reason. With --json, one lock per
line with the keys kind, domain, name, reason, actor, automatic, escalated,
start, expires, evidence, unlocked, unlocked_by, unlock_reason, state.
`+clientHelp,
	`  outguard locks --active
  outguard locks --kind identity --domain out.example.net
  outguard locks --json | jq -r 'select(.automatic) | .name'`)

func runLocks(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("locks", locksHelp, stderr)
	cf := addClientFlags(fs, "locks")
	active := fs.Bool("active", false, "only locks in force")
	kind := fs.String("kind", "", "only `KIND`: identity or user")
	domain := fs.String("domain", "", "only administrative `DOMAIN`")
	limit := fs.Int("limit", 1000, "at most `N` locks")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "locks", "unexpected argument %q", fs.Arg(0))
	}
	if *kind != "" && *kind != "identity" && *kind != "user" {
		return usageError(stderr, "locks", "--kind %q: use identity or user", *kind)
	}
	if *limit < 1 || *limit > 10000 {
		return usageError(stderr, "locks", "--limit %d: use 1 to 10000", *limit)
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *active {
		q.Set("active", "true")
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	if *domain != "" {
		q.Set("domain", *domain)
	}
	var res apiv1.LockList
	if err := cl.call("GET", "/locks", q, nil, &res); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		for _, l := range res.Locks {
			writeJSON(stdout, l)
		}
		return exitOK
	}
	if len(res.Locks) == 0 {
		fmt.Fprintln(stdout, "no locks")
		return exitOK
	}
	tw := table(stdout)
	row(tw, "KIND", "DOMAIN", "NAME", "STATE", "ACTOR", "SINCE (UTC)", "EXPIRES (UTC)", "REASON")
	for _, l := range res.Locks {
		exp := fmtTime(l.Expires)
		if l.Expires.IsZero() {
			exp = "never"
		}
		reason := l.Reason
		if l.Evidence != nil && reason == "" {
			reason = fmt.Sprintf("%d %s in %s", l.Evidence.Count, l.Evidence.Counter, l.Evidence.Window)
		}
		row(tw, string(l.Kind), l.Domain, l.Name, l.State, l.Actor, fmtTime(l.Start), exp, clean(reason, 60))
	}
	tw.Flush()
	return exitOK
}

var usageHelp = helpText(
	"outguard usage IDENTITY --domain D [--json]",
	`Shows how close an identity is to an automatic lock: for each counter
(spam, phishing, virus, complaints, messages, recipients) its count in the
current sliding window, the threshold (0: counter off) and the window,
against the thresholds of the identity's last message. Also shows the
outgoing user last seen sending as the identity and the lock in force, if
any. An identity not seen within its windows is not found.

With --json, one document: domain, identity, user, last_seen, counters
(counter, count, threshold, window in nanoseconds), lock.
`+clientHelp,
	`  outguard usage alice@customer.example --domain out.example.net
  outguard usage alice@customer.example --domain out.example.net --json | jq '.counters[] | select(.counter=="spam")'`)

func runUsage(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("usage", usageHelp, stderr)
	cf := addClientFlags(fs, "usage")
	domain := fs.String("domain", "", "administrative `DOMAIN` of the identity (required)")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "usage", "give exactly one IDENTITY")
	}
	if *domain == "" {
		return usageError(stderr, "usage", "--domain D is required")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	var u apiv1.Usage
	path := "/identities/" + url.PathEscape(*domain) + "/" + url.PathEscape(fs.Arg(0)) + "/usage"
	if err := cl.call("GET", path, nil, nil, &u); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		writeJSON(stdout, u)
		return exitOK
	}
	fmt.Fprintf(stdout, "identity   %s (%s)\n", clean(u.Identity, 200), u.Domain)
	fmt.Fprintf(stdout, "user       %s\n", orDash(u.User))
	fmt.Fprintf(stdout, "last seen  %s UTC\n", fmtTime(u.LastSeen))
	if u.Lock != nil {
		until := "until unlocked"
		if !u.Lock.Expires.IsZero() {
			until = "until " + fmtTime(u.Lock.Expires) + " UTC"
		}
		fmt.Fprintf(stdout, "locked     by %s %s: %s\n", u.Lock.Actor, until, clean(u.Lock.Reason, 200))
	} else {
		fmt.Fprintln(stdout, "locked     no")
	}
	fmt.Fprintln(stdout)
	if len(u.Counters) == 0 && u.Lock != nil && u.Lock.Evidence != nil {
		// Nothing counted since the lock: show what led to it.
		ev := u.Lock.Evidence
		fmt.Fprintf(stdout, "nothing counted since the lock; it was taken at %d %s of %d in %s\n", ev.Count, ev.Counter, ev.Threshold, shortDuration(ev.Window))
		tw := table(stdout)
		row(tw, "COUNTER", "COUNT AT THE LOCK")
		names := make([]string, 0, len(ev.Counts))
		for n := range ev.Counts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if ev.Counts[n] > 0 {
				row(tw, n, fmt.Sprint(ev.Counts[n]))
			}
		}
		tw.Flush()
		return exitOK
	}
	tw := table(stdout)
	row(tw, "COUNTER", "COUNT", "THRESHOLD", "WINDOW")
	for _, c := range u.Counters {
		th := fmt.Sprint(c.Threshold)
		if c.Threshold == 0 {
			th = "off"
		}
		row(tw, c.Counter, fmt.Sprint(c.Count), th, shortDuration(c.Window))
	}
	tw.Flush()
	return exitOK
}

// shortDuration drops Go's trailing zero units: 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var notifyHelp = helpText(
	"outguard notify IDENTITY --domain D --reason TEXT [--dry-run] [--json]",
	`Sends the customer notice of the identity's administrative domain
(domains[].customer_notice) to its contact now, through the daemon's
notification outbox, which retries it like the notice a lock sends. The
notice is rendered with the data of the identity's lock: the identity must
be locked. outguard first shows the notice (recipient, subject, body), then
sends exactly what it showed: if the notice changed in between (a reload),
the send is refused and nothing goes out.

--reason is required to send and is kept in the audit trail (action
notify) with your token's name. --dry-run shows the notice and sends
nothing. Refused, with the reason, when the domain has no notice, the
identity is not locked, or the notice has no contact (it goes to the
identity, which is not an email address).

With --json, the notice as one document: domain, identity, to, subject,
body, sample, digest and queued (false with --dry-run).
`+clientHelp,
	`  outguard notify alice@customer.example --domain out.example.net --dry-run
  outguard notify alice@customer.example --domain out.example.net --reason "customer asked again, ticket 4712"`)

func runNotify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("notify", notifyHelp, stderr)
	cf := addClientFlags(fs, "notify")
	domain := fs.String("domain", "", "administrative `DOMAIN` of the identity (required)")
	reason := fs.String("reason", "", "why the customer is told now, for the audit trail (required to send)")
	dry := fs.Bool("dry-run", false, "show the notice, send nothing")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "notify", "give exactly one IDENTITY")
	}
	if *domain == "" {
		return usageError(stderr, "notify", "--domain D is required")
	}
	if !*dry && strings.TrimSpace(*reason) == "" {
		return usageError(stderr, "notify", "--reason TEXT is required to send (or give --dry-run to only show the notice)")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	path := "/identities/" + url.PathEscape(*domain) + "/" + url.PathEscape(fs.Arg(0)) + "/notice"
	var n apiv1.Notice
	if err := cl.call("GET", path, nil, nil, &n); err != nil {
		return cl.fail(err)
	}
	if !*dry {
		body := apiv1.NoticeRequest{Reason: *reason, Preview: n.Digest}
		if err := cl.call("POST", path, nil, body, &n); err != nil {
			if !cf.json {
				printNotice(stdout, n)
			}
			return cl.fail(err)
		}
	}
	if cf.json {
		writeJSON(stdout, n)
		return exitOK
	}
	printNotice(stdout, n)
	switch {
	case n.Queued:
		fmt.Fprintf(stdout, "\ncustomer notice to %s queued for sending\n", clean(n.To, 200))
	case n.Sample:
		fmt.Fprintf(stdout, "\n%s is not locked: this is the notice a lock would send; nothing can be sent now\n", clean(n.Identity, 200))
	case n.To == "":
		fmt.Fprintln(stdout, "\nno contact: the notice goes to the identity, which is not an email address; nothing can be sent")
	default:
		fmt.Fprintln(stdout, "\nnot sent (--dry-run)")
	}
	return exitOK
}

// printNotice shows a customer notice as its recipient would read it.
func printNotice(w io.Writer, n apiv1.Notice) {
	fmt.Fprintf(w, "to       %s\n", orDash(clean(n.To, 200)))
	fmt.Fprintf(w, "subject  %s\n\n", clean(n.Subject, 300))
	for _, l := range strings.Split(strings.TrimRight(n.Body, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", clean(l, 1000))
	}
}
