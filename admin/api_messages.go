package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/identity"
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
		p.err = errorf(ErrBadParameter, format, args...)
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
		d, err := ParseDuration(since)
		if err != nil || d <= 0 {
			p.fail("since %q: use a duration like 30m, 24h or 7d", since)
			return
		}
		from = now.Add(-d)
	}
	if s := p.str("from"); s != "" {
		t, err := ParseTime(s)
		if err != nil {
			p.fail("from: %v", err)
		}
		from = t
	}
	if s := p.str("to"); s != "" {
		t, err := ParseTime(s)
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

// ParseDuration parses Go durations plus day and week suffixes ("7d",
// "2w"), as the configuration does (internal/duration).
func ParseDuration(s string) (time.Duration, error) { return duration.Parse(s) }

// ParseTime parses RFC 3339, or a UTC date and time without zone
// ("2026-03-01T12:00", "2026-03-01 12:00"), or a UTC date.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: use RFC 3339 (2026-03-01T12:00:00Z) or a UTC date (2026-03-01)", s)
}

var searchParams = []string{"status", "verdict", "user", "domain", "identity", "sender", "recipient",
	"subject", "message_id", "client_ip", "partial", "since", "from", "to", "limit", "cursor"}

func (a *API) searchMessages(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, searchParams...)
	q := quarantine.Query{
		User: p.str("user"), Domain: p.str("domain"), Identity: p.str("identity"),
		Sender: p.str("sender"), Recipient: p.str("recipient"), Subject: p.str("subject"),
		MessageID: p.str("message_id"), Cursor: p.str("cursor"), Scope: pr.Domain,
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
	q.From, q.To = p.period(a.now())
	q.Limit = p.int("limit", quarantine.DefaultLimit, 1, quarantine.MaxLimit)
	if p.err != nil {
		return p.err
	}
	page, err := a.opts.Store.Search(q)
	if err != nil {
		return err
	}
	res := SearchResponse{Messages: []MessageJSON{}, NextCursor: page.NextCursor, Partial: page.Partial}
	for _, rec := range page.Records {
		if !pr.Allows(rec.Domain) { // the store applies the scope; be sure
			continue
		}
		res.Messages = append(res.Messages, messageJSON(rec))
	}
	writeJSON(w, res)
	return nil
}

// message loads the record named by the path and checks the scope: 404
// for no such record, 403 for another domain's.
func (a *API) message(r *http.Request, pr Principal) (*quarantine.Record, quarantine.Actor, error) {
	id := r.PathValue("id")
	if _, err := quarantine.ParseID(id); err != nil {
		return nil, quarantine.Actor{}, errorf(ErrNotFound, "message %q: not a log id", id)
	}
	rec, err := a.opts.Store.Get(id)
	if err != nil {
		return nil, quarantine.Actor{}, err
	}
	if !pr.Allows(rec.Domain) {
		return nil, quarantine.Actor{}, errorf(ErrForbidden, "message %s belongs to another administrative domain than your token's (%s)", rec.ID, pr.Domain)
	}
	return rec, quarantine.Actor{Name: pr.Name, Domain: pr.Domain}, nil
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	rec, actor, err := a.message(r, pr)
	if err != nil {
		return err
	}
	res := MessageDetail{Message: messageJSON(rec)}
	if rec.Quarantine.HasContent() {
		v, err := a.opts.Store.Show(rec.ID, actor)
		switch {
		case err == nil:
			res.Message = messageJSON(v.Record)
			res.Content = contentJSON(v)
		case errors.Is(err, quarantine.ErrGone):
			// deleted or expired between Get and Show
		default:
			return err
		}
	}
	writeJSON(w, res)
	return nil
}

func (a *API) rawMessage(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	rec, actor, err := a.message(r, pr)
	if err != nil {
		return err
	}
	raw, err := a.opts.Store.Raw(rec.ID, actor)
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

// actionBody is the optional body of release and delete.
type actionBody struct {
	Reason string `json:"reason"`
}

func (a *API) releaseMessage(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var body actionBody
	if err := a.decodeJSON(w, r, &body, true); err != nil {
		return err
	}
	rec, actor, err := a.message(r, pr)
	if err != nil {
		return err
	}
	res, err := a.opts.Store.Release(r.Context(), rec.ID, actor)
	if err != nil {
		return err
	}
	out := ReleaseResponse{ID: rec.ID, ReleasedAt: res.At, ReleasedBy: res.By, Already: res.Already}
	if !res.Already {
		a.record(pr, AuditRelease, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, body.Reason, "")
		// A release says the message was not spam: teach the model.
		out.Learned = a.learnAfterRelease(r.Context(), pr, rec.ID)
	}
	writeJSON(w, out)
	return nil
}

func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var body actionBody
	if err := a.decodeJSON(w, r, &body, true); err != nil {
		return err
	}
	rec, actor, err := a.message(r, pr)
	if err != nil {
		return err
	}
	if q := rec.Quarantine; q != nil && !q.DeletedAt.IsZero() {
		// Deleted before: nothing to do, as for a second release.
		writeJSON(w, DeleteResponse{ID: rec.ID, Deleted: true, Already: true, DeletedAt: q.DeletedAt.UTC(), DeletedBy: q.DeletedBy})
		return nil
	}
	if err := a.opts.Store.Delete(r.Context(), rec.ID, actor); err != nil {
		return err
	}
	a.record(pr, AuditDelete, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, body.Reason, "")
	writeJSON(w, DeleteResponse{ID: rec.ID, Deleted: true})
	return nil
}

// Report classifications the API accepts.
var reportClasses = map[string]bool{"all": true, "accepted": true, "rejected": true, "clean": true, "spam": true, "phishing": true, "virus": true}

func (a *API) report(w http.ResponseWriter, r *http.Request, pr Principal) error {
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
	now := a.now()
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
	res := ReportResponse{GroupBy: g.String(), Classification: cls, From: from.UTC(), To: to.UTC(), Rows: []ReportRowJSON{}}
	scope := domain
	if !pr.All() {
		if domain != "" && !pr.Allows(domain) {
			// Like searches: silently restricted to the token's domain.
			writeJSON(w, res)
			return nil
		}
		scope = pr.Domain
	}
	rows, err := a.opts.Store.Report(quarantine.ReportQuery{GroupBy: g, Class: c, From: from, To: to, Scope: scope, Limit: limit})
	if err != nil {
		return err
	}
	for _, row := range rows {
		out := ReportRowJSON{Domain: row.Domain, Key: row.Key, Count: row.Count}
		if row.Key != "" && (g == quarantine.GroupIdentity || g == quarantine.GroupUser) {
			t := identity.IdentityTarget(row.Domain, row.Key)
			if g == quarantine.GroupUser {
				t = identity.UserTarget(row.Domain, row.Key)
			}
			if l, err := a.opts.Locks.Get(r.Context(), t); err == nil && l.Active(now) {
				out.Locked = true
			}
		}
		res.Rows = append(res.Rows, out)
	}
	writeJSON(w, res)
	return nil
}
