package ops

import (
	"context"
	"errors"

	"github.com/outguard/outguard/identity"
)

// Notice is a customer notice rendered for a lock
// (docs/config-notify.md, "Customer notice").
type Notice struct {
	// To is where it goes; "" when the domain's rule gives no address
	// (the identity is not an email address): nothing would be sent.
	To            string
	Subject, Body string
	// Sample is set when the target is not locked: the notice is
	// rendered with the data of a permanent lock taken now.
	Sample bool
}

// NoticeRenderer renders the customer notice of l's domain for l; false
// when the domain has none.
type NoticeRenderer interface {
	RenderNotice(l identity.Lock) (Notice, bool, error)
}

// ErrNoNotice: the target's domain has no customer notice.
var ErrNoNotice = errors.New("no customer notice is configured for this domain (domains[].customer_notice, docs/config-notify.md)")

// PreviewNotice renders, for p, the customer notice that a lock of the
// identity t sends: with its current lock's data, or, when it is not
// locked, with those of a permanent lock taken now (Sample).
func (o *Ops) PreviewNotice(ctx context.Context, p Principal, t identity.Target) (Notice, error) {
	if err := o.allow(p, string(t.Kind), t.Name, t.Domain); err != nil {
		return Notice{}, err
	}
	if t.Kind != identity.KindIdentity {
		return Notice{}, Errorf(ErrBadRequest, "customer notices are sent for identities only, not %s locks", t.Kind)
	}
	if o.opts.Notices == nil {
		return Notice{}, Errorf(ErrNotFound, "%v", ErrNoNotice)
	}
	l, err := o.opts.Locks.Get(ctx, t)
	sample := false
	switch {
	case err == nil && l.Active(o.now()):
	case err == nil || errors.Is(err, identity.ErrNotFound):
		sample = true
		l = identity.Lock{Target: t, Reason: "(the reason given when locking)", Actor: p.Name, Start: o.now().UTC()}
	default:
		return Notice{}, err
	}
	n, ok, err := o.opts.Notices.RenderNotice(l)
	if err != nil {
		return Notice{}, err
	}
	if !ok {
		return Notice{}, Errorf(ErrNotFound, "%v", ErrNoNotice)
	}
	n.Sample = sample
	return n, nil
}
