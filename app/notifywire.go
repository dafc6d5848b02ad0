package app

import (
	"context"
	"errors"
	"strings"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/notify"
)

// newNotifier builds the webhook/mail notifier when the configuration
// asks for one; nil otherwise.
func (a *App) newNotifier(cfg *config.Config) (*notify.Notifier, error) {
	w := cfg.Notify.Webhook
	if w.URL == "" && !cfg.Notify.MailOnAutoLock && !anyCustomerNotice(cfg) {
		return nil, nil
	}
	var events []notify.EventType
	for _, e := range w.Events {
		t, err := notify.ParseEventType(e)
		if err != nil {
			return nil, err
		}
		events = append(events, t)
	}
	o := notify.Options{
		DB: a.db, URL: w.URL, Secret: []byte(w.Secret), Events: events,
		Timeout: w.Timeout.D(), RetryInitial: w.Retry.Initial.D(), RetryMax: w.Retry.Max.D(), MaxAge: w.MaxAge.D(),
		Mail:       notify.MailOptions{From: cfg.ARF.From, Hostname: cfg.Hostname},
		Now:        a.opts.Now,
		Logger:     a.log.With("component", "notify"),
		Registerer: a.reg,
	}
	if a.pg != nil {
		// store.backend postgres: the fleet's shared outbox, worked by
		// every node (docs/config-notify.md, "Several nodes").
		o.DB, o.Postgres, o.Node = nil, a.pg, cfg.NodeName
	}
	if cfg.Notify.MailOnAutoLock || anyCustomerNotice(cfg) {
		send := a.arfSend(cfg)
		o.SendMail = func(ctx context.Context, to string, raw []byte) error { return send(ctx, "", []string{to}, raw) }
		o.Customer = a.customerNotice
	}
	if cfg.Notify.MailOnAutoLock {
		o.AbuseAddress = func(domain, user string) string {
			if up, ok := a.pipeline.state.Load().users[user]; ok {
				return up.abuseAddress
			}
			return a.Config().ARF.AbuseAddress
		}
	}
	return notify.New(o)
}

// anyCustomerNotice reports whether a domain has a customer notice.
func anyCustomerNotice(cfg *config.Config) bool {
	for _, d := range cfg.Domains {
		if d.CustomerNotice.On() {
			return true
		}
	}
	return false
}

// customerNotice is the customer notice of domain in the running
// configuration (docs/config-notify.md, "Customer notice").
func (a *App) customerNotice(domain string) (notify.CustomerNotice, bool) {
	for _, d := range a.Config().Domains {
		if strings.EqualFold(d.Name, domain) && d.CustomerNotice.On() {
			n := d.CustomerNotice
			return notify.CustomerNotice{To: n.To, Subject: n.Subject, Body: n.Body}, true
		}
	}
	return notify.CustomerNotice{}, false
}

// noticeRenderer renders the customer notice of a lock, for the
// console's preview, exactly as the notifier renders the one it sends.
type noticeRenderer struct{ a *App }

func (r noticeRenderer) RenderNotice(l identity.Lock) (ops.Notice, bool, error) {
	cn, ok := r.a.customerNotice(l.Domain)
	if !ok {
		return ops.Notice{}, false, nil
	}
	typ := identity.EventLock
	if l.Automatic {
		typ = identity.EventAutoLock
	}
	ev := notify.FromIdentity(identity.Event{Type: typ, Target: l.Target, At: l.Start, Lock: &l})
	subject, body, err := notify.RenderNotice(cn, ev)
	if err != nil {
		return ops.Notice{}, false, err
	}
	return ops.Notice{To: cn.Recipient(ev), Subject: subject, Body: body}, true, nil
}

// QueueNotice queues the customer notice of l's domain for l in the
// notifier's outbox: the notify action of the console and the API.
func (r noticeRenderer) QueueNotice(ctx context.Context, l identity.Lock) (ops.Notice, error) {
	n := r.a.notifier
	if n == nil {
		return ops.Notice{}, ops.Errorf(ops.ErrUnavailable, "this daemon was started without customer notices: the notifier is built at start, restart after turning the first one on (docs/config-notify.md)")
	}
	cn, ok := r.a.customerNotice(l.Domain)
	if !ok {
		return ops.Notice{}, ops.Errorf(ops.ErrNotFound, "%v", ops.ErrNoNotice)
	}
	typ := identity.EventLock
	if l.Automatic {
		typ = identity.EventAutoLock
	}
	ev := notify.FromIdentity(identity.Event{Type: typ, Target: l.Target, At: l.Start, Lock: &l})
	subject, body, err := notify.RenderNotice(cn, ev)
	if err != nil {
		return ops.Notice{}, err
	}
	to := cn.Recipient(ev)
	if to == "" {
		return ops.Notice{}, ops.Errorf(ops.ErrConflict, "no contact for identity %s: the customer notice goes to the identity, which is not an email address", l.Name)
	}
	if _, err := n.NotifyCustomer(ctx, ev, to); err != nil {
		if errors.Is(err, notify.ErrNoCustomerNotice) {
			return ops.Notice{}, ops.Errorf(ops.ErrUnavailable, "this daemon was started without customer notices: restart it to send them (docs/config-notify.md)")
		}
		return ops.Notice{}, err
	}
	return ops.Notice{To: to, Subject: subject, Body: body}, nil
}
