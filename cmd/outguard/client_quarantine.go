package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
)

var quarantineHelp = helpText(
	"outguard quarantine show ID [--json]\n"+
		"  outguard quarantine raw ID [--output FILE]\n"+
		"  outguard quarantine release ID [--reason TEXT] [--json]\n"+
		"  outguard quarantine delete ID [--reason TEXT] [--json]",
	`Acts on one message of the log, named by its log id (the id in the 550
reply, in the ARF report and in 'outguard logs').

  show     the record (status, verdict, score, reasons, envelope) and, while
           the content is quarantined, its header and a safe text rendering
           of its body (control characters removed, HTML turned into text).
  raw      the quarantined message exactly as received (an .eml file), on
           standard output or into --output FILE.
  release  delivers the quarantined message to the next hop with its
           original envelope. A message is delivered at most once; releasing
           it again reports the first release. A release also teaches the
           content model that the message is ham (not spam), when learning
           is on; 'outguard learn spam --id ID' confirms spam instead.
  delete   removes the quarantined content; the log record stays.

release and delete are written to the audit trail with your token's name
and the optional --reason. show prints the score, the band (clean, suspect
or spam), the content model version that judged the message and, once it
was taught to the model, as what. With --json, show prints {"message":
{...}, "content": {"header": [...], "body", "body_type", "truncated",
"parts"}} (message with the keys of 'outguard logs --json'), release {"id",
"released_at", "released_by", "already", "learned"} (learned, when the
model was taught: {"id", "as", "before", "after", "version"}), delete
{"id", "deleted"}.
`+clientHelp,
	`  outguard quarantine show 01JNB6Q8W5X2Y7Z3K4M5N6P7Q8
  outguard quarantine raw 01JNB6Q8W5X2Y7Z3K4M5N6P7Q8 --output message.eml
  outguard quarantine release 01JNB6Q8W5X2Y7Z3K4M5N6P7Q8 --reason "false positive, ticket 4711"
  outguard quarantine delete 01JNB6Q8W5X2Y7Z3K4M5N6P7Q8`)

func runQuarantine(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("quarantine", quarantineHelp, stderr)
	cf := addClientFlags(fs, "quarantine")
	reason := fs.String("reason", "", "why (release, delete): `TEXT` for the audit trail")
	output := fs.String("output", "", "write the raw message to `FILE` instead of standard output (raw)")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() == 0 {
		return usageError(stderr, "quarantine", "say what to do: show, raw, release or delete, and the log ID")
	}
	sub := fs.Arg(0)
	switch sub {
	case "help":
		return parseFlags(fs, []string{"--help"}, stdout)
	case "show", "raw", "release", "delete":
	default:
		return usageError(stderr, "quarantine", "unknown action %q: use show, raw, release or delete", sub)
	}
	cf.name = "quarantine " + sub
	if fs.NArg() != 2 {
		return usageError(stderr, "quarantine "+sub, "give exactly one log ID")
	}
	id := fs.Arg(1)
	if *output != "" && sub != "raw" {
		return usageError(stderr, "quarantine "+sub, "--output is for raw only")
	}
	if *reason != "" && (sub == "show" || sub == "raw") {
		return usageError(stderr, "quarantine "+sub, "--reason is for release and delete only")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	path := "/messages/" + url.PathEscape(id)
	var body any
	if *reason != "" {
		body = map[string]string{"reason": *reason}
	}
	switch sub {
	case "show":
		var d apiv1.MessageDetail
		if err := cl.call("GET", path, nil, nil, &d); err != nil {
			return cl.fail(err)
		}
		if cf.json {
			writeJSON(stdout, d)
		} else {
			printMessage(stdout, d)
		}
	case "raw":
		if _, err := download(cl, path+"/raw", *output, stdout); err != nil {
			return cl.fail(err)
		}
	case "release":
		var r apiv1.ReleaseResponse
		if err := cl.call("POST", path+"/release", nil, body, &r); err != nil {
			return cl.fail(err)
		}
		switch {
		case cf.json:
			writeJSON(stdout, r)
		case r.Already:
			fmt.Fprintf(stdout, "%s was already released by %s at %s UTC; not delivered again\n", r.ID, r.ReleasedBy, fmtTime(r.ReleasedAt))
		case r.Learned != nil:
			fmt.Fprintf(stdout, "released %s: delivered to the next hop; learnt as %s: %s\n", r.ID, r.Learned.As, learntScores(*r.Learned))
		default:
			fmt.Fprintf(stdout, "released %s: delivered to the next hop\n", r.ID)
		}
	case "delete":
		var r apiv1.DeleteResponse
		if err := cl.call("DELETE", path, nil, body, &r); err != nil {
			return cl.fail(err)
		}
		switch {
		case cf.json:
			writeJSON(stdout, r)
		case r.Already:
			fmt.Fprintf(stdout, "%s was already deleted by %s at %s UTC; nothing to do\n", r.ID, orDash(r.DeletedBy), fmtTime(r.DeletedAt))
		default:
			fmt.Fprintf(stdout, "deleted the quarantined content of %s; the log record stays\n", r.ID)
		}
	}
	return exitOK
}

// download writes the answer of GET path to the new file output (an
// existing file is not overwritten), or to stdout when output is "", and
// returns the bytes written. A partly written file is removed.
func download(cl *apiClient, path, output string, stdout io.Writer) (int64, error) {
	resp, err := cl.request("GET", path, nil, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	w := stdout
	var f *os.File
	if output != "" {
		f, err = os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return 0, err
		}
		w = f
	}
	n, err := io.Copy(w, resp.Body)
	if f != nil {
		err = errors.Join(err, f.Close())
		if err != nil {
			os.Remove(output)
		}
	}
	if err != nil {
		what := output
		if what == "" {
			what = "standard output"
		}
		return n, fmt.Errorf("writing %s: %w", what, err)
	}
	return n, nil
}

func printMessage(w io.Writer, d apiv1.MessageDetail) {
	m := d.Message
	tw := table(w)
	field := func(k, v string) { row(tw, k, v) }
	field("id", m.ID)
	field("time", fmtTime(m.Time)+" UTC")
	field("status", m.Status)
	field("verdict", fmt.Sprintf("%s (score %.2f)", m.Verdict, m.Score))
	if m.Verdict != "none" && m.Band != "" {
		field("band", m.Band)
	}
	if len(m.PartiallyScanned) > 0 {
		field("scanned", "partially: "+strings.Join(m.PartiallyScanned, ", ")+" reached")
	}
	if m.Model != "" {
		field("model", m.Model)
	}
	if m.Learned != "" {
		field("learnt", "as "+m.Learned)
	}
	// One reason a line: with the content model's tokens they no longer
	// fit one cell.
	for i, r := range m.Reasons {
		field(map[bool]string{true: "reasons"}[i == 0], r)
	}
	field("user", orDash(m.User)+" ("+orDash(m.Domain)+")")
	field("identity", orDash(m.Identity))
	field("client", orDash(m.ClientIP))
	sender := m.Sender
	if sender == "" {
		sender = "<>"
	}
	field("sender", sender)
	for _, r := range m.Recipients {
		s := r.Address
		if r.Code != 0 {
			s += fmt.Sprintf(" (%d %s)", r.Code, r.Text)
		}
		if r.Refused {
			s += " refused at RCPT"
		}
		field("recipient", s)
	}
	field("subject", m.Subject)
	field("message-id", orDash(m.MessageID))
	field("size", strconv.FormatInt(m.Size, 10)+" bytes")
	if m.NextHopReply != "" {
		field("next hop", m.NextHopReply)
	}
	if m.Complaints > 0 {
		field("complaints", strconv.Itoa(m.Complaints))
	}
	if q := m.Quarantine; q != nil {
		state := "stored"
		switch {
		case q.Expired:
			state = "expired"
		case !q.DeletedAt.IsZero():
			state = "deleted by " + q.DeletedBy + " at " + fmtTime(q.DeletedAt)
		}
		if !q.ReleasedAt.IsZero() {
			state += ", " + releaseNote(q, m.Learned)
		}
		field("quarantine", state)
	}
	tw.Flush()
	if d.Content == nil {
		return
	}
	fmt.Fprintln(w, "\nheader:")
	for _, h := range d.Content.Header {
		fmt.Fprintf(w, "  %s: %s\n", clean(h.Name, 80), clean(h.Value, 500))
	}
	if len(d.Content.Parts) > 0 {
		fmt.Fprintln(w, "\nparts:")
		for _, p := range d.Content.Parts {
			fmt.Fprintf(w, "  %s %s %d bytes\n", clean(p.Type, 100), clean(orDash(p.Filename), 100), p.Size)
		}
	}
	fmt.Fprintf(w, "\nbody (%s):\n", orDash(d.Content.BodyType))
	for _, line := range strings.Split(d.Content.Body, "\n") {
		fmt.Fprintf(w, "  %s\n", clean(strings.TrimRight(line, "\r"), 1000))
	}
	if d.Content.Truncated {
		fmt.Fprintln(w, "  [truncated; use 'outguard quarantine raw' for the whole message]")
	}
}

var feedbackHelp = helpText(
	"outguard feedback ingest [--json] FILE...\n       outguard feedback list [--counted true|false] [--limit N] [--json]",
	`Uploads third-party feedback reports (ARF, RFC 5965, or the legacy formats
of large mailbox providers) to the daemon, which parses each, attributes it
to an outgoing user and identity (by outguard's trace header, the
Message-ID found in the log, or the identity header of the original), counts
the complaint toward automatic locking and logs it. "-" reads standard
input. Each file is at most the daemon's arf.parse_max_bytes. Needs a token
of scope all. To only parse a report, without a daemon, use
'outguard arf parse'.

A complaint counts only when it comes from a reporter listed in
arf.reporters (an upload matches reporters that name domains and no
networks, by the report's From domain) and names mail outguard relayed
(trace header or Message-ID found in the log); the others are stored for
review with the reason they did not count. A file uploaded again is a
duplicate: nothing is stored or counted.

For each file one line tells whether it was accepted, to whom it was
attributed, and whether it counted; a file that is not a feedback report is
named with the reason (not-arf, no-feedback-report, ...). With --json, one
object per file and line: the keys of 'outguard arf parse --json' plus id,
attributed, tx_id, user, domain, identity, reporter, counted, not_counted,
duplicate, duplicate_of and locked. The exit status is 1 if any file was
refused. With more than one file, a progress bar runs on standard error
while it is a terminal, and a summary line ends the run there.

'feedback list' shows the stored reports, newest first, with their
reporter, attribution and whether they counted (and why not).
`+clientHelp,
	`  outguard feedback ingest complaint.eml
  outguard feedback ingest --json /var/spool/fbl/*.eml
  fetchmail-output | outguard feedback ingest -`)

func runFeedback(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("feedback", feedbackHelp, stderr)
	cf := addClientFlags(fs, "feedback")
	limit := fs.Int("limit", 100, "list at most `N` reports (1 to 1000)")
	counted := fs.String("counted", "", "list only counted (true) or only not counted (false) reports")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	switch fs.Arg(0) {
	case "help":
		return parseFlags(fs, []string{"--help"}, stdout)
	case "ingest":
	case "list":
		if fs.NArg() > 1 {
			return usageError(stderr, "feedback list", "takes no arguments, only --limit and --counted")
		}
		switch *counted {
		case "", "true", "false":
		default:
			return usageError(stderr, "feedback list", "--counted %q: use true or false", *counted)
		}
		cl, code := cf.client(stderr)
		if cl == nil {
			return code
		}
		return listFeedback(cl, cf, *limit, *counted, stdout, stderr)
	case "":
		return usageError(stderr, "feedback", "say what to do: feedback ingest FILE... or feedback list")
	default:
		return usageError(stderr, "feedback", "unknown action %q: use feedback ingest FILE... or feedback list", fs.Arg(0))
	}
	files := fs.Args()[1:]
	if len(files) == 0 {
		return usageError(stderr, "feedback ingest", "give at least one FILE (or - for standard input)")
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	status := exitOK
	prog := newProgress(stderr, "outguard feedback ingest", "reports", len(files))
	defer prog.finish()
	for _, name := range files {
		res, err := ingestFile(cl, name)
		prog.clear()
		outcome := printIngested(stdout, stderr, cf.json, name, res, err)
		if outcome != "accepted" && outcome != "duplicates" {
			status = exitFailed
		}
		prog.step(outcome)
	}
	return status
}

// printIngested prints the outcome of one uploaded report and names it
// for the summary line: accepted, duplicates, refused or errors.
func printIngested(stdout, stderr io.Writer, asJSON bool, name string, res apiv1.FeedbackResult, err error) string {
	if err != nil {
		if asJSON {
			writeJSON(stdout, map[string]any{"file": name, "ok": false, "error": "request-failed", "detail": err.Error()})
		}
		fmt.Fprintf(stderr, "outguard feedback ingest: %s: %v\n", name, err)
		return "errors"
	}
	outcome := "accepted"
	switch {
	case !res.OK:
		outcome = "refused"
	case res.Duplicate && res.ID == "":
		outcome = "duplicates"
	}
	if asJSON {
		writeJSON(stdout, res)
		return outcome
	}
	switch {
	case !res.OK:
		fmt.Fprintf(stdout, "%s: refused: %s (%s)\n", name, res.Error, clean(res.Detail, 300))
	case res.Duplicate && res.ID == "":
		fmt.Fprintf(stdout, "%s: duplicate: already received as %s; nothing stored or counted\n", name, clean(res.DuplicateOf, 40))
	case !res.Attributed:
		fmt.Fprintf(stdout, "%s: accepted %s report (id %s), not attributed to any user%s\n", name, clean(res.FeedbackType, 40), clean(res.ID, 40), notCounted(res))
	default:
		fmt.Fprintf(stdout, "%s: accepted %s report (id %s) about %s, user %s, identity %s (%s), by %s%s%s\n", name, clean(res.FeedbackType, 40),
			clean(res.ID, 40), orDash(res.TxID), orDash(res.User), clean(orDash(res.Identity), 200), res.Domain, res.Attribution,
			notCounted(res), map[bool]string{true: ", identity locked"}[res.Locked])
	}
	return outcome
}

// notCounted says whether a complaint counted toward automatic locking,
// and why not.
func notCounted(res apiv1.FeedbackResult) string {
	switch {
	case res.Counted:
		return ", complaint counted"
	case res.Duplicate:
		return ", not counted: duplicate of " + clean(res.DuplicateOf, 40)
	case res.NotCounted != "":
		return ", not counted: " + clean(res.NotCounted, 40)
	}
	return ""
}

// listFeedback prints stored reports, newest first.
func listFeedback(cl *apiClient, cf *clientFlags, limit int, counted string, stdout, stderr io.Writer) int {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if counted != "" {
		q.Set("counted", counted)
	}
	resp, err := cl.request("GET", "/feedback", q, nil, "")
	if err != nil {
		fmt.Fprintf(stderr, "outguard feedback list: %v\n", err)
		return exitFailed
	}
	defer resp.Body.Close()
	var list apiv1.FeedbackList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(&list); err != nil {
		fmt.Fprintf(stderr, "outguard feedback list: %v\n", err)
		return exitFailed
	}
	if cf.json {
		writeJSON(stdout, list)
		return exitOK
	}
	for _, r := range list.Reports {
		fmt.Fprintf(stdout, "%s %s %s from %s (%s): %s %s, identity %s%s\n", clean(r.ID, 40), r.Received.UTC().Format(time.RFC3339),
			clean(r.FeedbackType, 40), clean(orDash(r.Reporter), 60), clean(r.Source, 200), clean(r.Attribution, 20),
			orDash(r.TxID), clean(orDash(r.Identity), 200), notCounted(r))
	}
	return exitOK
}

// ingestFile uploads one report. A report refused by the parser is a
// result with OK false, not an error.
func ingestFile(cl *apiClient, name string) (apiv1.FeedbackResult, error) {
	raw, err := readArg(name)
	if err != nil {
		return apiv1.FeedbackResult{}, err
	}
	resp, err := cl.request("POST", "/feedback", url.Values{"source": {name}}, bytes.NewReader(raw), "message/rfc822")
	var ae *apiError
	if errors.As(err, &ae) && ae.status == 422 {
		// Not a feedback report: the answer carries the parse result.
		var refused struct {
			Result apiv1.FeedbackResult `json:"result"`
		}
		if json.Unmarshal(ae.body, &refused) == nil && refused.Result.Error != "" {
			refused.Result.File = name
			return refused.Result, nil
		}
		return apiv1.FeedbackResult{}, err
	}
	if err != nil {
		return apiv1.FeedbackResult{}, err
	}
	defer resp.Body.Close()
	var res apiv1.FeedbackResult
	err = json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(&res)
	return res, err
}

var auditHelp = helpText(
	"outguard audit [--action A] [--actor NAME] [--domain D] [--since 7d] [--limit N] [--cursor C] [--json]",
	`Lists the audit trail, newest first: every lock, unlock, release, delete,
message taught to the content model, change of the model's overlay,
feedback upload and reload done through the admin API (CLI, console), with
the token's name, the target and the reason. --action is lock, unlock,
notify, release, delete, learn, model, feedback or reload. A token scoped to one domain sees the
entries of that domain only. When there are more than --limit entries
(default 100), the cursor to continue with is printed on standard error.

With --json, one entry per line: id, at, actor, scope, action, target (kind,
domain, name), reason, detail.
`+clientHelp,
	`  outguard audit --since 24h
  outguard audit --action unlock --domain out.example.net
  outguard audit --actor alice-admin --json`)

func runAudit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("audit", auditHelp, stderr)
	cf := addClientFlags(fs, "audit")
	action := fs.String("action", "", "only `ACTION`: lock, unlock, notify, release, delete, learn, model, feedback, reload")
	actor := fs.String("actor", "", "only entries of the token `NAME`")
	domain := fs.String("domain", "", "only targets in administrative `DOMAIN`")
	since := fs.String("since", "", "only the last `DURATION` (24h, 7d)")
	limit := fs.Int("limit", 100, "at most `N` entries (1 to 1000)")
	cursor := fs.String("cursor", "", "continue a previous listing with its `CURSOR`")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "audit", "unexpected argument %q", fs.Arg(0))
	}
	switch *action {
	case "", "lock", "unlock", "notify", "release", "delete", "learn", "model", "feedback", "reload":
	default:
		return usageError(stderr, "audit", "--action %q: use lock, unlock, notify, release, delete, learn, model, feedback or reload", *action)
	}
	if c, ok := checkDuration(stderr, "audit", "since", *since); !ok {
		return c
	}
	if *limit < 1 || *limit > 1000 {
		return usageError(stderr, "audit", "--limit %d: use 1 to 1000", *limit)
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"action": *action, "actor": *actor, "domain": *domain, "since": *since, "cursor": *cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var res apiv1.AuditList
	if err := cl.call("GET", "/audit", q, nil, &res); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		for _, e := range res.Entries {
			writeJSON(stdout, e)
		}
	} else if len(res.Entries) == 0 {
		fmt.Fprintln(stdout, "no audit entries")
	} else {
		tw := table(stdout)
		row(tw, "TIME (UTC)", "ACTOR", "ACTION", "TARGET", "REASON", "DETAIL")
		for _, e := range res.Entries {
			target := e.Target.Kind
			if e.Target.Name != "" {
				target += " " + e.Target.Name
			}
			if e.Target.Domain != "" {
				target += " (" + e.Target.Domain + ")"
			}
			row(tw, fmtTime(e.At), e.Actor, e.Action, target, orDash(e.Reason), orDash(e.Detail))
		}
		tw.Flush()
	}
	if res.NextCursor != "" {
		fmt.Fprintf(stderr, "more entries: continue with --cursor %s\n", res.NextCursor)
	}
	return exitOK
}
