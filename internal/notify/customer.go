package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/outguard/outguard/internal/notifytext"
)

// ChannelCustomer is the outbox channel of customer notices.
const ChannelCustomer = "customer"

// CustomerNotice is a domain's notice to the customer behind a locked
// identity (docs/config-notify.md, "Customer notice"): templates checked
// with notifytext.Check when the configuration was loaded.
type CustomerNotice struct {
	// To is "identity" (the locked identity, when it is an email
	// address) or a fixed address.
	To      string
	Subject string
	Body    string
}

// NoticeToIdentity is the To of a notice sent to the locked identity.
const NoticeToIdentity = "identity"

// Recipient is where n goes for ev: the fixed address, or the locked
// identity when it is a bare email address; "" when there is none.
func (n CustomerNotice) Recipient(ev Event) string {
	if n.To != NoticeToIdentity {
		return n.To
	}
	a, err := mail.ParseAddress(ev.Identity)
	if err != nil || a.Name != "" || !strings.EqualFold(a.Address, ev.Identity) {
		return ""
	}
	return a.Address
}

// noticeEvent reports whether ev starts a lock of an identity: the
// events a customer notice is sent for.
func noticeEvent(ev Event) bool {
	return (ev.Type == EventLock || ev.Type == EventAutoLock) && ev.Lock != nil && ev.Lock.Kind == "identity" && ev.Identity != ""
}

// ErrNoCustomerNotice: NotifyCustomer was asked for a domain without a
// customer notice, or the notifier sends no mail.
var ErrNoCustomerNotice = errors.New("notify: no customer notice")

// NotifyCustomer stores, for delivery to to, the customer notice of ev's
// domain rendered for ev (a lock of an identity): an operator's request
// to send it now, whatever notices the lock sent already (the console's
// and the API's notify action, docs/config-notify.md, "Customer notice").
// It returns once the item is committed, like Notify; ev.ID is set when
// empty and names the mail's Message-ID, so every request is its own
// mail. The template is rendered again at delivery, as for a lock's own
// notice.
func (n *Notifier) NotifyCustomer(ctx context.Context, ev Event, to string) (Event, error) {
	if err := ctx.Err(); err != nil {
		return ev, err
	}
	n.mu.Lock()
	stopped := n.stopped
	n.mu.Unlock()
	if stopped {
		return ev, ErrStopped
	}
	if n.opts.SendMail == nil || n.opts.Customer == nil {
		return ev, fmt.Errorf("%w: the notifier sends no customer notices", ErrNoCustomerNotice)
	}
	if _, ok := n.opts.Customer(ev.Domain); !ok {
		return ev, fmt.Errorf("%w for domain %s", ErrNoCustomerNotice, ev.Domain)
	}
	if !noticeEvent(ev) || to == "" {
		return ev, fmt.Errorf("%w: a customer notice needs a lock of an identity and a recipient", ErrInvalid)
	}
	if ev.ID == "" {
		ev.ID = NewEventID()
	}
	now := n.opts.Now()
	if ev.At.IsZero() {
		ev.At = now.UTC()
	}
	if ev.Summary == "" {
		ev.Summary = summary(ev)
	}
	it := item{Channel: ChannelCustomer, To: to, Event: ev, Created: now, NextAttempt: now}
	err := n.store.add(ctx, []item{it}, n.opts.MaxPending)
	if errors.Is(err, ErrFull) {
		n.metrics.dropped.Inc()
		n.log.Error("notify: outbox full, customer notice dropped", "event_id", ev.ID, "max_pending", n.opts.MaxPending)
		return ev, err
	}
	if err != nil {
		return ev, fmt.Errorf("notify: storing customer notice %s: %w", ev.ID, err)
	}
	n.metrics.depth.Inc()
	n.runner.Wake()
	return ev, nil
}

// NoticeValues are the placeholders' values of ev: the lock's data only.
func NoticeValues(ev Event) notifytext.Values {
	v := notifytext.Values{"identity": ev.Identity, "domain": ev.Domain, "user": ev.User}
	if l := ev.Lock; l != nil {
		v["reason"] = l.Reason
		v["lock_id"] = l.ID
		if !l.Start.IsZero() {
			v["locked_at"] = l.Start.UTC().Format(time.RFC3339)
		}
		v["until"] = "until lifted by the provider"
		if !l.Expires.IsZero() {
			v["until"] = l.Expires.UTC().Format(time.RFC3339)
		}
	}
	return v
}

// RenderNotice renders n's subject and body for ev: what the customer
// receives, and what the console's preview shows.
func RenderNotice(n CustomerNotice, ev Event) (subject, body string, err error) {
	v := NoticeValues(ev)
	if subject, err = notifytext.Render(n.Subject, v); err != nil {
		return "", "", fmt.Errorf("customer notice subject: %w", err)
	}
	if body, err = notifytext.Render(n.Body, v); err != nil {
		return "", "", fmt.Errorf("customer notice body: %w", err)
	}
	return notifytext.OneLine(subject, 250), body, nil
}

// BuildNotice returns the plain-text message of n for ev to to, marked
// Auto-Submitted: auto-generated; the event id makes its Message-ID, so a
// retried notice keeps it.
func BuildNotice(n CustomerNotice, ev Event, o MailOptions, to string, now time.Time) ([]byte, error) {
	subject, body, err := RenderNotice(n, ev)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	hdr := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	hdr("From", o.From)
	hdr("To", to)
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+ev.ID+".notice@"+o.Hostname+">")
	hdr("Auto-Submitted", "auto-generated")
	hdr("X-Auto-Response-Suppress", "All")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		b.WriteString(oneLine(line, 990))
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}
