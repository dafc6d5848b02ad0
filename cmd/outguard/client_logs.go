package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/outguard/outguard/admin/apiv1"
)

var logsHelp = helpText(
	"outguard logs [--status S,...] [--verdict V,...] [--user U] [--domain D] [--identity I]\n"+
		"               [--sender S] [--recipient R] [--subject S] [--message-id ID] [--client-ip IP] [--partial]\n"+
		"               [--since 24h | --from T --to T] [--limit N] [--cursor C] [--json | --csv]",
	`Searches the message log: one record per SMTP transaction that reached
DATA, newest first. Every given rule must match. --status and --verdict take
a comma-separated list, any of which may match: statuses are accepted,
quarantined, released (quarantined, then released), rejected, deferred and
failed; verdicts are clean, spam,
phishing, virus and none (refused before classification). --user, --domain,
--identity and --message-id match exactly; --sender, --recipient and
--subject match when the field contains the text, ignoring case. --partial
keeps the messages whose content was partially scanned (content past a
scanning limit; see docs/config-filter.md).

--since takes a duration back from now (90m, 24h, 7d, 2w); --from and --to
take RFC 3339 times or UTC dates (2026-03-01, 2026-03-01T12:00). At most
--limit records are printed (default 50, at most 1000); when there are more,
the cursor to continue with is printed on standard error.

The table shows the time (UTC), the log id, status, verdict (followed by
"(partial: LIMITS)" when content past a scanning limit went unscanned, e.g.
"clean (partial: max_depth)"), score, band
(clean, suspect or spam; "-" for mail refused before classification),
outgoing user, identity, envelope sender, the first recipient (+N more) and
the subject. With --json, one object per record and line, with the keys id,
time, listener, client_ip, client_port, user, domain, identity, sender,
recipients (address, code, text, refused), header_from, subject,
message_id, size, status, verdict, score, reasons, band, model (the content
model version that judged the message), learned (spam or ham, once the
model was taught with the message), partially_scanned (the limits that
left content unscanned; absent when all was scanned), next_hop_reply, duration_ms,
complaints and, for quarantined messages, quarantine (raw_size,
stored_size, has_content, released_at, released_by, release_reason,
release_learn, deleted_at, deleted_by, expired). Below the table, each
released message of the page is listed with who released it, when, the
reason given and whether it was learnt as ham.

With --csv, every matching record is written as CSV (RFC 4180) with a
header row, following the cursors page by page (--limit is then the page
size): time, id, status, verdict, score, band, user, domain, identity,
sender, recipients (space-separated), subject, message_id, client_ip and
size, the columns of the console's export. A cell that a spreadsheet would
read as a formula (starting with =, +, -, @) gets a leading apostrophe.
`+clientHelp,
	`  outguard logs --since 1h --status quarantined
  outguard logs --identity alice@customer.example --since 7d
  outguard logs --verdict spam,phishing --user webhost1 --limit 200
  outguard logs --subject invoice --from 2026-03-01 --to 2026-03-02
  outguard logs --status rejected --json | jq -r .id
  outguard logs --identity alice@customer.example --since 30d --csv > alice.csv`)

func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("logs", logsHelp, stderr)
	cf := addClientFlags(fs, "logs")
	q := map[string]*string{}
	for _, f := range []struct{ flag, param, usage string }{
		{"status", "status", "comma-separated `STATUSES`: accepted,quarantined,released,rejected,deferred,failed"},
		{"verdict", "verdict", "comma-separated `VERDICTS`: clean,spam,phishing,virus,none"},
		{"user", "user", "outgoing `USER`"},
		{"domain", "domain", "administrative `DOMAIN`"},
		{"identity", "identity", "`IDENTITY`"},
		{"sender", "sender", "envelope sender contains `TEXT`"},
		{"recipient", "recipient", "a recipient contains `TEXT`"},
		{"subject", "subject", "subject contains `TEXT`"},
		{"message-id", "message_id", "Message-ID `ID` (angle brackets optional)"},
		{"client-ip", "client_ip", "sending MTA's `IP` address"},
		{"since", "since", "from `DURATION` ago (90m, 24h, 7d)"},
		{"from", "from", "start `TIME` (RFC 3339 or UTC date)"},
		{"to", "to", "end `TIME` (RFC 3339 or UTC date)"},
		{"cursor", "cursor", "continue a previous search with its `CURSOR`"},
	} {
		q[f.param] = fs.String(f.flag, "", f.usage)
	}
	limit := fs.Int("limit", 50, "print at most `N` records (1 to 1000)")
	partial := fs.Bool("partial", false, "only messages whose content was partially scanned")
	asCSV := fs.Bool("csv", false, "write every matching record as CSV, with a header row")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "logs", "unexpected argument %q; the search rules are flags", fs.Arg(0))
	}
	if *q["since"] != "" && (*q["from"] != "" || *q["to"] != "") {
		return usageError(stderr, "logs", "give --since or --from/--to, not both")
	}
	if c, ok := checkDuration(stderr, "logs", "since", *q["since"]); !ok {
		return c
	}
	for _, f := range []string{"from", "to"} {
		if c, ok := checkTime(stderr, "logs", f, *q[f]); !ok {
			return c
		}
	}
	if *limit < 1 || *limit > 1000 {
		return usageError(stderr, "logs", "--limit %d: use 1 to 1000", *limit)
	}
	if *asCSV && cf.json {
		return usageError(stderr, "logs", "give --json or --csv, not both")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	query := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *partial {
		query.Set("partial", "true")
	}
	for k, v := range q {
		if *v != "" {
			query.Set(k, *v)
		}
	}
	if *asCSV {
		if err := writeLogsCSV(stdout, cl, query); err != nil {
			return cl.fail(err)
		}
		return exitOK
	}
	var res apiv1.SearchResponse
	if err := cl.call("GET", "/messages", query, nil, &res); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		for _, m := range res.Messages {
			writeJSON(stdout, m)
		}
	} else {
		printMessages(stdout, res.Messages)
	}
	if res.NextCursor != "" {
		fmt.Fprintf(stderr, "more records: continue with --cursor %s\n", res.NextCursor)
	} else if res.Partial {
		fmt.Fprintln(stderr, "the search stopped at its scan bound; narrow it (e.g. with --since)")
	}
	return exitOK
}

func printMessages(w io.Writer, msgs []apiv1.Message) {
	if len(msgs) == 0 {
		fmt.Fprintln(w, "no matching records")
		return
	}
	tw := table(w)
	row(tw, "TIME (UTC)", "ID", "STATUS", "VERDICT", "SCORE", "BAND", "USER", "IDENTITY", "SENDER", "RECIPIENTS", "SUBJECT")
	for _, m := range msgs {
		rcpt := "-"
		if len(m.Recipients) > 0 {
			rcpt = m.Recipients[0].Address
			if len(m.Recipients) > 1 {
				rcpt += fmt.Sprintf(" +%d", len(m.Recipients)-1)
			}
		}
		sender := m.Sender
		if sender == "" {
			sender = "<>"
		}
		score, band := fmt.Sprintf("%.1f", m.Score), orDash(m.Band)
		if m.Verdict == "none" {
			score, band = "-", "-"
		}
		verdict := m.Verdict
		if len(m.PartiallyScanned) > 0 {
			// Clean as far as the engines could see: say what they could not.
			verdict += " (partial: " + strings.Join(m.PartiallyScanned, ",") + ")"
		}
		row(tw, fmtTime(m.Time), m.ID, m.Status, verdict, score, band, orDash(m.User), orDash(m.Identity), sender, rcpt, clean(m.Subject, 50))
	}
	tw.Flush()
	first := true
	for _, m := range msgs {
		if q := m.Quarantine; q != nil && !q.ReleasedAt.IsZero() {
			if first {
				fmt.Fprintln(w, "\nreleases:")
				first = false
			}
			fmt.Fprintf(w, "  %s %s\n", m.ID, releaseNote(q, m.Learned))
		}
	}
}

// releaseNote says who released a message, when, why, and whether the
// release asked to teach the content model the message as ham.
func releaseNote(q *apiv1.Quarantine, learned string) string {
	s := "released by " + q.ReleasedBy + " at " + fmtTime(q.ReleasedAt) + " UTC"
	if q.ReleaseReason != "" {
		s += ": " + clean(q.ReleaseReason, 200)
	} else {
		s += " (no reason recorded)"
	}
	switch {
	case q.ReleaseLearn && learned == "ham":
		s += "; learnt as ham"
	case q.ReleaseLearn:
		s += "; learning as ham was asked, not done"
	default:
		s += "; not learnt"
	}
	return s
}

var reportHelp = helpText(
	"outguard report --group-by identity|user|domain|sender [--classification C]\n"+
		"                 [--since 7d | --from T --to T] [--domain D] [--limit N] [--json]",
	`Counts the message log's records per identity, outgoing user, administrative
domain or envelope sender over a period (default the last 7 days), largest
first. --classification keeps one kind of mail: accepted (relayed), rejected
(quarantined or refused), spam, phishing or virus (whatever was done with
it, so spam relayed in monitor mode counts as spam); by default all mail is
counted. Periods are counted in whole hours.

The table shows the domain, the group's key ("-" counts mail without an
identity, or with the null sender), the count and, for identities and
users, whether they are locked now. With --json, one object per row and
line: domain, key, count, locked.
`+clientHelp,
	`  outguard report --group-by identity --classification spam
  outguard report --group-by user --since 24h --limit 10
  outguard report --group-by sender --classification phishing --domain out.example.net
  outguard report --group-by domain --from 2026-03-01 --to 2026-03-08 --json`)

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report", reportHelp, stderr)
	cf := addClientFlags(fs, "report")
	groupBy := fs.String("group-by", "", "group by `KIND`: identity, user, domain or sender (required)")
	class := fs.String("classification", "", "count only `C`: accepted, rejected, spam, phishing or virus")
	since := fs.String("since", "", "period from `DURATION` ago (default 7d)")
	from := fs.String("from", "", "period start `TIME` (RFC 3339 or UTC date)")
	to := fs.String("to", "", "period end `TIME` (default now)")
	domain := fs.String("domain", "", "only administrative `DOMAIN`")
	limit := fs.Int("limit", 20, "print at most `N` rows (1 to 10000)")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "report", "unexpected argument %q", fs.Arg(0))
	}
	switch *groupBy {
	case "identity", "user", "domain", "sender":
	case "":
		return usageError(stderr, "report", "--group-by is required: identity, user, domain or sender")
	default:
		return usageError(stderr, "report", "--group-by %q: use identity, user, domain or sender", *groupBy)
	}
	switch *class {
	case "", "all", "accepted", "rejected", "spam", "phishing", "virus", "clean":
	default:
		return usageError(stderr, "report", "--classification %q: use accepted, rejected, spam, phishing or virus", *class)
	}
	if *since != "" && (*from != "" || *to != "") {
		return usageError(stderr, "report", "give --since or --from/--to, not both")
	}
	if c, ok := checkDuration(stderr, "report", "since", *since); !ok {
		return c
	}
	for f, v := range map[string]string{"from": *from, "to": *to} {
		if c, ok := checkTime(stderr, "report", f, v); !ok {
			return c
		}
	}
	if *limit < 1 || *limit > 10000 {
		return usageError(stderr, "report", "--limit %d: use 1 to 10000", *limit)
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	query := url.Values{"group_by": {*groupBy}, "limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"classification": *class, "since": *since, "from": *from, "to": *to, "domain": *domain} {
		if v != "" {
			query.Set(k, v)
		}
	}
	var res apiv1.ReportResponse
	if err := cl.call("GET", "/reports", query, nil, &res); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		for _, r := range res.Rows {
			writeJSON(stdout, r)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "%s mail by %s, %s to %s (UTC)\n", res.Classification, res.GroupBy, fmtTime(res.From), fmtTime(res.To))
	if len(res.Rows) == 0 {
		fmt.Fprintln(stdout, "no mail in this period")
		return exitOK
	}
	tw := table(stdout)
	lockable := res.GroupBy == "identity" || res.GroupBy == "user"
	head := []string{"DOMAIN", strings.ToUpper(res.GroupBy), "COUNT"}
	if res.GroupBy == "domain" {
		head = []string{"DOMAIN", "COUNT"}
	}
	if lockable {
		head = append(head, "LOCKED")
	}
	row(tw, head...)
	for _, r := range res.Rows {
		cells := []string{r.Domain, orDash(r.Key), strconv.FormatInt(r.Count, 10)}
		if res.GroupBy == "domain" {
			cells = []string{r.Domain, strconv.FormatInt(r.Count, 10)}
		}
		if lockable {
			cells = append(cells, map[bool]string{true: "yes", false: "no"}[r.Locked])
		}
		row(tw, cells...)
	}
	tw.Flush()
	return exitOK
}
