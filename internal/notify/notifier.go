package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/outbox"
)

// Defaults of Options.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultRetryInitial = 10 * time.Second
	DefaultRetryMax     = 10 * time.Minute
	DefaultMaxAge       = 24 * time.Hour
	DefaultMaxPending   = 10000
	// maxResponseBytes is how much of a receiver's answer is read (for
	// the log) before the connection is reused.
	maxResponseBytes = 4 << 10
	// mailTimeout bounds one mail delivery.
	mailTimeout = 2 * time.Minute
	// fleetPoll is how often a node on Postgres looks for items when it
	// knows of none due: another node may have added some, or died
	// holding them.
	fleetPoll = 30 * time.Second
)

// Channels an outbox item is delivered on (the channel label of the
// metrics).
const (
	ChannelWebhook = "webhook"
	ChannelMail    = "mail"
)

// Errors.
var (
	// ErrInvalid: Options or an Event are unusable.
	ErrInvalid = errors.New("notify: invalid")
	// ErrFull: the outbox holds Options.MaxPending items; the event was
	// dropped (and counted).
	ErrFull = errors.New("notify: outbox full")
	// ErrStopped: Notify was called after Stop.
	ErrStopped = errors.New("notify: stopped")
)

// SendMailFunc sends raw as mail to one recipient, with the null
// envelope sender.
type SendMailFunc func(ctx context.Context, to string, raw []byte) error

// Options configure a Notifier. One of DB and Postgres is required; with
// neither URL nor SendMail every event is ignored.
type Options struct {
	// DB is this node's bbolt database, opened and closed by the caller.
	DB *bolt.DB
	// Postgres, instead of DB, is the database a fleet of nodes shares
	// (store.backend postgres): the outbox is the table notify_outbox,
	// and every node's Notifier delivers from it, each item by one node
	// at a time.
	Postgres *pgxpool.Pool
	// Node is this node's name, recorded with its items and its leases;
	// required with Postgres.
	Node string
	// Lease is how long a node holds an item it is delivering on
	// Postgres before another node may take it over (when the node
	// died); default the longest delivery (Timeout, or two minutes for a
	// mail) plus a minute.
	Lease time.Duration
	// URL is the webhook's http or https URL; "" disables the webhook.
	URL string
	// Secret keys the HMAC-SHA256 signature; required with URL.
	Secret []byte
	// Events lists the event types sent to the webhook; nil sends all.
	Events []EventType
	// Timeout bounds one webhook request; default DefaultTimeout.
	Timeout time.Duration
	// RetryInitial is the wait after the first failed attempt, doubled
	// after each further one up to RetryMax, each wait then jittered to
	// between half and all of it (internal/outbox). Defaults DefaultRetryInitial
	// and DefaultRetryMax.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// MaxAge is how long an undelivered item is retried before it
	// expires; default DefaultMaxAge.
	MaxAge time.Duration
	// MaxPending bounds the outbox; default DefaultMaxPending.
	MaxPending int

	// SendMail, when set, mails automatic locks to the address
	// AbuseAddress returns (none when it returns "", or when
	// AbuseAddress is nil), and customer notices (Customer).
	SendMail SendMailFunc
	// AbuseAddress returns the abuse contact of a domain and user.
	AbuseAddress func(domain, user string) string
	// Mail builds the mail's From and text.
	Mail MailOptions
	// Customer returns the customer notice of a domain, false for none:
	// with SendMail, each lock of an identity of that domain is mailed
	// to the notice's recipient (docs/config-notify.md, "Customer
	// notice"). It is asked again at delivery, so a reload applies.
	Customer func(domain string) (CustomerNotice, bool)

	// Client sends the webhook requests; default a client with Timeout
	// that does not follow redirects. A test seam.
	Client *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives outguard_notify_*; nil registers none.
	Registerer prometheus.Registerer
}

// item is one outbox entry.
type item struct {
	Channel     string    `json:"channel"`
	To          string    `json:"to,omitempty"`
	Event       Event     `json:"event"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
}

// Notifier is a durable outbox of events with its delivery goroutine.
// Call order: New, Notify at any time (also before Start), Start once,
// Stop (idempotent); the caller closes the database after Stop.
type Notifier struct {
	opts    Options
	events  map[EventType]bool
	metrics *metrics
	log     *slog.Logger

	store   store
	runner  *outbox.Runner
	retry   outbox.Backoff
	mu      sync.Mutex // guards stopped
	stopped bool
}

// New checks the options, creates the bucket (on bbolt) and counts what
// is pending.
func New(o Options) (*Notifier, error) {
	if (o.DB == nil) == (o.Postgres == nil) {
		return nil, fmt.Errorf("%w: set one of Options.DB and Options.Postgres", ErrInvalid)
	}
	if o.Postgres != nil && o.Node == "" {
		return nil, fmt.Errorf("%w: Options.Postgres needs Options.Node", ErrInvalid)
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: webhook URL %q: use http:// or https://", ErrInvalid, o.URL)
		}
		if len(o.Secret) == 0 {
			return nil, fmt.Errorf("%w: a webhook needs a secret", ErrInvalid)
		}
	}
	if o.SendMail != nil && ((o.AbuseAddress == nil && o.Customer == nil) || o.Mail.From == "") {
		return nil, fmt.Errorf("%w: SendMail needs AbuseAddress or Customer, and Mail.From", ErrInvalid)
	}
	setDur(&o.Timeout, DefaultTimeout)
	setDur(&o.RetryInitial, DefaultRetryInitial)
	setDur(&o.RetryMax, DefaultRetryMax)
	setDur(&o.MaxAge, DefaultMaxAge)
	setDur(&o.Lease, max(o.Timeout, mailTimeout)+time.Minute)
	if o.RetryMax < o.RetryInitial {
		o.RetryMax = o.RetryInitial
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	n := &Notifier{opts: o, log: o.Logger, retry: outbox.Backoff{Initial: o.RetryInitial, Max: o.RetryMax}}
	idle := time.Hour // nothing pending: Notify wakes the runner
	if o.Postgres != nil {
		idle = fleetPoll
	}
	n.runner = outbox.NewRunner(outbox.RunnerOptions{
		Round: n.Round, Now: o.Now, Retry: o.RetryInitial,
		Idle:    idle,
		OnError: func(err error) { n.log.Error("notify: delivery round failed", "err", err) },
	})
	if o.Events != nil {
		n.events = map[EventType]bool{}
		for _, e := range o.Events {
			n.events[e] = true
		}
	}
	if o.DB != nil {
		st, err := newBoltStore(o.DB, o.Logger)
		if err != nil {
			return nil, err
		}
		n.store = st
	} else {
		n.store = &pgStore{pool: o.Postgres, node: o.Node, log: o.Logger}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	depth, err := n.store.count(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: counting the outbox: %w", err)
	}
	n.metrics = newMetrics(o.Registerer)
	n.metrics.depth.Set(float64(depth))
	return n, nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Notify stores ev for every channel that wants it and returns once it is
// committed. It sets ev.ID when empty and ev.At when zero. An event no
// channel wants is dropped without error.
func (n *Notifier) Notify(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	stopped := n.stopped
	n.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	if ev.Type == "" {
		return fmt.Errorf("%w: event without a type", ErrInvalid)
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
	var items []item
	if n.opts.URL != "" && (n.events == nil || n.events[ev.Type]) {
		items = append(items, item{Channel: ChannelWebhook, Event: ev, Created: now, NextAttempt: now})
	}
	if n.opts.SendMail != nil && n.opts.Customer != nil && noticeEvent(ev) {
		if cn, ok := n.opts.Customer(ev.Domain); ok {
			if to := cn.Recipient(ev); to != "" {
				items = append(items, item{Channel: ChannelCustomer, To: to, Event: ev, Created: now, NextAttempt: now})
			} else {
				n.log.Info("notify: no customer notice: the identity is not an email address", "domain", ev.Domain, "identity", ev.Identity)
			}
		}
	}
	if n.opts.SendMail != nil && n.opts.AbuseAddress != nil && ev.Type == EventAutoLock {
		if to := n.opts.AbuseAddress(ev.Domain, ev.User); to != "" {
			items = append(items, item{Channel: ChannelMail, To: to, Event: ev, Created: now, NextAttempt: now})
		}
	}
	if len(items) == 0 {
		return nil
	}
	err := n.store.add(ctx, items, n.opts.MaxPending)
	if errors.Is(err, ErrFull) {
		n.metrics.dropped.Inc()
		n.log.Error("notify: outbox full, event dropped", "event_id", ev.ID, "type", ev.Type, "max_pending", n.opts.MaxPending)
		return err
	}
	if err != nil {
		return fmt.Errorf("notify: storing event %s: %w", ev.ID, err)
	}
	n.metrics.depth.Add(float64(len(items)))
	n.runner.Wake()
	return nil
}

// Start runs the delivery goroutine. Later calls do nothing.
func (n *Notifier) Start() { n.runner.Start() }

// Stop ends the delivery goroutine, interrupting a delivery in progress
// (it is retried after the next start), and makes Notify fail with
// ErrStopped. It is idempotent.
func (n *Notifier) Stop() {
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	n.runner.Stop()
}

// Round attempts every due item once, in the order they were added,
// expires the old ones and returns when the next one is due (zero when
// none is pending). The goroutine of Start calls it; tests call it
// directly, never while that goroutine runs. On Postgres, the Notifiers
// of several nodes run rounds at once on one outbox: each item is leased
// to one of them at a time.
func (n *Notifier) Round(ctx context.Context) (time.Time, error) {
	now := n.opts.Now()
	expired, err := n.store.expire(ctx, now.Add(-n.opts.MaxAge), now)
	if err != nil {
		return time.Time{}, err
	}
	for _, it := range expired {
		n.metrics.expired.WithLabelValues(it.Channel).Inc()
		n.log.Error("notify: event expired undelivered", "event_id", it.Event.ID, "type", it.Event.Type,
			"channel", it.Channel, "attempts", it.Attempts, "last_error", it.LastError, "max_age", n.opts.MaxAge)
	}
	// down holds, per channel that failed in this round, when it is
	// retried: the other items of that channel wait for it too, rather
	// than each paying the timeout of a dead receiver.
	down := map[string]time.Time{}
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		skip := make([]string, 0, len(down))
		for ch := range down {
			skip = append(skip, ch)
		}
		c, err := n.store.claim(ctx, after, n.opts.Now(), n.opts.Lease, skip)
		if err != nil {
			return time.Time{}, err
		}
		if c == nil {
			break
		}
		after = c.pos
		err = n.deliver(ctx, c.it)
		if err == nil {
			if err := n.store.done(ctx, c); err != nil {
				return time.Time{}, err
			}
			n.metrics.sent.WithLabelValues(c.it.Channel).Inc()
			continue
		}
		if ctx.Err() != nil {
			// Interrupted (Stop), not failed: end the lease, so that the
			// item is attempted again at once, by this node after its
			// restart or by another.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := n.store.release(rctx, c); err != nil {
				n.log.Warn("notify: ending the lease of an interrupted delivery", "event_id", c.it.Event.ID, "err", err)
			}
			cancel()
			return time.Time{}, ctx.Err()
		}
		c.it.Attempts++
		c.it.LastError = err.Error()
		c.it.NextAttempt = n.opts.Now().Add(n.retry.Delay(c.it.Attempts))
		down[c.it.Channel] = c.it.NextAttempt
		n.metrics.failures.WithLabelValues(c.it.Channel).Inc()
		n.log.Warn("notify: delivery failed; will retry", "event_id", c.it.Event.ID, "channel", c.it.Channel,
			"attempts", c.it.Attempts, "next_attempt", c.it.NextAttempt, "err", err)
		if err := n.store.release(ctx, c); err != nil {
			return time.Time{}, err
		}
	}
	byChannel, err := n.store.nextByChannel(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for ch, t := range byChannel {
		if retry, ok := down[ch]; ok && retry.After(t) {
			t = retry
		}
		next = outbox.Earliest(next, t)
	}
	if depth, err := n.store.count(ctx); err == nil {
		n.metrics.depth.Set(float64(depth))
	}
	return next, nil
}

// Pending returns the number of items waiting in the outbox.
func (n *Notifier) Pending() (int, error) {
	return n.store.count(context.Background())
}

func (n *Notifier) deliver(ctx context.Context, it item) error {
	switch it.Channel {
	case ChannelWebhook:
		return n.post(ctx, it.Event)
	case ChannelMail:
		if n.opts.SendMail == nil {
			return errors.New("mail is no longer configured")
		}
		ctx, cancel := context.WithTimeout(ctx, mailTimeout)
		defer cancel()
		return n.opts.SendMail(ctx, it.To, BuildMail(it.Event, n.opts.Mail, it.To, n.opts.Now()))
	case ChannelCustomer:
		if n.opts.SendMail == nil || n.opts.Customer == nil {
			return errors.New("mail is no longer configured")
		}
		cn, ok := n.opts.Customer(it.Event.Domain)
		if !ok {
			return errors.New("the domain's customer_notice is no longer configured")
		}
		raw, err := BuildNotice(cn, it.Event, n.opts.Mail, it.To, n.opts.Now())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, mailTimeout)
		defer cancel()
		return n.opts.SendMail(ctx, it.To, raw)
	}
	return fmt.Errorf("unknown channel %q", it.Channel)
}

// post sends one signed webhook request.
func (n *Notifier) post(ctx context.Context, ev Event) error {
	if n.opts.URL == "" {
		return errors.New("the webhook is no longer configured")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := n.opts.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "outguard-notify/1")
	req.Header.Set(HeaderEvent, string(ev.Type))
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(ts.Unix()))
	req.Header.Set(HeaderSignature, Sign(n.opts.Secret, ts, body))
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s: %.200s", resp.Status, bytes.TrimSpace(answer))
	}
	return nil
}
