package api

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/duration"
	"github.com/outguard/outguard/quarantine"
)

// maxParamLength bounds a query parameter's value.
const maxParamLength = 1024

// params reads query parameters, remembering the first error.
type params struct {
	v   url.Values
	err error
}

func newParams(r *http.Request, allowed ...string) *params {
	p := &params{v: r.URL.Query()}
	known := map[string]bool{}
	for _, a := range allowed {
		known[a] = true
	}
	for k, vs := range p.v {
		if !known[k] && len(allowed) == 0 {
			p.fail("unknown query parameter %q: this endpoint takes none", k)
			break
		}
		if !known[k] {
			p.fail("unknown query parameter %q; allowed: %s", k, strings.Join(allowed, ", "))
			break
		}
		for _, v := range vs {
			if len(v) > maxParamLength {
				p.fail("query parameter %s is longer than %d bytes", k, maxParamLength)
			}
		}
	}
	return p
}

func (p *params) fail(format string, args ...any) {
	if p.err == nil {
		p.err = ops.Errorf(ops.ErrBadParameter, format, args...)
	}
}

func (p *params) str(name string) string { return strings.TrimSpace(p.v.Get(name)) }

// list returns the comma-separated values of a repeatable parameter.
func (p *params) list(name string) []string {
	var out []string
	for _, v := range p.v[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (p *params) int(name string, def, lo, hi int) int {
	s := p.str(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.fail("%s %q: use a number from %d to %d", name, s, lo, hi)
		return def
	}
	return n
}

func (p *params) bool(name string) bool {
	s := p.str(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail("%s %q: use true or false", name, s)
	}
	return b
}

// period reads since, or from and to.
func (p *params) period(now time.Time) (from, to time.Time) {
	since := p.str("since")
	if since != "" {
		if p.str("from") != "" {
			p.fail("give either since or from/to, not both")
			return
		}
		d, err := duration.Parse(since)
		if err != nil || d <= 0 {
			p.fail("since %q: use a duration like 30m, 24h or 7d", since)
			return
		}
		from = now.Add(-d)
	}
	if s := p.str("from"); s != "" {
		t, err := apiv1.ParseTime(s)
		if err != nil {
			p.fail("from: %v", err)
		}
		from = t
	}
	if s := p.str("to"); s != "" {
		t, err := apiv1.ParseTime(s)
		if err != nil {
			p.fail("to: %v", err)
		}
		to = t
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		p.fail("from must be before to")
	}
	return from, to
}

var searchParams = []string{"status", "verdict", "user", "domain", "identity", "sender", "recipient",
	"subject", "message_id", "client_ip", "partial", "since", "from", "to", "limit", "cursor"}

func (a *API) searchMessages(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, searchParams...)
	q := quarantine.Query{
		User: p.str("user"), Domain: p.str("domain"), Identity: p.str("identity"),
		Sender: p.str("sender"), Recipient: p.str("recipient"), Subject: p.str("subject"),
		MessageID: p.str("message_id"), Cursor: p.str("cursor"),
		Partial: p.bool("partial"),
	}
	for _, s := range p.list("status") {
		st, err := quarantine.ParseStatus(s)
		if err != nil {
			p.fail("status %q: use accepted, quarantined, released, rejected, deferred or failed", s)
		}
		q.Statuses = append(q.Statuses, st)
	}
	for _, s := range p.list("verdict") {
		v, err := quarantine.ParseVerdict(s)
		if err != nil {
			p.fail("verdict %q: use clean, spam, phishing, virus or none", s)
		}
		q.Verdicts = append(q.Verdicts, v)
	}
	if s := p.str("client_ip"); s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			p.fail("client_ip %q is not an IP address", s)
		}
		q.ClientIP = ip
	}
	q.From, q.To = p.period(a.ops.Now())
	q.Limit = p.int("limit", quarantine.DefaultLimit, 1, quarantine.MaxLimit)
	if p.err != nil {
		return p.err
	}
	page, err := a.ops.Search(pr, q)
	if err != nil {
		return err
	}
	res := apiv1.SearchResponse{Messages: make([]apiv1.Message, 0, len(page.Records)), NextCursor: page.NextCursor, Partial: page.Partial}
	for _, rec := range page.Records {
		res.Messages = append(res.Messages, MessageOf(rec))
	}
	writeJSON(w, res)
	return nil
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	rec, err := a.ops.Message(pr, r.PathValue("id"))
	if err != nil {
		return err
	}
	res := apiv1.MessageDetail{Message: MessageOf(rec)}
	v, err := a.ops.Show(pr, rec)
	if err != nil {
		return err
	}
	if v != nil {
		res.Message = MessageOf(v.Record)
		res.Content = ContentOf(v)
	}
	writeJSON(w, res)
	return nil
}

func (a *API) rawMessage(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	rec, err := a.ops.Message(pr, r.PathValue("id"))
	if err != nil {
		return err
	}
	raw, err := a.ops.Raw(pr, rec)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rec.ID+`.eml"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(raw) // the client going away is not the API's failure
	return nil
}

func (a *API) releaseMessage(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var body apiv1.ReleaseRequest
	if err := a.decodeJSON(w, r, &body, true); err != nil {
		return err
	}
	learn := body.Learn == nil || *body.Learn
	res, err := a.ops.Release(r.Context(), pr, ops.ReleaseOrder{ID: r.PathValue("id"), Reason: body.Reason, Learn: learn})
	if err != nil {
		return err
	}
	writeJSON(w, ReleaseOf(res))
	return nil
}

func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var body apiv1.ActionRequest
	if err := a.decodeJSON(w, r, &body, true); err != nil {
		return err
	}
	res, err := a.ops.Delete(r.Context(), pr, r.PathValue("id"), body.Reason, "")
	if err != nil {
		return err
	}
	writeJSON(w, DeleteOf(res))
	return nil
}

// Report classifications the API accepts.
var reportClasses = map[string]bool{"all": true, "accepted": true, "rejected": true, "clean": true, "spam": true, "phishing": true, "virus": true}

func (a *API) report(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "group_by", "classification", "since", "from", "to", "domain", "limit")
	gb := p.str("group_by")
	if gb == "" {
		p.fail("group_by is required: identity, user, domain or sender")
	}
	g, err := quarantine.ParseGroupBy(gb)
	if gb != "" && err != nil {
		p.fail("group_by %q: use identity, user, domain or sender", gb)
	}
	cls := strings.ToLower(p.str("classification"))
	if cls == "" {
		cls = "all"
	}
	if !reportClasses[cls] {
		p.fail("classification %q: use accepted, rejected, spam, phishing, virus (or all, clean)", cls)
	}
	c, _ := quarantine.ParseClass(cls)
	now := a.ops.Now()
	from, to := p.period(now)
	if from.IsZero() {
		from = now.Add(-7 * 24 * time.Hour)
	}
	if to.IsZero() {
		to = now
	}
	limit := p.int("limit", quarantine.DefaultReportLimit, 1, quarantine.MaxReportLimit)
	domain := p.str("domain")
	if p.err != nil {
		return p.err
	}
	rows, err := a.ops.Report(r.Context(), pr, ops.ReportQuery{GroupBy: g, Class: c, From: from, To: to, Domain: domain, Limit: limit})
	if err != nil {
		return err
	}
	res := apiv1.ReportResponse{GroupBy: g.String(), Classification: cls, From: from.UTC(), To: to.UTC(), Rows: make([]apiv1.ReportRow, 0, len(rows))}
	for _, row := range rows {
		res.Rows = append(res.Rows, ReportRowOf(row))
	}
	writeJSON(w, res)
	return nil
}
