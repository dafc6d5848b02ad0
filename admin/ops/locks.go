package ops

import (
	"context"
	"strings"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/duration"
	"github.com/outguard/outguard/quarantine"
)

// maxReasonLength bounds a lock or unlock reason.
const maxReasonLength = 1000

// maxLockDuration bounds a temporary lock; longer ones should be
// permanent.
const maxLockDuration = 10 * 365 * 24 * time.Hour

// Target resolves and checks a lock target for p: the user's domain comes
// from UserDomain; p must cover the domain (ErrForbidden) and the user or
// the identity's domain must exist (ErrNotFound).
func (o *Ops) Target(p Principal, kind, domain, name string) (identity.Target, error) {
	name = strings.TrimSpace(name)
	domain = strings.TrimSpace(domain)
	if name == "" {
		return identity.Target{}, Errorf(ErrBadRequest, "name is required: the user or identity to lock")
	}
	switch identity.Kind(kind) {
	case identity.KindUser:
		if o.opts.UserDomain != nil {
			d, ok := o.opts.UserDomain(name)
			if !ok {
				return identity.Target{}, Errorf(ErrNotFound, "no outgoing user %q", name)
			}
			if domain != "" && !strings.EqualFold(domain, d) {
				if !p.Allows(d) {
					return identity.Target{}, Errorf(ErrForbidden, "user %s belongs to another administrative domain than your token's (%s)", name, p.Domain)
				}
				return identity.Target{}, Errorf(ErrBadRequest, "user %s belongs to domain %s, not %s", name, d, domain)
			}
			domain = d
		} else if domain == "" {
			domain = p.Domain
		}
		if domain == "" {
			return identity.Target{}, Errorf(ErrBadParameter, "domain is required for user %s", name)
		}
	case identity.KindIdentity:
		if domain == "" {
			domain = p.Domain
		}
		if domain == "" {
			return identity.Target{}, Errorf(ErrBadParameter, "domain is required: identities belong to an administrative domain")
		}
	default:
		return identity.Target{}, Errorf(ErrBadRequest, "kind %q: use user or identity", kind)
	}
	if !p.Allows(domain) {
		return identity.Target{}, Errorf(ErrForbidden, "%s %s belongs to another administrative domain than your token's (%s)", kind, name, p.Domain)
	}
	if kind == string(identity.KindIdentity) && o.opts.KnownDomain != nil && !o.opts.KnownDomain(domain) {
		return identity.Target{}, Errorf(ErrNotFound, "no administrative domain %q", domain)
	}
	return identity.Target{Kind: identity.Kind(kind), Domain: domain, Name: name}, nil
}

// allow is the scope check of an object of domain d, for the reads
// given a target already resolved.
func (o *Ops) allow(p Principal, kind, name, d string) error {
	if !p.Allows(d) {
		return Errorf(ErrForbidden, "%s %s belongs to another administrative domain than your token's (%s)", kind, name, p.Domain)
	}
	return nil
}

// checkReason trims a reason and checks it: one line of at most
// maxReasonLength bytes, not empty when required.
func checkReason(reason string, required bool) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "" && required:
		return "", Errorf(ErrBadRequest, "reason is required: say why, for the history and the audit trail")
	case len(reason) > maxReasonLength:
		return "", Errorf(ErrBadRequest, "reason is longer than %d bytes", maxReasonLength)
	case strings.ContainsAny(reason, "\r\n\x00"):
		return "", Errorf(ErrBadRequest, "reason must be one line")
	}
	return reason, nil
}

// lockDuration parses a lock's duration: "" is permanent (0).
func lockDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := duration.Parse(s)
	if err != nil || d <= 0 || d > maxLockDuration {
		return 0, Errorf(ErrBadRequest, "duration %q: use a positive duration like 90m, 12h or 7d (leave it out for a permanent lock)", s)
	}
	return d, nil
}

// lockDetail is a lock's audit detail: permanent, or its duration and
// end.
func lockDetail(d time.Duration, l identity.Lock) string {
	if d <= 0 {
		return "permanent"
	}
	return "for " + d.String() + " until " + l.Expires.UTC().Format(time.RFC3339)
}

// LockOrder is a lock asked for by an operator.
type LockOrder struct {
	// Kind is user or identity; Domain and Name as for Target.
	Kind, Domain, Name string
	// Reason is required.
	Reason string
	// Duration makes the lock temporary ("90m", "12h", "7d"); "" is
	// permanent.
	Duration string
	// Message, optional, is the log id of the message the lock was
	// taken from: it is named in the lock's reason, so that the lock's
	// history links to it, and taught to the content model as spam.
	Message string
	// Via names the front end in the audit entry ("console"); "" for
	// the API.
	Via string
}

// Lock locks a target for p, with the reason and duration checks, and
// writes the audit entry.
func (o *Ops) Lock(ctx context.Context, p Principal, req LockOrder) (identity.Lock, error) {
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return identity.Lock{}, err
	}
	d, err := lockDuration(req.Duration)
	if err != nil {
		return identity.Lock{}, err
	}
	t, err := o.Target(p, req.Kind, req.Domain, req.Name)
	if err != nil {
		return identity.Lock{}, err
	}
	if req.Message != "" {
		if _, err := quarantine.ParseID(req.Message); err != nil {
			return identity.Lock{}, Errorf(ErrBadRequest, "message %q: not a log id", req.Message)
		}
		if len(reason)+len(req.Message)+12 <= maxReasonLength {
			reason += " (message " + req.Message + ")"
		}
	}
	l, err := o.opts.Locks.Lock(ctx, identity.LockRequest{Target: t, Reason: reason, Actor: p.Name, Duration: d})
	if err != nil {
		return identity.Lock{}, err
	}
	o.record(p, AuditLock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, lockDetail(d, l), req.Via)
	if req.Message != "" && o.opts.Teacher != nil {
		// The message that prompted the lock is spam. A failure is
		// logged: the lock itself happened.
		if _, err := o.LearnStored(ctx, p, req.Message, true, "locked from this message", ""); err != nil {
			o.log.Info("admin: lock's message not learnt", "id", req.Message, "err", err)
		}
	}
	return l, nil
}

// UnlockOrder is an unlock asked for by an operator.
type UnlockOrder struct {
	Kind, Domain, Name string
	// Reason is required.
	Reason string
	// Via names the front end in the audit entry; "" for the API.
	Via string
}

// Unlock lifts the lock on a target for p and writes the audit entry.
func (o *Ops) Unlock(ctx context.Context, p Principal, req UnlockOrder) (identity.Lock, error) {
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return identity.Lock{}, err
	}
	t, err := o.Target(p, req.Kind, req.Domain, req.Name)
	if err != nil {
		return identity.Lock{}, err
	}
	l, err := o.opts.Locks.Unlock(ctx, t, p.Name, reason)
	if err != nil {
		return identity.Lock{}, err
	}
	o.record(p, AuditUnlock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, "", req.Via)
	return l, nil
}

// Locks lists the locks p may see: a domain-scoped principal sees its
// domain's (none when it asks for another domain).
func (o *Ops) Locks(ctx context.Context, p Principal, f identity.ListFilter) ([]identity.Lock, error) {
	if !p.All() {
		if f.Domain != "" && !p.Allows(f.Domain) {
			return []identity.Lock{}, nil
		}
		f.Domain = p.Domain
	}
	locks, err := o.opts.Locks.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]identity.Lock, 0, len(locks))
	for _, l := range locks {
		if p.Allows(l.Domain) {
			out = append(out, l)
		}
	}
	return out, nil
}

// GetLock returns the latest lock of t, a target resolved by Target.
func (o *Ops) GetLock(ctx context.Context, p Principal, t identity.Target) (identity.Lock, error) {
	if err := o.allow(p, string(t.Kind), t.Name, t.Domain); err != nil {
		return identity.Lock{}, err
	}
	return o.opts.Locks.Get(ctx, t)
}

// Locked reports whether t is locked now, for p.
func (o *Ops) Locked(ctx context.Context, p Principal, t identity.Target) bool {
	l, err := o.GetLock(ctx, p, t)
	return err == nil && l.Active(o.now())
}

// History returns the history of t, oldest first, [] rather than nil.
func (o *Ops) History(ctx context.Context, p Principal, t identity.Target) ([]identity.HistoryEntry, error) {
	if err := o.allow(p, string(t.Kind), t.Name, t.Domain); err != nil {
		return nil, err
	}
	h, err := o.opts.Locks.History(ctx, t)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = []identity.HistoryEntry{}
	}
	return h, nil
}

// Usage returns how close the identity t is to an automatic lock; an
// error wrapping identity.ErrNotFound when it has sent nothing counted.
func (o *Ops) Usage(ctx context.Context, p Principal, t identity.Target) (identity.Usage, error) {
	if err := o.allow(p, string(t.Kind), t.Name, t.Domain); err != nil {
		return identity.Usage{}, err
	}
	return o.opts.Locks.Usage(ctx, t.Domain, t.Name)
}

// WouldLocks lists the monitor-mode crossings p may see.
func (o *Ops) WouldLocks(ctx context.Context, p Principal, f identity.WouldLockFilter) ([]identity.WouldLock, error) {
	wl, ok := o.opts.Locks.(WouldLockLister)
	if !ok {
		return nil, Errorf(ErrUnavailable, "the lock manager keeps no would-lock records")
	}
	out := []identity.WouldLock{}
	if !p.All() {
		if f.Domain != "" && !p.Allows(f.Domain) {
			return out, nil
		}
		f.Domain = p.Domain
	}
	list, err := wl.WouldLocks(ctx, f)
	if err != nil {
		return nil, err
	}
	for _, x := range list {
		if p.Allows(x.Target.Domain) {
			out = append(out, x)
		}
	}
	return out, nil
}
