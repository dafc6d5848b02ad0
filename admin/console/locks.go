package console

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

// lockDurations are the suggested durations of the lock form; any
// duration may be typed.
var lockDurations = []struct{ Value, Label string }{{"", "permanent"}, {"1h", "1 hour"}, {"24h", "1 day"}, {"7d", "7 days"}, {"30d", "30 days"}}

// lockURL is where a lock target links to: an identity's profile page,
// a user's lock page.
func lockURL(kind, domain, name string) string {
	if kind == "identity" {
		return identityURL(domain, name)
	}
	return lockPageURL(kind, domain, name)
}

// lockPageURL is the lock page of a target.
func lockPageURL(kind, domain, name string) string {
	return "/locks/" + url.PathEscape(kind) + "/" + url.PathEscape(domain) + "/" + url.PathEscape(name)
}

// lockConfirm is the form that asks for a lock's reason and duration:
// the page a row's lock link leads to.
func (c *Console) lockConfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	v := r.URL.Query()
	return c.showLockForm(w, r, s, http.StatusOK, v.Get("kind"), v.Get("domain"), v.Get("name"), v.Get("tx"), "", "", localPath(v.Get("back"), "/log"), "")
}

func (c *Console) showLockForm(w http.ResponseWriter, r *http.Request, s *session, status int, kind, domain, name, tx, reason, duration, back, msg string) error {
	t, err := c.ops.Target(s.p, kind, domain, name)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": "Lock " + kind + " " + t.Name, "Target": t, "Tx": tx, "Reason": reason,
		"Duration": duration, "Durations": lockDurations, "Back": back, "Error": msg, "Detail": lockURL(kind, t.Domain, t.Name),
		"Learning": c.ops.Learning()}
	if l, err := c.ops.GetLock(r.Context(), s.p, t); err == nil && l.Active(c.ops.Now()) {
		data["Current"] = l
	}
	c.render(w, r, s, status, "lockform", data)
	return nil
}

func (c *Console) lockSubmit(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	kind, domain, name, tx := f.Get("kind"), f.Get("domain"), f.Get("name"), f.Get("tx")
	back := localPath(f.Get("back"), "/locks")
	l, err := c.ops.Lock(r.Context(), s.p, ops.LockOrder{Kind: kind, Domain: domain, Name: name, Reason: f.Get("reason"),
		Duration: clip(f.Get("duration")), Message: tx, Via: via})
	if err != nil {
		if st, _ := ops.Classify(err); !wantsJSON(r) && (st == http.StatusBadRequest || errors.Is(err, identity.ErrAlreadyLocked)) {
			return c.showLockForm(w, r, s, st, kind, domain, name, tx, f.Get("reason"), f.Get("duration"), back, err.Error())
		}
		return err
	}
	c.done(w, r, s, back, "Locked "+string(l.Kind)+" "+l.Name+" ("+l.Domain+").", api.LockOf(l, c.ops.Now()))
	return nil
}

func (c *Console) unlockSubmit(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	l, err := c.ops.Unlock(r.Context(), s.p, ops.UnlockOrder{Kind: f.Get("kind"), Domain: f.Get("domain"), Name: f.Get("name"), Reason: f.Get("reason"), Via: via})
	if err != nil {
		return err
	}
	c.done(w, r, s, localPath(f.Get("back"), "/locks"), "Unlocked "+string(l.Kind)+" "+l.Name+" ("+l.Domain+").", api.LockOf(l, c.ops.Now()))
	return nil
}

// lockRow is a lock with where it stands now.
type lockRow struct {
	identity.Lock
	State string
	URL   string
}

func (c *Console) locksPage(w http.ResponseWriter, r *http.Request, s *session) error {
	v := r.URL.Query()
	f := identity.ListFilter{Kind: identity.Kind(v.Get("kind")), Domain: clip(v.Get("domain")), Limit: 1000}
	if f.Kind != "" && f.Kind != identity.KindUser && f.Kind != identity.KindIdentity {
		return ops.Errorf(ops.ErrBadRequest, "kind %q: use user or identity", f.Kind)
	}
	state := v.Get("state")
	if state == "active" {
		f.State = identity.StateActive
	}
	locks, err := c.ops.Locks(r.Context(), s.p, f)
	if err != nil {
		return err
	}
	now := c.ops.Now()
	var active, past []lockRow
	for _, l := range locks {
		row := lockRow{Lock: l, State: l.State(now).String(), URL: lockURL(string(l.Kind), l.Domain, l.Name)}
		if l.Active(now) {
			active = append(active, row)
		} else {
			past = append(past, row)
		}
	}
	c.render(w, r, s, http.StatusOK, "locks", map[string]any{"Title": "Locks", "Active": active, "Past": past,
		"Kind": string(f.Kind), "Domain": v.Get("domain"), "State": state, "Scoped": !s.p.All(), "Back": r.URL.RequestURI()})
	return nil
}

func (c *Console) lockDetail(w http.ResponseWriter, r *http.Request, s *session) error {
	kind, domain, name := r.PathValue("kind"), r.PathValue("domain"), r.PathValue("name")
	t, err := c.ops.Target(s.p, kind, domain, name)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": string(t.Kind) + " " + t.Name, "Target": t, "Back": r.URL.RequestURI(),
		"LockForm": "/lock?" + url.Values{"kind": {kind}, "domain": {t.Domain}, "name": {t.Name}, "back": {r.URL.RequestURI()}}.Encode()}
	now := c.ops.Now()
	l, err := c.ops.GetLock(r.Context(), s.p, t)
	switch {
	case err == nil:
		data["Lock"] = lockRow{Lock: l, State: l.State(now).String()}
		data["Active"] = l.Active(now)
		h, err := c.ops.History(r.Context(), s.p, t)
		if err != nil && !errors.Is(err, identity.ErrNotFound) {
			return err
		}
		// Newest first, as people read a history.
		for i, j := 0, len(h)-1; i < j; i, j = i+1, j-1 {
			h[i], h[j] = h[j], h[i]
		}
		data["History"] = h
	case errors.Is(err, identity.ErrNotFound):
	default:
		return err
	}
	if t.Kind == identity.KindIdentity {
		u, err := c.ops.Usage(r.Context(), s.p, t)
		if err == nil {
			data["Usage"] = u
		} else if !errors.Is(err, identity.ErrNotFound) {
			return err
		}
	}
	logQ := url.Values{"domain": {t.Domain}}
	if t.Kind == identity.KindIdentity {
		logQ.Set("identity", t.Name)
	} else {
		logQ.Set("user", t.Name)
	}
	data["LogURL"] = "/log?" + logQ.Encode()
	c.render(w, r, s, http.StatusOK, "lock", data)
	return nil
}

// noticePreview shows the customer notice a lock of an identity sends
// (docs/config-notify.md, "Customer notice"), rendered with the lock's
// data as the notifier renders it.
func (c *Console) noticePreview(w http.ResponseWriter, r *http.Request, s *session) error {
	t, err := c.ops.Target(s.p, r.PathValue("kind"), r.PathValue("domain"), r.PathValue("name"))
	if err != nil {
		return err
	}
	n, err := c.ops.PreviewNotice(r.Context(), s.p, t)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "notice", map[string]any{"Title": "Customer notice for " + t.Name, "Target": t,
		"Notice": n, "LockURL": lockURL(string(t.Kind), t.Domain, t.Name)})
	return nil
}
