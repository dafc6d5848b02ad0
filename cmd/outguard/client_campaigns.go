package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
)

var campaignsHelp = helpText(
	"outguard campaigns [list] [--since D] [--min-identities N] [--min-users N] [--confirmed] [--identity I] [--limit N] [--before T] [--json]\n"+
		"  outguard campaigns show ID [--json]\n"+
		"  outguard campaigns lock ID --reason TEXT [--duration D] [--json]\n"+
		"  outguard campaigns confirm|unconfirm ID [--json]",
	`A campaign is the same content sent by several identities, each copy
changed for its recipient: another name in the greeting, another tracking
link, another order number. The daemon fingerprints every message's text
and attachments and groups near-duplicates into campaigns with a stable id
(docs/campaigns.md). The daemon's configuration turns campaign detection
on; while it is off every action fails with status 1 (HTTP 501).

list (the default) shows the campaigns most recently seen first: id, last
and first seen, messages, recipients, distinct identities and users,
verdicts (clean/suspect/spam), whether confirmed, and the log id of a
sample message. --since keeps campaigns seen within a duration (1h, 24h,
7d); --min-identities and --min-users those sent by at least that many
identities or users; --confirmed the confirmed ones; --identity those sent
by one identity. --limit sets the page size (1 to 1000, default 100); when
a page is full, the last line on standard error gives the --before value
of the next page. A token scoped to one domain lists the campaigns with at
least one identity of its domain.

show prints one campaign: its counts, the sample message and every
tracked identity with its domain, user, messages, recipients, last
message and whether it is locked now. A domain-scoped token sees its own
domain's identities; the others are counted, not named.

lock locks every identity of the campaign that is not locked yet, each
through the same checks, history and audit trail as 'outguard lock', with
the reason (which names the campaign) and --duration (90m, 12h, 7d; without
it the locks are permanent). Identities already locked, of an unknown
domain, or (for a domain-scoped token) of another domain are skipped and
reported. It prints one line per identity locked or skipped.

confirm marks the campaign as confirmed spam: from then on the daemon
refuses every near-duplicate of it, from any identity, with 550 5.7.1
naming the campaign. unconfirm withdraws that at once. Both need a token of
scope all and are written to the audit trail.

With --json: list prints one campaign per line with the keys id,
first_seen, last_seen, messages, recipients, blocked, identities, users,
verdicts (clean, suspect, spam), confirmed, confirmed_by, confirmed_at,
sample_tx; show prints one document with those keys and identities (domain,
identity, user, messages, recipients, last_seen, last_tx, locked) and
hidden_identities; lock prints one document with campaign, locked (the
locks), skipped (domain, identity, reason: already_locked, unknown_domain,
no_domain) and skipped_other_domains; confirm and unconfirm print the
campaign.

An unknown campaign id (or one whose traffic has left the daemon's
window) fails with status 1.
`+clientHelp,
	`  outguard campaigns --since 1h --min-users 5
  outguard campaigns show 01KB2X7ZQ0V4M8K2
  outguard campaigns lock 01KB2X7ZQ0V4M8K2 --reason "botnet phish, ticket 4711" --duration 7d
  outguard campaigns confirm 01KB2X7ZQ0V4M8K2
  outguard campaigns --json --confirmed | jq -r .id`)

func runCampaigns(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("campaigns", campaignsHelp, stderr)
	cf := addClientFlags(fs, "campaigns")
	since := fs.String("since", "", "only campaigns last seen within `DURATION` (1h, 24h, 7d)")
	minIdents := fs.Int("min-identities", 0, "only campaigns sent by at least `N` identities")
	minUsers := fs.Int("min-users", 0, "only campaigns sent by at least `N` outgoing users")
	confirmed := fs.Bool("confirmed", false, "only confirmed campaigns")
	ident := fs.String("identity", "", "only campaigns sent by `IDENTITY`")
	limit := fs.Int("limit", 100, "at most `N` campaigns (1 to 1000)")
	before := fs.String("before", "", "the next page: campaigns last seen before `TIME` (printed after a full page)")
	reason := fs.String("reason", "", "lock: why, `TEXT` for each lock's history and the audit trail (required)")
	duration := fs.String("duration", "", "lock: make the locks temporary, `DURATION` like 90m, 12h, 7d")
	if c := parseFlags(fs, args, stdout); c >= 0 {
		return c
	}
	sub := "list"
	rest := fs.Args()
	if len(rest) > 0 {
		sub, rest = rest[0], rest[1:]
	}
	listFlags := *since != "" || *minIdents != 0 || *minUsers != 0 || *confirmed || *ident != "" || *limit != 100 || *before != ""
	switch sub {
	case "help":
		return parseFlags(fs, []string{"--help"}, stdout)
	case "list":
		if len(rest) > 0 {
			return usageError(stderr, "campaigns", "unexpected argument %q", rest[0])
		}
	case "show", "lock", "confirm", "unconfirm":
		cf.name = "campaigns " + sub
		if len(rest) != 1 {
			return usageError(stderr, cf.name, "give exactly one campaign ID")
		}
		if listFlags {
			return usageError(stderr, cf.name, "the list filters (--since, --min-identities, ...) are for list")
		}
	default:
		return usageError(stderr, "campaigns", "unknown action %q: use list, show, lock, confirm or unconfirm", sub)
	}
	if sub != "lock" && (*reason != "" || *duration != "") {
		return usageError(stderr, cf.name, "--reason and --duration are for lock")
	}
	if sub == "lock" {
		if strings.TrimSpace(*reason) == "" {
			return usageError(stderr, cf.name, "--reason TEXT is required")
		}
		if c, ok := checkDuration(stderr, cf.name, "duration", *duration); !ok {
			return c
		}
	}
	q := url.Values{}
	if sub == "list" {
		if c, ok := checkDuration(stderr, "campaigns", "since", *since); !ok {
			return c
		}
		if *limit < 1 || *limit > 1000 {
			return usageError(stderr, "campaigns", "--limit %d: use 1 to 1000", *limit)
		}
		if *before != "" {
			if _, err := time.Parse(time.RFC3339Nano, *before); err != nil {
				return usageError(stderr, "campaigns", "--before %q: pass the value printed after the previous page (an RFC 3339 time)", *before)
			}
		}
		if *minIdents < 0 || *minUsers < 0 {
			return usageError(stderr, "campaigns", "--min-identities and --min-users count: use 0 or more")
		}
		q.Set("limit", strconv.Itoa(*limit))
		for k, v := range map[string]string{"since": *since, "identity": *ident, "before": *before} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *minIdents > 0 {
			q.Set("min_identities", strconv.Itoa(*minIdents))
		}
		if *minUsers > 0 {
			q.Set("min_users", strconv.Itoa(*minUsers))
		}
		if *confirmed {
			q.Set("confirmed", "true")
		}
	}
	cl, code := cf.client(stderr)
	if cl == nil {
		return code
	}
	switch sub {
	case "list":
		return campaignsList(cl, cf, q, stdout, stderr)
	case "show":
		return campaignShow(cl, cf, rest[0], stdout)
	case "lock":
		var res apiv1.CampaignLockResult
		if err := cl.call("POST", campaignPath(rest[0])+"/lock", nil, apiv1.CampaignLockRequest{Reason: *reason, Duration: *duration}, &res); err != nil {
			return cl.fail(err)
		}
		if cf.json {
			writeJSON(stdout, res)
			return exitOK
		}
		for _, l := range res.Locked {
			until := "until unlocked"
			if !l.Expires.IsZero() {
				until = "until " + fmtTime(l.Expires) + " UTC"
			}
			fmt.Fprintf(stdout, "locked   %s (%s) %s\n", clean(l.Name, 200), l.Domain, until)
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(stdout, "skipped  %s (%s): %s\n", clean(s.Identity, 200), orDash(s.Domain), strings.ReplaceAll(s.Reason, "_", " "))
		}
		if res.SkippedOtherDomains > 0 {
			fmt.Fprintf(stdout, "skipped  %d identities of other administrative domains\n", res.SkippedOtherDomains)
		}
		fmt.Fprintf(stdout, "campaign %s: %d locked, %d skipped\n", res.Campaign, len(res.Locked), len(res.Skipped)+res.SkippedOtherDomains)
		return exitOK
	default: // confirm, unconfirm
		var c apiv1.Campaign
		if err := cl.call("POST", campaignPath(rest[0])+"/"+sub, nil, nil, &c); err != nil {
			return cl.fail(err)
		}
		if cf.json {
			writeJSON(stdout, c)
			return exitOK
		}
		if c.Confirmed {
			fmt.Fprintf(stdout, "campaign %s confirmed as spam by %s: its near-duplicates are refused from every identity\n", c.ID, c.ConfirmedBy)
		} else {
			fmt.Fprintf(stdout, "campaign %s not confirmed\n", c.ID)
		}
		return exitOK
	}
}

// campaignPath is the API path of one campaign.
func campaignPath(id string) string { return "/campaigns/" + url.PathEscape(id) }

func campaignsList(cl *apiClient, cf *clientFlags, q url.Values, stdout, stderr io.Writer) int {
	var res apiv1.CampaignList
	if err := cl.call("GET", "/campaigns", q, nil, &res); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		for _, c := range res.Campaigns {
			writeJSON(stdout, c)
		}
	} else if len(res.Campaigns) == 0 {
		fmt.Fprintln(stdout, "no campaigns")
	} else {
		tw := table(stdout)
		row(tw, "ID", "LAST SEEN (UTC)", "FIRST SEEN (UTC)", "MESSAGES", "RECIPIENTS", "IDENTITIES", "USERS", "CLEAN/SUSPECT/SPAM", "CONFIRMED", "SAMPLE")
		for _, c := range res.Campaigns {
			conf := "no"
			if c.Confirmed {
				conf = "by " + c.ConfirmedBy
			}
			row(tw, c.ID, fmtTime(c.LastSeen), fmtTime(c.FirstSeen), u64(c.Messages), u64(c.Recipients), u64(c.Identities), u64(c.Users),
				u64(c.Verdicts.Clean)+"/"+u64(c.Verdicts.Suspect)+"/"+u64(c.Verdicts.Spam), conf, orDash(c.SampleTx))
		}
		tw.Flush()
	}
	if res.Next != "" {
		fmt.Fprintf(stderr, "more: add --before %s for the next page\n", res.Next)
	}
	return exitOK
}

func campaignShow(cl *apiClient, cf *clientFlags, id string, stdout io.Writer) int {
	var d apiv1.CampaignDetail
	if err := cl.call("GET", campaignPath(id), nil, nil, &d); err != nil {
		return cl.fail(err)
	}
	if cf.json {
		writeJSON(stdout, d)
		return exitOK
	}
	conf := "no"
	if d.Confirmed {
		conf = "by " + d.ConfirmedBy + " at " + fmtTime(d.ConfirmedAt) + " UTC"
	}
	fmt.Fprintf(stdout, "campaign    %s\n", d.ID)
	fmt.Fprintf(stdout, "first seen  %s UTC\n", fmtTime(d.FirstSeen))
	fmt.Fprintf(stdout, "last seen   %s UTC\n", fmtTime(d.LastSeen))
	fmt.Fprintf(stdout, "messages    %d (%d blocked), %d recipients\n", d.Messages, d.Blocked, d.Recipients)
	fmt.Fprintf(stdout, "senders     %d identities, %d users\n", d.Identities, d.Users)
	fmt.Fprintf(stdout, "verdicts    %d clean, %d suspect, %d spam\n", d.Verdicts.Clean, d.Verdicts.Suspect, d.Verdicts.Spam)
	fmt.Fprintf(stdout, "confirmed   %s\n", conf)
	fmt.Fprintf(stdout, "sample      %s\n", orDash(d.SampleTx))
	fmt.Fprintln(stdout)
	tw := table(stdout)
	row(tw, "IDENTITY", "DOMAIN", "USER", "MESSAGES", "RECIPIENTS", "LAST SEEN (UTC)", "LAST MESSAGE", "LOCKED")
	for _, m := range d.Members {
		locked := "no"
		if m.Locked {
			locked = "yes"
		}
		row(tw, m.Identity, orDash(m.Domain), m.User, u64(m.Messages), u64(m.Recipients), fmtTime(m.LastSeen), orDash(m.LastTx), locked)
	}
	tw.Flush()
	if d.HiddenIdentities > 0 {
		fmt.Fprintf(stdout, "(%d identities of other administrative domains not shown)\n", d.HiddenIdentities)
	}
	return exitOK
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }
