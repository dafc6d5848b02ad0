package api

import (
	"errors"
	"net/http"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

// pathTarget is the lock target named by the request's path, checked by
// ops.
func (a *API) pathTarget(r *http.Request, pr ops.Principal) (identity.Target, error) {
	if r.PathValue("domain") == "" {
		return a.ops.Target(pr, string(identity.KindUser), "", r.PathValue("name"))
	}
	return a.ops.Target(pr, string(identity.KindIdentity), r.PathValue("domain"), r.PathValue("name"))
}

func (a *API) listLocks(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "kind", "domain", "active", "limit")
	f := identity.ListFilter{Kind: identity.Kind(p.str("kind")), Domain: p.str("domain")}
	if f.Kind != "" && f.Kind != identity.KindUser && f.Kind != identity.KindIdentity {
		p.fail("kind %q: use user or identity", f.Kind)
	}
	if p.bool("active") {
		f.State = identity.StateActive
	}
	f.Limit = p.int("limit", 1000, 1, 10000)
	if p.err != nil {
		return p.err
	}
	locks, err := a.ops.Locks(r.Context(), pr, f)
	if err != nil {
		return err
	}
	now := a.ops.Now()
	res := apiv1.LockList{Locks: make([]apiv1.Lock, 0, len(locks))}
	for _, l := range locks {
		res.Locks = append(res.Locks, LockOf(l, now))
	}
	writeJSON(w, res)
	return nil
}

func (a *API) getLock(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	t, err := a.pathTarget(r, pr)
	if err != nil {
		return err
	}
	l, err := a.ops.GetLock(r.Context(), pr, t)
	if err != nil {
		return err
	}
	h, err := a.ops.History(r.Context(), pr, t)
	if err != nil {
		return err
	}
	writeJSON(w, apiv1.LockDetail{Lock: LockOf(l, a.ops.Now()), History: HistoryOf(h)})
	return nil
}

func (a *API) createLock(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var req apiv1.LockRequest
	if err := a.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	l, err := a.ops.Lock(r.Context(), pr, ops.LockOrder{Kind: req.Kind, Domain: req.Domain, Name: req.Name,
		Reason: req.Reason, Duration: req.Duration, Message: req.MessageID})
	if err != nil {
		return err
	}
	writeJSONStatus(w, http.StatusCreated, LockOf(l, a.ops.Now()))
	return nil
}

func (a *API) unlock(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "reason")
	if p.err != nil {
		return p.err
	}
	var req apiv1.UnlockRequest
	if err := a.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.Reason == "" {
		req.Reason = p.str("reason")
	}
	kind, domain := string(identity.KindUser), ""
	if r.PathValue("domain") != "" {
		kind, domain = string(identity.KindIdentity), r.PathValue("domain")
	}
	l, err := a.ops.Unlock(r.Context(), pr, ops.UnlockOrder{Kind: kind, Domain: domain, Name: r.PathValue("name"), Reason: req.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, LockOf(l, a.ops.Now()))
	return nil
}

func (a *API) usage(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	t, err := a.ops.Target(pr, string(identity.KindIdentity), r.PathValue("domain"), r.PathValue("name"))
	if err != nil {
		return err
	}
	u, err := a.ops.Usage(r.Context(), pr, t)
	if errors.Is(err, identity.ErrNotFound) {
		return ops.Errorf(ops.ErrNotFound, "identity %s (%s) has sent nothing counted in the current windows", t.Name, t.Domain)
	}
	if err != nil {
		return err
	}
	writeJSON(w, UsageOf(u))
	return nil
}

func (a *API) listWouldLocks(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "domain", "identity", "since", "from", "limit")
	f := identity.WouldLockFilter{Domain: p.str("domain"), Identity: p.str("identity")}
	f.Since, _ = p.period(a.ops.Now())
	f.Limit = p.int("limit", 100, 1, 1000)
	if p.err != nil {
		return p.err
	}
	list, err := a.ops.WouldLocks(r.Context(), pr, f)
	if err != nil {
		return err
	}
	res := apiv1.WouldLockList{WouldLocks: make([]apiv1.WouldLock, 0, len(list))}
	for _, x := range list {
		res.WouldLocks = append(res.WouldLocks, WouldLockOf(x))
	}
	writeJSON(w, res)
	return nil
}

// noticePreview renders an identity's customer notice without sending it.
func (a *API) noticePreview(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	t, err := a.ops.Target(pr, string(identity.KindIdentity), r.PathValue("domain"), r.PathValue("name"))
	if err != nil {
		return err
	}
	n, err := a.ops.PreviewNotice(r.Context(), pr, t)
	if err != nil {
		return err
	}
	out := NoticeOf(n)
	out.Domain, out.Identity = t.Domain, t.Name
	writeJSON(w, out)
	return nil
}

// sendNotice queues an identity's customer notice in the notification
// outbox: 202, the mail goes out with the outbox's retries.
func (a *API) sendNotice(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "reason")
	if p.err != nil {
		return p.err
	}
	var req apiv1.NoticeRequest
	if err := a.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.Reason == "" {
		req.Reason = p.str("reason")
	}
	domain, name := r.PathValue("domain"), r.PathValue("name")
	n, err := a.ops.SendNotice(r.Context(), pr, ops.NoticeOrder{Domain: domain, Name: name, Reason: req.Reason, Preview: req.Preview})
	if err != nil {
		return err
	}
	out := NoticeOf(n)
	out.Domain, out.Identity, out.Queued = domain, name, true
	writeJSONStatus(w, http.StatusAccepted, out)
	return nil
}
