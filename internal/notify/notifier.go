package notify

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

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

var bucketOutbox = []byte("notify_outbox")

// SendMailFunc sends raw as mail to one recipient, with the null
// envelope sender.
type SendMailFunc func(ctx context.Context, to string, raw []byte) error

// Options configure a Notifier. DB is required; with neither URL nor
// SendMail every event is ignored.
type Options struct {
	// DB is the shared database, opened and closed by the caller.
	DB *bolt.DB
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
	// AbuseAddress returns (none when it returns "").
	SendMail SendMailFunc
	// AbuseAddress returns the abuse contact of a domain and user.
	AbuseAddress func(domain, user string) string
	// Mail builds the mail's From and text.
	Mail MailOptions

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

	runner  *outbox.Runner
	retry   outbox.Backoff
	mu      sync.Mutex // guards stopped
	stopped bool
}

// New checks the options, creates the bucket and counts what is pending.
func New(o Options) (*Notifier, error) {
	if o.DB == nil {
		return nil, fmt.Errorf("%w: Options.DB is nil", ErrInvalid)
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
	if o.SendMail != nil && (o.AbuseAddress == nil || o.Mail.From == "") {
		return nil, fmt.Errorf("%w: SendMail needs AbuseAddress and Mail.From", ErrInvalid)
	}
	setDur(&o.Timeout, DefaultTimeout)
	setDur(&o.RetryInitial, DefaultRetryInitial)
	setDur(&o.RetryMax, DefaultRetryMax)
	setDur(&o.MaxAge, DefaultMaxAge)
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
	n.runner = outbox.NewRunner(outbox.RunnerOptions{
		Round: n.Round, Now: o.Now, Retry: o.RetryInitial,
		Idle:    time.Hour, // nothing pending: Notify wakes the runner
		OnError: func(err error) { n.log.Error("notify: delivery round failed", "err", err) },
	})
	if o.Events != nil {
		n.events = map[EventType]bool{}
		for _, e := range o.Events {
			n.events[e] = true
		}
	}
	depth := 0
	err := o.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		depth = b.Stats().KeyN
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: creating bucket: %w", err)
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
	if n.opts.SendMail != nil && ev.Type == EventAutoLock {
		if to := n.opts.AbuseAddress(ev.Domain, ev.User); to != "" {
			items = append(items, item{Channel: ChannelMail, To: to, Event: ev, Created: now, NextAttempt: now})
		}
	}
	if len(items) == 0 {
		return nil
	}
	err := n.opts.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b.Stats().KeyN+len(items) > n.opts.MaxPending {
			return ErrFull
		}
		for _, it := range items {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			v, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
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

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
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

// Round attempts every due item once, expires the old ones and returns
// when the next one is due (zero when none is pending). The goroutine of
// Start calls it; tests call it directly, never while that goroutine
// runs.
func (n *Notifier) Round(ctx context.Context) (time.Time, error) {
	type entry struct {
		key []byte
		it  item
	}
	var entries []entry
	err := n.opts.DB.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			var it item
			if err := json.Unmarshal(v, &it); err != nil {
				n.log.Error("notify: dropping unreadable outbox item", "key", fmt.Sprintf("%x", k), "err", err)
				it = item{Channel: "corrupt"}
			}
			entries = append(entries, entry{slices.Clone(k), it})
			return nil
		})
	})
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	// down holds, per channel that failed in this round, when it is
	// retried: the other items of that channel wait for it too, rather
	// than each paying the timeout of a dead receiver.
	down := map[string]time.Time{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return next, err
		}
		now := n.opts.Now()
		if e.it.Channel == "corrupt" {
			if err := n.remove(e.key); err != nil {
				return next, err
			}
			continue
		}
		if now.Sub(e.it.Created) > n.opts.MaxAge {
			if err := n.remove(e.key); err != nil {
				return next, err
			}
			n.metrics.expired.WithLabelValues(e.it.Channel).Inc()
			n.log.Error("notify: event expired undelivered", "event_id", e.it.Event.ID, "type", e.it.Event.Type,
				"channel", e.it.Channel, "attempts", e.it.Attempts, "last_error", e.it.LastError, "max_age", n.opts.MaxAge)
			continue
		}
		if e.it.NextAttempt.After(now) {
			next = outbox.Earliest(next, e.it.NextAttempt)
			continue
		}
		if retry, ok := down[e.it.Channel]; ok {
			next = outbox.Earliest(next, retry)
			continue
		}
		err := n.deliver(ctx, e.it)
		if err == nil {
			if err := n.remove(e.key); err != nil {
				return next, err
			}
			n.metrics.sent.WithLabelValues(e.it.Channel).Inc()
			continue
		}
		if ctx.Err() != nil {
			return next, ctx.Err()
		}
		e.it.Attempts++
		e.it.LastError = err.Error()
		e.it.NextAttempt = n.opts.Now().Add(n.retry.Delay(e.it.Attempts))
		down[e.it.Channel] = e.it.NextAttempt
		n.metrics.failures.WithLabelValues(e.it.Channel).Inc()
		n.log.Warn("notify: delivery failed; will retry", "event_id", e.it.Event.ID, "channel", e.it.Channel,
			"attempts", e.it.Attempts, "next_attempt", e.it.NextAttempt, "err", err)
		v, err := json.Marshal(e.it)
		if err != nil {
			return next, err
		}
		err = n.opts.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Put(e.key, v) })
		if err != nil {
			return next, err
		}
		next = outbox.Earliest(next, e.it.NextAttempt)
	}
	return next, nil
}

func (n *Notifier) remove(key []byte) error {
	err := n.opts.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(key) })
	if err == nil {
		n.metrics.depth.Dec()
	}
	return err
}

// Pending returns the number of items waiting in the outbox.
func (n *Notifier) Pending() (int, error) {
	var k int
	err := n.opts.DB.View(func(tx *bolt.Tx) error {
		k = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return k, err
}

func (n *Notifier) deliver(ctx context.Context, it item) error {
	switch it.Channel {
	case ChannelWebhook:
		return n.post(ctx, it.Event)
	case ChannelMail:
		if n.opts.SendMail == nil {
			return errors.New("mail is no longer configured")
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return n.opts.SendMail(ctx, it.To, BuildMail(it.Event, n.opts.Mail, it.To, n.opts.Now()))
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
