package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/duration"
	"github.com/outguard/outguard/quarantine"
)

// logFilter is the log page's query-rule builder, as submitted.
type logFilter struct {
	// Partial keeps only partially scanned messages.
	Partial   bool
	Statuses  map[string]bool
	Verdicts  map[string]bool
	User      string
	Domain    string
	Identity  string
	Sender    string
	Recipient string
	Subject   string
	MessageID string
	ClientIP  string
	Since     string
	From, To  string
	Limit     int
}

// logStatuses and logVerdicts are the builder's choices.
var (
	logStatuses = []string{"accepted", "quarantined", "released", "rejected", "deferred", "failed"}
	logVerdicts = []string{"clean", "spam", "phishing", "virus", "none"}
	logPeriods  = []struct{ Value, Label string }{{"1h", "last hour"}, {"24h", "last 24 hours"}, {"7d", "last 7 days"}, {"30d", "last 30 days"}, {"", "any time"}}
	pageSizes   = []int{25, 50, 100, 200}
)

func (c *Console) parseLogFilter(v url.Values) (logFilter, quarantine.Query, error) {
	f := logFilter{Statuses: map[string]bool{}, Verdicts: map[string]bool{},
		User: clip(v.Get("user")), Domain: clip(v.Get("domain")), Identity: clip(v.Get("identity")),
		Sender: clip(v.Get("sender")), Recipient: clip(v.Get("recipient")), Subject: clip(v.Get("subject")),
		MessageID: clip(v.Get("message_id")), ClientIP: clip(v.Get("client_ip")),
		Since: clip(v.Get("since")), From: clip(v.Get("from")), To: clip(v.Get("to")), Limit: 50}
	q := quarantine.Query{User: f.User, Domain: f.Domain, Identity: f.Identity, Sender: f.Sender,
		Recipient: f.Recipient, Subject: f.Subject, MessageID: f.MessageID, Cursor: clip(v.Get("cursor"))}
	f.Partial = v.Get("partial") == "true"
	q.Partial = f.Partial
	var errs []string
	if f.ClientIP != "" {
		ip, err := netip.ParseAddr(f.ClientIP)
		if err != nil {
			errs = append(errs, fmt.Sprintf("client IP %q is not an IP address", f.ClientIP))
		} else {
			q.ClientIP = ip
		}
	}
	for _, s := range v["status"] {
		st, err := quarantine.ParseStatus(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("status %q is not one of %s", s, strings.Join(logStatuses, ", ")))
			continue
		}
		f.Statuses[st.String()] = true
		q.Statuses = append(q.Statuses, st)
	}
	for _, s := range v["verdict"] {
		vd, err := quarantine.ParseVerdict(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("verdict %q is not one of %s", s, strings.Join(logVerdicts, ", ")))
			continue
		}
		f.Verdicts[vd.String()] = true
		q.Verdicts = append(q.Verdicts, vd)
	}
	now := c.ops.Now()
	if f.Since != "" {
		d, err := duration.Parse(f.Since)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("period %q: use a duration like 30m, 24h or 7d", f.Since))
		} else {
			q.From = now.Add(-d)
		}
	}
	if f.From != "" {
		t, err := apiv1.ParseTime(f.From)
		if err != nil {
			errs = append(errs, "from: "+err.Error())
		} else if q.From.IsZero() || t.After(q.From) {
			q.From = t
		}
	}
	if f.To != "" {
		t, err := apiv1.ParseTime(f.To)
		if err != nil {
			errs = append(errs, "to: "+err.Error())
		} else {
			q.To = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > quarantine.MaxLimit {
			errs = append(errs, fmt.Sprintf("page size %q: use 1 to %d", s, quarantine.MaxLimit))
		} else {
			f.Limit = n
		}
	}
	q.Limit = f.Limit
	if len(errs) > 0 {
		return f, q, errors.New(strings.Join(errs, "; "))
	}
	return f, q, nil
}

// clip trims a form value and bounds its length.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxFieldLength {
		s = s[:maxFieldLength]
	}
	return s
}

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, s *session) error {
	v := r.URL.Query()
	f, q, ferr := c.parseLogFilter(v)
	data := map[string]any{"Title": "Outgoing log", "Filter": f, "Statuses": logStatuses, "Verdicts": logVerdicts,
		"Periods": logPeriods, "PageSizes": pageSizes, "Back": r.URL.RequestURI(), "Scoped": !s.p.All(),
		"Learning": c.ops.Learning(), "Durations": lockDurations}
	status := http.StatusOK
	if ferr != nil {
		data["FilterError"] = ferr.Error()
		status = http.StatusBadRequest
	} else {
		page, err := c.ops.Search(s.p, q)
		if errors.Is(err, quarantine.ErrBadQuery) {
			data["FilterError"] = err.Error()
			status = http.StatusBadRequest
		} else if err != nil {
			return err
		}
		data["Rows"] = page.Records
		data["Locked"] = c.lockedIdentities(r, s, page.Records)
		data["Partial"] = page.Partial
		data["First"] = q.Cursor != ""
		if page.NextCursor != "" {
			next := cloneValues(v)
			next.Set("cursor", page.NextCursor)
			data["Next"] = "/log?" + next.Encode()
		}
		first := cloneValues(v)
		first.Del("cursor")
		data["FirstURL"] = "/log?" + first.Encode()
		first.Del("limit")
		if !s.p.All() {
			first.Del("domain") // the scope is the token's
		}
		data["CSVURL"] = "/log.csv?" + first.Encode()
	}
	c.render(w, r, s, status, "log", data)
	return nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (c *Console) messagePage(w http.ResponseWriter, r *http.Request, s *session) error {
	rec, err := c.ops.Message(s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	data := map[string]any{"Title": "Message " + rec.ID, "Rec": rec, "Back": "/log/" + rec.ID, "Learning": c.ops.Learning(),
		"Why": map[string]*ops.RuleMatch{}}
	view, err := c.ops.Show(s.p, rec)
	if err != nil {
		return err
	}
	if view != nil {
		data["Rec"] = view.Record
		data["View"] = view
		// Why it matched: a failure costs the explanations, not the page.
		why, err := c.ops.Explain(r.Context(), s.p, view.Record)
		if err != nil {
			c.log.Warn("admin console: explaining the reasons failed", "id", rec.ID, "err", err)
		}
		byReason := data["Why"].(map[string]*ops.RuleMatch)
		for i := range why {
			byReason[why[i].Reason] = &why[i]
		}
	}
	c.render(w, r, s, http.StatusOK, "message", data)
	return nil
}

func (c *Console) messageRaw(w http.ResponseWriter, r *http.Request, s *session) error {
	rec, err := c.ops.Message(s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	raw, err := c.ops.Raw(s.p, rec)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rec.ID+`.eml"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.Write(raw)
	return nil
}

// messageRelease releases a quarantined message with the reason of the
// message page's form; "learn" is the form's second button, "release
// and don't block this kind again". A release without a reason (the log
// page's row button) goes to the message page's form to ask for one.
func (c *Console) messageRelease(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	reason := clip(r.PostForm.Get("reason"))
	if reason == "" && !wantsJSON(r) {
		if _, err := c.ops.Message(s.p, id); err != nil {
			return err
		}
		c.setFlash(r.Context(), s, "Say why you release message "+id+": the reason goes in the audit trail.", true)
		http.Redirect(w, r, "/log/"+id+"#release", http.StatusSeeOther)
		return nil
	}
	learn := r.PostForm.Get("learn") == "true"
	res, err := c.ops.Release(r.Context(), s.p, ops.ReleaseOrder{ID: id, Reason: reason, RequireReason: true, Learn: learn, Via: via})
	if err != nil {
		return err
	}
	learned := res.Learned
	msg := "Message " + id + " released to the next hop."
	switch {
	case res.Already:
		msg = "Message " + id + " had already been released by " + res.By + "; not delivered again."
	case learned != nil:
		msg = "Message " + id + " released to the next hop; the content model learnt it as not spam (" + learntScores(*learned) + ")."
	case learn:
		msg = "Message " + id + " released to the next hop; the content model did not learn it (learning is off or failed: see the log)."
	}
	c.done(w, r, s, localPath(r.PostForm.Get("back"), "/log/"+id), msg,
		api.ReleaseOf(res))
	return nil
}

// messageConfirmSpam teaches the content model that a quarantined message
// is spam, through the API's own path.
func (c *Console) messageConfirmSpam(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	res, err := c.ops.LearnStored(r.Context(), s.p, id, true, r.PostForm.Get("reason"), via)
	if err != nil {
		return err
	}
	c.done(w, r, s, localPath(r.PostForm.Get("back"), "/log/"+id),
		"Message "+id+" confirmed as spam: the content model learnt it ("+learntScores(res)+").", api.LearnResultOf(res))
	return nil
}

// learntScores tells what learning did to a message's score.
func learntScores(r ops.LearnResult) string {
	return fmt.Sprintf("score %.2f → %.2f, model %s", r.Before, r.After, r.Version)
}

func (c *Console) messageDelete(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	res, err := c.ops.Delete(r.Context(), s.p, id, "", via)
	if err != nil {
		return err
	}
	if res.Already {
		// The console answers a second deletion 410, where the API
		// answers 200 with already set: the page offers no deletion of
		// content no longer stored.
		return fmt.Errorf("%w: %s", quarantine.ErrGone, res.ID)
	}
	c.done(w, r, s, localPath(r.PostForm.Get("back"), "/log/"+id), "Quarantined content of message "+id+" deleted.", api.DeleteOf(res))
	return nil
}
