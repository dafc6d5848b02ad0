package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/outguard/outguard/identity"
)

// AuditNotify is the audit action of a customer notice an operator sent.
const AuditNotify = "notify"

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
	// Digest names this rendering (recipient, subject and body): a
	// send that quotes it is refused when the notice rendered then
	// differs from the one previewed.
	Digest string
}

// digest is the Digest of n.
func (n Notice) digest() string {
	h := sha256.New()
	for _, s := range []string{n.To, n.Subject, n.Body} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// NoticeRenderer renders the customer notice of l's domain for l; false
// when the domain has none.
type NoticeRenderer interface {
	RenderNotice(l identity.Lock) (Notice, bool, error)
}

// NoticeOutbox queues the customer notice of l's domain, rendered for l,
// in the notification outbox (internal/notify), which mails it to the
// notice's recipient with retries, and returns the notice queued.
type NoticeOutbox interface {
	QueueNotice(ctx context.Context, l identity.Lock) (Notice, error)
}

// ErrNoNotice: the target's domain has no customer notice.
var ErrNoNotice = errors.New("no customer notice is configured for this domain (domains[].customer_notice, docs/config-notify.md)")

// PreviewNotice renders, for p, the customer notice that a lock of the
// identity t sends: with its current lock's data, or, when it is not
// locked, with those of a permanent lock taken now (Sample).
func (o *Ops) PreviewNotice(ctx context.Context, p Principal, t identity.Target) (Notice, error) {
	n, _, err := o.notice(ctx, p, t)
	return n, err
}

// notice renders the customer notice of t for p, with the lock it was
// rendered for.
func (o *Ops) notice(ctx context.Context, p Principal, t identity.Target) (Notice, identity.Lock, error) {
	if err := o.allow(p, string(t.Kind), t.Name, t.Domain); err != nil {
		return Notice{}, identity.Lock{}, err
	}
	if t.Kind != identity.KindIdentity {
		return Notice{}, identity.Lock{}, Errorf(ErrBadRequest, "customer notices are sent for identities only, not %s locks", t.Kind)
	}
	if o.opts.Notices == nil {
		return Notice{}, identity.Lock{}, Errorf(ErrNotFound, "%v", ErrNoNotice)
	}
	l, err := o.opts.Locks.Get(ctx, t)
	sample := false
	switch {
	case err == nil && l.Active(o.now()):
	case err == nil || errors.Is(err, identity.ErrNotFound):
		sample = true
		l = identity.Lock{Target: t, Reason: "(the reason given when locking)", Actor: p.Name, Start: o.now().UTC()}
	default:
		return Notice{}, identity.Lock{}, err
	}
	n, ok, err := o.opts.Notices.RenderNotice(l)
	if err != nil {
		return Notice{}, identity.Lock{}, err
	}
	if !ok {
		return Notice{}, identity.Lock{}, Errorf(ErrNotFound, "%v", ErrNoNotice)
	}
	n.Sample = sample
	n.Digest = n.digest()
	return n, l, nil
}

// NoticeOrder is an operator's request to send an identity's customer
// notice now.
type NoticeOrder struct {
	// Domain and Name name the identity, as for Target.
	Domain, Name string
	// Reason is required: why the customer is told again, for the audit
	// trail.
	Reason string
	// Preview, optional, is the Digest of the notice the operator
	// previewed: the send is refused (ErrConflict) when the notice
	// rendered now differs (a reload changed the template, the lock
	// changed). The console always sends it.
	Preview string
	// Via names the front end in the audit entry; "" for the API.
	Via string
}

// SendNotice queues, for p, the customer notice of a locked identity's
// domain, rendered with its lock's data, for its recipient
// (docs/config-notify.md, "Customer notice"), and writes the audit entry.
// It is refused when the domain has no notice (ErrNotFound), the identity
// is not locked or the notice has no recipient (ErrConflict), or the
// daemon sends no notices (ErrUnavailable).
func (o *Ops) SendNotice(ctx context.Context, p Principal, req NoticeOrder) (Notice, error) {
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return Notice{}, err
	}
	t, err := o.Target(p, string(identity.KindIdentity), req.Domain, req.Name)
	if err != nil {
		return Notice{}, err
	}
	n, l, err := o.notice(ctx, p, t)
	if err != nil {
		return Notice{}, err
	}
	switch {
	case n.Sample:
		return Notice{}, Errorf(ErrConflict, "identity %s is not locked: a customer notice tells the customer of a lock; lock it first (the lock sends the notice)", t.Name)
	case n.To == "":
		return Notice{}, Errorf(ErrConflict, "no contact for identity %s: the domain's customer_notice goes to the identity, which is not an email address; set customer_notice.to to an address (docs/config-notify.md)", t.Name)
	case req.Preview != "" && req.Preview != n.Digest:
		return Notice{}, Errorf(ErrConflict, "the notice changed since it was previewed (a reload or a change of the lock); preview it again")
	case o.opts.NoticeOutbox == nil:
		return Notice{}, Errorf(ErrUnavailable, "this daemon sends no customer notices")
	}
	sent, err := o.opts.NoticeOutbox.QueueNotice(ctx, l)
	if err != nil {
		return Notice{}, err
	}
	sent.Digest = sent.digest()
	o.record(p, AuditNotify, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, "customer notice to "+sent.To, req.Via)
	return sent, nil
}
