package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults of the notify section.
const (
	DefaultNotifyTimeout      = 10 * time.Second
	DefaultNotifyRetryInitial = 10 * time.Second
	DefaultNotifyRetryMax     = 10 * time.Minute
	DefaultNotifyMaxAge       = 24 * time.Hour
	// MinNotifySecretLength is the shortest webhook secret accepted.
	MinNotifySecretLength = 16
)

// NotifyEvents lists the event names notify.webhook.events accepts, in
// the order they are documented.
var NotifyEvents = []string{"lock", "auto-lock", "unlock", "expire", "would-lock", "outbox-expired"}

// Notify configures notifications about locks: a signed webhook and mail
// to the abuse contact on automatic locks.
type Notify struct {
	// Webhook posts events as signed JSON; off while its URL is empty.
	Webhook Webhook `yaml:"webhook"`
	// MailOnAutoLock mails a short notice of every automatic lock to the
	// abuse address of the locked identity's user (the user's, else its
	// domain's, else arf.abuse_address). Default false.
	MailOnAutoLock bool `yaml:"mail_on_auto_lock"`
}

// Webhook is an HTTP endpoint receiving events.
type Webhook struct {
	// URL is the http:// or https:// endpoint; "" turns the webhook off.
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature of every request (header
	// X-Outguard-Signature); at least 16 characters, required with URL.
	Secret string `yaml:"secret"`
	// Timeout bounds one request. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// Retry is the backoff while the endpoint fails.
	Retry NotifyRetry `yaml:"retry"`
	// MaxAge is how long an event is retried before it is dropped (logged
	// and counted in outguard_notify_expired_total). Default 1d.
	MaxAge Duration `yaml:"max_age"`
	// Events lists the event types to send; default all of NotifyEvents.
	Events []string `yaml:"events"`
}

// NotifyRetry is an exponential backoff: Initial after the first failure,
// doubling up to Max.
type NotifyRetry struct {
	Initial Duration `yaml:"initial"`
	Max     Duration `yaml:"max"`
}

// Enabled reports whether the webhook is on.
func (w *Webhook) Enabled() bool { return w.URL != "" }

func (c *Notify) setDefaults() {
	w := &c.Webhook
	setDur(&w.Timeout, DefaultNotifyTimeout)
	setDur(&w.Retry.Initial, DefaultNotifyRetryInitial)
	setDur(&w.Retry.Max, DefaultNotifyRetryMax)
	setDur(&w.MaxAge, DefaultNotifyMaxAge)
	if w.Events == nil {
		w.Events = append([]string(nil), NotifyEvents...)
	}
}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *Notify) validate(cfg *Config) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	w := &c.Webhook
	// An empty URL turns the webhook off, whatever else is set: clearing
	// the URL alone is how an operator switches it off.
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("notify.webhook.url %q is not an http:// or https:// URL, e.g. \"https://hooks.example.net/outguard\"", w.URL)
		case u.User != nil:
			bad("notify.webhook.url must not carry credentials (user:password@); requests are authenticated by notify.webhook.secret")
		}
		if len(w.Secret) < MinNotifySecretLength {
			bad("notify.webhook.secret must be at least %d characters: the receiver checks the HMAC-SHA256 signature with it (make one with `openssl rand -hex 32`)", MinNotifySecretLength)
		}
	}
	if w.Timeout < Duration(time.Second) || w.Timeout > Duration(5*time.Minute) {
		bad("notify.webhook.timeout %s: use 1s to 5m (default 10s)", w.Timeout)
	}
	if w.Retry.Initial < Duration(time.Second) {
		bad("notify.webhook.retry.initial %s: must be at least 1s", w.Retry.Initial)
	}
	if w.Retry.Max < w.Retry.Initial {
		bad("notify.webhook.retry.max %s is shorter than notify.webhook.retry.initial %s; make it at least as long", w.Retry.Max, w.Retry.Initial)
	}
	if w.MaxAge < Duration(time.Minute) || w.MaxAge > Duration(30*24*time.Hour) {
		bad("notify.webhook.max_age %s: use 1m to 30d; undelivered events are retried this long (default 1d)", w.MaxAge)
	}
	if len(w.Events) == 0 {
		bad("notify.webhook.events is empty: list at least one of %v, or remove the key to send all", NotifyEvents)
	}
	seen := map[string]bool{}
	for _, e := range w.Events {
		known := false
		for _, k := range NotifyEvents {
			known = known || e == k
		}
		switch {
		case !known:
			bad("notify.webhook.events: unknown event %q; use %v", e, NotifyEvents)
		case seen[e]:
			bad("notify.webhook.events lists %q twice", e)
		}
		seen[e] = true
	}
	if c.MailOnAutoLock && !anyAbuseAddress(cfg) {
		bad("notify.mail_on_auto_lock is true but no abuse address is configured: set arf.abuse_address or a domain's or user's abuse_address")
	}
	return errors.Join(errs...)
}

// anyAbuseAddress reports whether some abuse address is configured.
func anyAbuseAddress(cfg *Config) bool {
	if cfg.ARF.AbuseAddress != "" {
		return true
	}
	for _, d := range cfg.Domains {
		if d.AbuseAddress != "" {
			return true
		}
		for _, u := range d.Users {
			if u.AbuseAddress != "" {
				return true
			}
		}
	}
	return false
}

// resolvePaths makes relative file paths in this section absolute. The
// section has none.
func (c *Notify) resolvePaths(abs func(*string)) {}
