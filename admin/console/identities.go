package console

import (
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/duration"
	"github.com/outguard/outguard/quarantine"
)

// identityURL is the profile page of an identity.
func identityURL(domain, name string) string {
	return "/identities/" + url.PathEscape(domain) + "/" + url.PathEscape(name)
}

// identityPeriods are the profile's periods: hourly bars up to two days,
// daily bars beyond.
var identityPeriods = []struct{ Value, Label string }{{"24h", "last 24 hours"}, {"48h", "last 48 hours"}, {"7d", "last 7 days"}, {"30d", "last 30 days"}, {"90d", "last 90 days"}}

// evidenceCount is one counter's value at an automatic lock's crossing.
type evidenceCount struct {
	Counter string
	Count   int
}

// identityPage is an identity's profile: its messages by verdict over
// time, its lock, evidence and history, its usage against the
// thresholds, its complaints and recipient domains, and the lock and
// unlock forms. The operations layer makes the scope check.
func (c *Console) identityPage(w http.ResponseWriter, r *http.Request, s *session) error {
	domain, name := r.PathValue("domain"), r.PathValue("name")
	since := r.URL.Query().Get("since")
	if since == "" {
		since = "24h"
	}
	period, err := duration.Parse(since)
	if err != nil {
		return ops.Errorf(ops.ErrBadRequest, "period %q: use a duration like 24h or 7d", since)
	}
	pr, err := c.ops.IdentityProfile(r.Context(), s.p, domain, name, period)
	if err != nil {
		return err
	}
	t := pr.Target
	points := make([]quarantine.SeriesPoint, len(pr.Buckets))
	for i, b := range pr.Buckets {
		points[i] = quarantine.SeriesPoint{Start: b.Start, All: int64(b.Total), Clean: int64(b.Clean), Spam: int64(b.Spam),
			Phishing: int64(b.Phishing), Virus: int64(b.Virus)}
	}
	back := r.URL.RequestURI()
	logQ := url.Values{"domain": {t.Domain}, "identity": {t.Name}}
	data := map[string]any{"Title": "Identity " + t.Name, "P": pr, "Target": t, "Chart": buildTraffic(points, pr.Step),
		"Since": since, "Periods": identityPeriods, "Durations": lockDurations, "Back": back,
		"LogURL": "/log?" + logQ.Encode(), "CSVURL": "/log.csv?" + logQ.Encode(), "LockDetail": lockPageURL("identity", t.Domain, t.Name)}
	if pr.Lock != nil {
		data["LockState"] = pr.Lock.State(c.ops.Now()).String()
		if ev := pr.Lock.Evidence; ev != nil {
			var counts []evidenceCount
			for k, v := range ev.Counts {
				if v > 0 {
					counts = append(counts, evidenceCount{k, v})
				}
			}
			sort.Slice(counts, func(i, j int) bool { return counts[i].Counter < counts[j].Counter })
			data["EvidenceCounts"] = counts
		}
		h := pr.History
		for i, j := 0, len(h)-1; i < j; i, j = i+1, j-1 {
			h[i], h[j] = h[j], h[i]
		}
		data["History"] = h
	}
	if pr.Step >= 24*time.Hour {
		data["StepLabel"] = "day"
	} else {
		data["StepLabel"] = "hour"
	}
	c.render(w, r, s, http.StatusOK, "identity", data)
	return nil
}

// identityNotify previews the customer notice of an identity's domain,
// rendered with its lock's data, with the form that sends it: the
// profile's notify action (docs/config-notify.md, "Customer notice"). The
// form carries the preview's digest, so what is sent is what was shown.
func (c *Console) identityNotify(w http.ResponseWriter, r *http.Request, s *session) error {
	t, err := c.ops.Target(s.p, string(identity.KindIdentity), r.PathValue("domain"), r.PathValue("name"))
	if err != nil {
		return err
	}
	n, err := c.ops.PreviewNotice(r.Context(), s.p, t)
	if err != nil {
		return err
	}
	profile := identityURL(t.Domain, t.Name)
	c.render(w, r, s, http.StatusOK, "notice", map[string]any{"Title": "Customer notice for " + t.Name, "Target": t,
		"Notice": n, "LockURL": profile, "SendURL": profile + "/notify"})
	return nil
}

// identityNotifySubmit sends the previewed customer notice through the
// notification outbox; the operations layer makes the checks and writes
// the audit entry.
func (c *Console) identityNotifySubmit(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	domain, name := r.PathValue("domain"), r.PathValue("name")
	if f.Get("preview") == "" {
		return ops.Errorf(ops.ErrBadRequest, "preview the notice before sending it: open %s/notify", identityURL(domain, name))
	}
	n, err := c.ops.SendNotice(r.Context(), s.p, ops.NoticeOrder{Domain: domain, Name: name, Reason: f.Get("reason"), Preview: f.Get("preview"), Via: via})
	if err != nil {
		return err
	}
	c.done(w, r, s, identityURL(domain, name), "Customer notice to "+n.To+" queued for sending.", api.NoticeOf(n))
	return nil
}
