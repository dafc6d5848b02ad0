package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/duration"
	"github.com/outguard/outguard/quarantine"
)

var (
	reportGroups    = []string{"identity", "user", "domain", "sender"}
	reportClassList = []string{"all", "accepted", "rejected", "clean", "spam", "phishing", "virus"}
	reportPeriods   = []struct{ Value, Label string }{{"1h", "last hour"}, {"24h", "last 24 hours"}, {"7d", "last 7 days"}, {"30d", "last 30 days"}}
)

// reportRow is one report group with its lock state.
type reportRow struct {
	quarantine.ReportRow
	// Kind is the lock kind of the group (user or identity); "" when the
	// grouping cannot be locked.
	Kind   string
	Locked bool
	LogURL string
	URL    string
}

func (c *Console) reportsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	v := r.URL.Query()
	group := v.Get("group_by")
	if group == "" {
		group = "identity"
	}
	class := strings.ToLower(v.Get("classification"))
	if class == "" {
		class = "rejected"
	}
	since := v.Get("since")
	if since == "" {
		since = "24h"
	}
	data := map[string]any{"Title": "Outgoing reports", "Group": group, "Class": class, "Since": since,
		"Groups": reportGroups, "Classes": reportClassList, "Periods": reportPeriods, "Back": r.URL.RequestURI(),
		"Durations": lockDurations}
	g, gerr := quarantine.ParseGroupBy(group)
	cl, cerr := quarantine.ParseClass(class)
	d, derr := duration.Parse(since)
	if gerr != nil || cerr != nil || !slices.Contains(reportClassList, class) || derr != nil || d <= 0 {
		data["FilterError"] = "Choose a grouping (identity, user, domain, sender), a classification and a period like 24h or 7d."
		c.render(w, r, s, http.StatusBadRequest, "reports", data)
		return nil
	}
	now := c.ops.Now()
	rows, err := c.reportRows(r.Context(), s.p, g, cl, now.Add(-d), now, 200)
	if err != nil {
		return err
	}
	data["Rows"] = rows
	c.render(w, r, s, http.StatusOK, "reports", data)
	return nil
}

// reportRows runs a report in the principal's scope and adds each
// group's lock state.
func (c *Console) reportRows(ctx context.Context, pr ops.Principal, g quarantine.GroupBy, cl quarantine.Class, from, to time.Time, limit int) ([]reportRow, error) {
	rows, err := c.ops.Report(ctx, pr, ops.ReportQuery{GroupBy: g, Class: cl, From: from, To: to, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]reportRow, 0, len(rows))
	for _, row := range rows {
		rr := reportRow{ReportRow: row.ReportRow, Kind: string(row.Kind), Locked: row.Locked}
		q := url.Values{"domain": {row.Domain}}
		switch g {
		case quarantine.GroupIdentity:
			q.Set("identity", row.Key)
		case quarantine.GroupUser:
			q.Set("user", row.Key)
		case quarantine.GroupSender:
			q.Set("sender", row.Key)
		}
		if row.Key != "" || g == quarantine.GroupDomain {
			rr.LogURL = "/log?" + q.Encode()
		}
		if rr.Kind != "" {
			rr.URL = lockURL(rr.Kind, row.Domain, row.Key)
		}
		out = append(out, rr)
	}
	return out, nil
}

// toggleResult is the JSON answer to the report's lock toggle.
type toggleResult struct {
	Locked bool   `json:"locked"`
	Kind   string `json:"kind"`
	Domain string `json:"domain"`
	Name   string `json:"name"`
	// Message is the notice to show, for people.
	Message string `json:"message"`
}

// reportToggle locks or unlocks a report row's target: fetched by the
// console's script (JSON answer), or posted as a plain form (redirect
// back to the report).
func (c *Console) reportToggle(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	kind, domain, name, reason := f.Get("kind"), f.Get("domain"), f.Get("name"), f.Get("reason")
	back := localPath(f.Get("back"), "/reports")
	var (
		res toggleResult
		err error
		l   identity.Lock
	)
	switch f.Get("action") {
	case "lock":
		l, err = c.ops.Lock(r.Context(), s.p, ops.LockOrder{Kind: kind, Domain: domain, Name: name, Reason: reason, Duration: clip(f.Get("duration")), Via: via})
		res = toggleResult{Locked: true, Message: "Locked"}
	case "unlock":
		l, err = c.ops.Unlock(r.Context(), s.p, ops.UnlockOrder{Kind: kind, Domain: domain, Name: name, Reason: reason, Via: via})
		res = toggleResult{Locked: false, Message: "Unlocked"}
	default:
		return ops.Errorf(ops.ErrBadRequest, "action %q: use lock or unlock", f.Get("action"))
	}
	if err != nil {
		if !wantsJSON(r) {
			if st, _ := ops.Classify(err); st < 500 {
				c.setFlash(r.Context(), s, err.Error(), true)
				http.Redirect(w, r, back, http.StatusSeeOther)
				return nil
			}
		}
		return err
	}
	res.Kind, res.Domain, res.Name = string(l.Kind), l.Domain, l.Name
	res.Message += " " + res.Kind + " " + l.Name + " (" + l.Domain + ")"
	if res.Locked && !l.Expires.IsZero() {
		res.Message += " until " + l.Expires.UTC().Format("2006-01-02 15:04") + " UTC"
	}
	res.Message += "."
	c.done(w, r, s, back, res.Message, res)
	return nil
}
