package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/outguard/outguard/identity"
)

// maxReasonLength bounds a lock or unlock reason.
const maxReasonLength = 1000

// maxLockDuration bounds a temporary lock; longer ones should be
// permanent.
const maxLockDuration = 10 * 365 * 24 * time.Hour

// LockJSON is a lock as the API returns it: identity.Lock and whether it
// is in force.
type LockJSON struct {
	identity.Lock
	// State is active, expired or unlocked.
	State string `json:"state"`
}

// LockDetail is the answer of GET /api/v1/locks/...: the latest lock
// with the target's history (each automatic lock's evidence included).
type LockDetail struct {
	Lock    LockJSON                `json:"lock"`
	History []identity.HistoryEntry `json:"history"`
}

// LockList is the answer of GET /api/v1/locks.
type LockList struct {
	Locks []LockJSON `json:"locks"`
}

// LockRequest is the body of POST /api/v1/locks.
type LockRequest struct {
	// Kind is user or identity.
	Kind string `json:"kind"`
	// Domain is the administrative domain: required for an identity
	// (a domain-scoped token may leave it out), checked for a user.
	Domain string `json:"domain"`
	// Name is the outgoing user or the identity.
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Duration makes the lock temporary ("90m", "12h", "7d"); "" is
	// permanent.
	Duration string `json:"duration"`
	// MessageID, optional, is the log id of the message the lock was
	// taken from (a console row): that message is taught to the content
	// model as spam, when its content is kept.
	MessageID string `json:"message_id,omitempty"`
}

// UnlockRequest is the body of DELETE /api/v1/locks/...; the reason is
// required.
type UnlockRequest struct {
	Reason string `json:"reason"`
}

func (a *API) lockJSON(l identity.Lock) LockJSON {
	return LockJSON{Lock: l, State: l.State(a.now()).String()}
}

// target resolves and checks a lock target: the user's domain comes from
// UserDomain; the principal must cover the domain (403) and the user or
// domain must exist (404).
func (a *API) target(kind, domain, name string, pr Principal) (identity.Target, error) {
	name = strings.TrimSpace(name)
	domain = strings.TrimSpace(domain)
	if name == "" {
		return identity.Target{}, errorf(ErrBadRequest, "name is required: the user or identity to lock")
	}
	switch identity.Kind(kind) {
	case identity.KindUser:
		if a.opts.UserDomain != nil {
			d, ok := a.opts.UserDomain(name)
			if !ok {
				return identity.Target{}, errorf(ErrNotFound, "no outgoing user %q", name)
			}
			if domain != "" && !strings.EqualFold(domain, d) {
				if !pr.Allows(d) {
					return identity.Target{}, errorf(ErrForbidden, "user %s belongs to another administrative domain than your token's (%s)", name, pr.Domain)
				}
				return identity.Target{}, errorf(ErrBadRequest, "user %s belongs to domain %s, not %s", name, d, domain)
			}
			domain = d
		} else if domain == "" {
			domain = pr.Domain
		}
		if domain == "" {
			return identity.Target{}, errorf(ErrBadParameter, "domain is required for user %s", name)
		}
	case identity.KindIdentity:
		if domain == "" {
			domain = pr.Domain
		}
		if domain == "" {
			return identity.Target{}, errorf(ErrBadParameter, "domain is required: identities belong to an administrative domain")
		}
	default:
		return identity.Target{}, errorf(ErrBadRequest, "kind %q: use user or identity", kind)
	}
	if !pr.Allows(domain) {
		return identity.Target{}, errorf(ErrForbidden, "%s %s belongs to another administrative domain than your token's (%s)", kind, name, pr.Domain)
	}
	if kind == string(identity.KindIdentity) && a.opts.KnownDomain != nil && !a.opts.KnownDomain(domain) {
		return identity.Target{}, errorf(ErrNotFound, "no administrative domain %q", domain)
	}
	return identity.Target{Kind: identity.Kind(kind), Domain: domain, Name: name}, nil
}

// pathTarget is target for the lock named by the request's path.
func (a *API) pathTarget(r *http.Request, pr Principal) (identity.Target, error) {
	if r.PathValue("domain") == "" {
		return a.target(string(identity.KindUser), "", r.PathValue("name"), pr)
	}
	return a.target(string(identity.KindIdentity), r.PathValue("domain"), r.PathValue("name"), pr)
}

func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "" && required:
		return "", errorf(ErrBadRequest, "reason is required: say why, for the history and the audit trail")
	case len(reason) > maxReasonLength:
		return "", errorf(ErrBadRequest, "reason is longer than %d bytes", maxReasonLength)
	case strings.ContainsAny(reason, "\r\n\x00"):
		return "", errorf(ErrBadRequest, "reason must be one line")
	}
	return reason, nil
}

func (a *API) listLocks(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "kind", "domain", "active", "limit")
	f := identity.ListFilter{Kind: identity.Kind(p.str("kind")), Domain: p.str("domain")}
	if f.Kind != "" && f.Kind != identity.KindUser && f.Kind != identity.KindIdentity {
		p.fail("kind %q: use user or identity", f.Kind)
	}
	if p.bool("active") {
		f.State = identity.StateActive
	}
	limit := p.int("limit", 1000, 1, 10000)
	if p.err != nil {
		return p.err
	}
	if !pr.All() {
		if f.Domain != "" && !pr.Allows(f.Domain) {
			writeJSON(w, LockList{Locks: []LockJSON{}})
			return nil
		}
		f.Domain = pr.Domain
	}
	f.Limit = limit
	locks, err := a.opts.Locks.List(r.Context(), f)
	if err != nil {
		return err
	}
	res := LockList{Locks: []LockJSON{}}
	for _, l := range locks {
		if pr.Allows(l.Domain) {
			res.Locks = append(res.Locks, a.lockJSON(l))
		}
	}
	writeJSON(w, res)
	return nil
}

func (a *API) getLock(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	t, err := a.pathTarget(r, pr)
	if err != nil {
		return err
	}
	l, err := a.opts.Locks.Get(r.Context(), t)
	if err != nil {
		return err
	}
	h, err := a.opts.Locks.History(r.Context(), t)
	if err != nil {
		return err
	}
	if h == nil {
		h = []identity.HistoryEntry{}
	}
	writeJSON(w, LockDetail{Lock: a.lockJSON(l), History: h})
	return nil
}

func (a *API) createLock(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	var req LockRequest
	if err := a.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return err
	}
	var d time.Duration
	if req.Duration != "" {
		d, err = ParseDuration(req.Duration)
		if err != nil || d <= 0 || d > maxLockDuration {
			return errorf(ErrBadRequest, "duration %q: use a positive duration like 90m, 12h or 7d (leave it out for a permanent lock)", req.Duration)
		}
	}
	t, err := a.target(req.Kind, req.Domain, req.Name, pr)
	if err != nil {
		return err
	}
	l, err := a.opts.Locks.Lock(r.Context(), identity.LockRequest{Target: t, Reason: reason, Actor: pr.Name, Duration: d})
	if err != nil {
		return err
	}
	detail := "permanent"
	if d > 0 {
		detail = "for " + d.String() + " until " + l.Expires.UTC().Format(time.RFC3339)
	}
	a.record(pr, AuditLock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, detail)
	if req.MessageID != "" {
		a.learnFromLock(r.Context(), pr, req.MessageID)
	}
	writeJSONStatus(w, http.StatusCreated, a.lockJSON(l))
	return nil
}

func (a *API) unlock(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "reason")
	if p.err != nil {
		return p.err
	}
	var req UnlockRequest
	if err := a.decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.Reason == "" {
		req.Reason = p.str("reason")
	}
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return err
	}
	t, err := a.pathTarget(r, pr)
	if err != nil {
		return err
	}
	l, err := a.opts.Locks.Unlock(r.Context(), t, pr.Name, reason)
	if err != nil {
		return err
	}
	a.record(pr, AuditUnlock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, "")
	writeJSON(w, a.lockJSON(l))
	return nil
}

func (a *API) usage(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	t, err := a.target(string(identity.KindIdentity), r.PathValue("domain"), r.PathValue("name"), pr)
	if err != nil {
		return err
	}
	u, err := a.opts.Locks.Usage(r.Context(), t.Domain, t.Name)
	if errors.Is(err, identity.ErrNotFound) {
		return errorf(ErrNotFound, "identity %s (%s) has sent nothing counted in the current windows", t.Name, t.Domain)
	}
	if err != nil {
		return err
	}
	if u.Counters == nil {
		u.Counters = []identity.CounterUsage{}
	}
	writeJSON(w, u)
	return nil
}

// WouldLockLister is what the API needs to list monitor-mode crossings;
// *identity.Manager implements it. Without it GET /api/v1/would-locks
// answers 501.
type WouldLockLister interface {
	WouldLocks(ctx context.Context, f identity.WouldLockFilter) ([]identity.WouldLock, error)
}

var _ WouldLockLister = (*identity.Manager)(nil)

// WouldLockList is the answer of GET /api/v1/would-locks.
type WouldLockList struct {
	WouldLocks []identity.WouldLock `json:"would_locks"`
}

func (a *API) listWouldLocks(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "domain", "identity", "since", "from", "limit")
	f := identity.WouldLockFilter{Domain: p.str("domain"), Identity: p.str("identity")}
	f.Since, _ = p.period(a.now())
	f.Limit = p.int("limit", 100, 1, 1000)
	if p.err != nil {
		return p.err
	}
	wl, ok := a.opts.Locks.(WouldLockLister)
	if !ok {
		return errorf(ErrUnavailable, "the lock manager keeps no would-lock records")
	}
	res := WouldLockList{WouldLocks: []identity.WouldLock{}}
	if !pr.All() {
		if f.Domain != "" && !pr.Allows(f.Domain) {
			writeJSON(w, res)
			return nil
		}
		f.Domain = pr.Domain
	}
	list, err := wl.WouldLocks(r.Context(), f)
	if err != nil {
		return err
	}
	for _, x := range list {
		if pr.Allows(x.Target.Domain) {
			res.WouldLocks = append(res.WouldLocks, x)
		}
	}
	writeJSON(w, res)
	return nil
}
