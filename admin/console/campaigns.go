package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/duration"
)

// campaignURL is the console page of a campaign.
func campaignURL(id string) string { return "/campaigns/" + url.PathEscape(id) }

// campaignPeriods are the list's choices of last seen.
var campaignPeriods = []struct{ Value, Label string }{{"", "any time"}, {"1h", "last hour"}, {"24h", "last 24 hours"}, {"7d", "last 7 days"}}

// campaignRow is a listed campaign with its page.
type campaignRow struct {
	ops.Campaign
	URL string
}

// campaignsPage lists campaigns, most recently seen first, with the API's
// filters and paging.
func (c *Console) campaignsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	// Empty form fields mean no filter.
	v := r.URL.Query()
	for k, vs := range v {
		if len(vs) == 1 && strings.TrimSpace(vs[0]) == "" {
			v.Del(k)
		}
	}
	q, err := c.campaignQuery(v)
	if err != nil {
		return err
	}
	list, err := c.ops.ListCampaigns(r.Context(), s.p, q)
	if err != nil {
		return err
	}
	rows := make([]campaignRow, 0, len(list))
	for _, x := range list {
		rows = append(rows, campaignRow{Campaign: x, URL: campaignURL(x.ID)})
	}
	data := map[string]any{"Title": "Campaigns", "Rows": rows, "Periods": campaignPeriods,
		"Since": v.Get("since"), "MinIdentities": v.Get("min_identities"), "MinUsers": v.Get("min_users"),
		"Confirmed": q.Confirmed, "Identity": q.Identity, "Limit": q.Limit, "Scoped": !s.p.All()}
	if len(list) == q.Limit {
		next := url.Values{}
		for k, vs := range v {
			next[k] = vs
		}
		next.Set("before", list[len(list)-1].LastSeen.UTC().Format(time.RFC3339Nano))
		data["Next"] = "/campaigns?" + next.Encode()
	}
	if v.Get("before") != "" {
		v.Del("before")
		data["FirstURL"] = "/campaigns?" + v.Encode()
	}
	c.render(w, r, s, http.StatusOK, "campaigns", data)
	return nil
}

// campaignMemberRow is an identity of a campaign with its pages.
type campaignMemberRow struct {
	ops.CampaignMember
	LockURL, LogURL, UsageURL string
}

func (c *Console) campaignPage(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := c.ops.Campaign(r.Context(), s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.showCampaign(w, r, s, http.StatusOK, d, "", "", "")
}

// showCampaign renders a campaign's page; reason, duration and msg refill
// the lock form after a refused submission.
func (c *Console) showCampaign(w http.ResponseWriter, r *http.Request, s *session, status int, d ops.CampaignDetail, reason, duration, msg string) error {
	back := campaignURL(d.ID)
	rows := make([]campaignMemberRow, 0, len(d.Members))
	unlocked := 0
	for _, m := range d.Members {
		row := campaignMemberRow{CampaignMember: m}
		if m.Domain != "" {
			row.LockURL = lockURL("identity", m.Domain, m.Identity)
			row.UsageURL = row.LockURL
			row.LogURL = "/log?" + url.Values{"domain": {m.Domain}, "identity": {m.Identity}}.Encode()
		}
		if !m.Locked && m.Domain != "" {
			unlocked++
		}
		rows = append(rows, row)
	}
	data := map[string]any{"Title": "Campaign " + d.ID, "C": d, "Members": rows, "Unlocked": unlocked,
		"Durations": lockDurations, "Reason": reason, "Duration": duration, "Error": msg, "Back": back,
		"CanConfirm": s.p.All(), "Scoped": !s.p.All()}
	// The sample message's log record, when the principal may see it.
	if d.SampleTx != "" {
		if rec, err := c.ops.Message(s.p, d.SampleTx); err == nil {
			data["Sample"] = rec
		} else {
			data["SampleNote"] = sampleNote(err)
		}
	}
	c.render(w, r, s, status, "campaign", data)
	return nil
}

// sampleNote says why the sample message is not shown.
func sampleNote(err error) string {
	switch st, _ := ops.Classify(err); st {
	case http.StatusForbidden:
		return "it belongs to another administrative domain"
	case http.StatusNotFound:
		return "it is no longer in the log"
	}
	return "it could not be read"
}

func (c *Console) campaignConfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.campaignSetConfirmed(w, r, s, true)
}

func (c *Console) campaignUnconfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.campaignSetConfirmed(w, r, s, false)
}

func (c *Console) campaignSetConfirmed(w http.ResponseWriter, r *http.Request, s *session, confirmed bool) error {
	x, err := c.ops.SetConfirmed(r.Context(), s.p, r.PathValue("id"), confirmed, via)
	if err != nil {
		return err
	}
	msg := "Confirmed campaign " + x.ID + " as spam: its near-duplicates are now refused from every identity."
	if !confirmed {
		msg = "Withdrew the confirmation of campaign " + x.ID + "."
	}
	c.done(w, r, s, campaignURL(x.ID), msg, api.CampaignOf(x))
	return nil
}

// campaignLock locks every identity of the campaign the session's token
// may lock.
func (c *Console) campaignLock(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	f := r.PostForm
	res, err := c.ops.LockCampaign(r.Context(), s.p, id, f.Get("reason"), clip(f.Get("duration")), via)
	if err != nil {
		if st, _ := ops.Classify(err); !wantsJSON(r) && st == http.StatusBadRequest {
			d, derr := c.ops.Campaign(r.Context(), s.p, id)
			if derr != nil {
				return derr
			}
			return c.showCampaign(w, r, s, st, d, f.Get("reason"), f.Get("duration"), err.Error())
		}
		return err
	}
	c.done(w, r, s, campaignURL(res.Campaign), lockAllSummary(res), api.CampaignLockResultOf(res, c.ops.Now()))
	return nil
}

// lockAllSummary is the notice after locking a campaign's identities.
func lockAllSummary(res ops.CampaignLockResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Locked %d identit%s of campaign %s", len(res.Locked), plural(len(res.Locked), "y", "ies"), res.Campaign)
	if len(res.Locked) > 0 {
		names := make([]string, 0, min(len(res.Locked), 5))
		for _, l := range res.Locked[:min(len(res.Locked), 5)] {
			names = append(names, l.Name)
		}
		b.WriteString(": " + strings.Join(names, ", "))
		if len(res.Locked) > 5 {
			b.WriteString(" and " + strconv.Itoa(len(res.Locked)-5) + " more")
		}
	}
	b.WriteString(".")
	already, other := 0, 0
	for _, x := range res.Skipped {
		if x.Reason == "already_locked" {
			already++
		} else {
			other++
		}
	}
	if already > 0 {
		fmt.Fprintf(&b, " %d already locked.", already)
	}
	if other > 0 {
		fmt.Fprintf(&b, " %d skipped (unknown domain or user).", other)
	}
	if res.SkippedOtherDomains > 0 {
		fmt.Fprintf(&b, " %d of other domains left alone.", res.SkippedOtherDomains)
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// campaignQuery reads the list's filters, as the API reads its
// parameters (docs/api.md, GET /api/v1/campaigns).
func (c *Console) campaignQuery(v url.Values) (ops.CampaignQuery, error) {
	q := ops.CampaignQuery{Identity: clip(v.Get("identity")), Limit: 100}
	bad := func(format string, args ...any) (ops.CampaignQuery, error) {
		return q, ops.Errorf(ops.ErrBadParameter, format, args...)
	}
	if s := clip(v.Get("confirmed")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad("confirmed %q: use true or false", s)
		}
		q.Confirmed = b
	}
	if s := clip(v.Get("since")); s != "" {
		d, err := duration.Parse(s)
		if err != nil || d <= 0 {
			return bad("since %q: use a duration like 30m, 24h or 7d", s)
		}
		q.Since = c.ops.Now().Add(-d)
	}
	if s := clip(v.Get("before")); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return bad("before %q: pass the next of the previous page (an RFC 3339 time)", s)
		}
		q.Before = t
	}
	for _, n := range []struct {
		name   string
		dst    *uint64
		lo, hi int
	}{{"min_identities", &q.MinIdentities, 0, 1 << 30}, {"min_users", &q.MinUsers, 0, 1 << 30}} {
		if s := clip(v.Get(n.name)); s != "" {
			x, err := strconv.Atoi(s)
			if err != nil || x < n.lo || x > n.hi {
				return bad("%s %q: use a number from %d to %d", n.name, s, n.lo, n.hi)
			}
			*n.dst = uint64(x)
		}
	}
	if s := clip(v.Get("limit")); s != "" {
		x, err := strconv.Atoi(s)
		if err != nil || x < 1 || x > 1000 {
			return bad("limit %q: use a number from 1 to 1000", s)
		}
		q.Limit = x
	}
	return q, nil
}
