package arf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/outbox"
)

// Bucket names of the outbox in the shared database.
var (
	bucketPending = []byte("arf_outbox")
	bucketExpired = []byte("arf_outbox_expired")
	bucketSent    = []byte("arf_outbox_sent")
	bucketRaw     = []byte("arf_outbox_raw")
)

// Defaults of OutboxOptions.
const (
	DefaultRetryInitial = 30 * time.Second
	DefaultRetryMax     = 30 * time.Minute
	DefaultMaxAge       = 5 * 24 * time.Hour
	DefaultSendTimeout  = 2 * time.Minute
)

// Outbox errors.
var (
	// ErrPermanent marks a Send error that no retry can fix (a 5xx reply);
	// the report is moved to the expired list at once.
	ErrPermanent = errors.New("arf: permanent delivery failure")
	// ErrInvalidReport: Enqueue got a report without ID, recipient or
	// content.
	ErrInvalidReport = errors.New("arf: invalid report")
)

type reportIDKey struct{}

// ReportID returns the id of the report a SendFunc is sending (Report.ID:
// the log id of the transaction it reports), or "" outside a send.
func ReportID(ctx context.Context) string {
	id, _ := ctx.Value(reportIDKey{}).(string)
	return id
}

// SendFunc delivers one report to the report relay with the given envelope
// sender ("" for MAIL FROM:<>). An error wrapping ErrPermanent, or an
// *smtp.SMTPError with a 5xx code from the default SMTPSender, ends retries.
type SendFunc func(ctx context.Context, from string, to []string, raw []byte) error

// Report is one report to deliver.
type Report struct {
	// ID identifies the report, unique in the outbox (the transaction's log
	// id fits). Enqueueing an ID again, pending or already sent, is a no-op.
	ID string `json:"id"`
	// To are the envelope recipients.
	To []string `json:"to"`
	// Raw is the complete message. It is stored apart from the delivery
	// state, so listings do not load it; see Outbox.Raw.
	Raw []byte `json:"-"`
	// Created is set by Enqueue when zero; reports older than MaxAge
	// expire.
	Created time.Time `json:"created"`
}

// Entry is a report with its delivery state.
type Entry struct {
	Report
	// Attempts counts failed deliveries; NextAttempt is when the next one
	// is due; LastError is the latest failure.
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// Expired is when it left the pending list without being delivered.
	Expired time.Time `json:"expired,omitzero"`
}

// OutboxOptions configure an Outbox. Send and one of DB or Pool are
// required.
type OutboxOptions struct {
	// DB is the shared database, opened and closed by the caller. The
	// outbox owns the buckets arf_outbox, arf_outbox_raw,
	// arf_outbox_expired and arf_outbox_sent.
	DB *bolt.DB
	// Pool is the fleet's PostgreSQL database (store.backend postgres),
	// used instead of DB: the table arf_outbox, worked by every node
	// (see outbox_pg.go).
	Pool *pgxpool.Pool
	// Node names this node in the reports it queues and the leases it
	// takes on PostgreSQL; default the host name.
	Node string
	// Lease is how long a node holds a report it is delivering on
	// PostgreSQL before another node may take it (the node died).
	// Default SendTimeout plus one minute.
	Lease time.Duration
	// Send delivers a report; see SendFunc and SMTPSender.
	Send SendFunc
	// RetryInitial is the wait after the first failure, doubled after each
	// further one up to RetryMax, each wait then jittered to between half
	// and all of it (internal/outbox). Defaults 30s and 30m.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// MaxAge is how long a report is retried before it expires. Default 5
	// days.
	MaxAge time.Duration
	// SendTimeout bounds one delivery attempt. Default 2 minutes.
	SendTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives delivery failures and expiries. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the outbox metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnExpire, if set, is called (from the sender goroutine) with each
	// report that expired or was refused permanently, after it moved to
	// the expired list: notifications hook in here.
	OnExpire func(Entry)
}

// Outbox is a durable queue of reports delivered in the background.
//
// Call order: NewOutbox, then Enqueue at any time (before Start too), Start
// once, Stop when done (idempotent). The caller closes the DB after Stop.
type Outbox struct {
	opts    OutboxOptions
	metrics *metrics
	runner  *outbox.Runner
	retry   outbox.Backoff
}

// NewOutbox creates the outbox's buckets and counts what is pending.
func NewOutbox(opts OutboxOptions) (*Outbox, error) {
	if opts.DB == nil && opts.Pool == nil {
		return nil, errors.New("arf: OutboxOptions.DB and Pool are nil")
	}
	if opts.Send == nil {
		return nil, errors.New("arf: OutboxOptions.Send is nil")
	}
	if opts.RetryInitial <= 0 {
		opts.RetryInitial = DefaultRetryInitial
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.RetryMax < opts.RetryInitial {
		opts.RetryMax = opts.RetryInitial
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = DefaultSendTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	o := &Outbox{opts: opts, metrics: newMetrics(opts.Registerer), retry: outbox.Backoff{Initial: opts.RetryInitial, Max: opts.RetryMax}}
	o.runner = outbox.NewRunner(outbox.RunnerOptions{
		Round: o.Round, Now: opts.Now, Idle: opts.RetryInitial, Retry: opts.RetryInitial,
		OnError: func(err error) { opts.Logger.Error("arf outbox round failed", "err", err) },
	})
	if opts.Pool != nil {
		return o, o.initPG()
	}
	var depth int
	err := opts.DB.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketPending, bucketExpired, bucketSent, bucketRaw} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		depth = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("arf: outbox buckets: %w", err)
	}
	o.metrics.depth.Set(float64(depth))
	return o, nil
}

// Enqueue stores r and returns once the transaction that holds it has
// committed (and bbolt has synced it). Concurrent calls share transactions
// (bbolt's DB.Batch), so a burst of reports costs few syncs.
func (o *Outbox) Enqueue(ctx context.Context, r Report) error {
	st, err := o.Stage(r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.opts.Pool != nil {
		if err := pgx.BeginFunc(ctx, o.opts.Pool, func(tx pgx.Tx) error { return st.PutPG(ctx, tx) }); err != nil {
			return fmt.Errorf("arf: enqueue %s: %w", r.ID, err)
		}
		st.Committed()
		return nil
	}
	if err := o.opts.DB.Batch(st.Put); err != nil {
		return fmt.Errorf("arf: enqueue %s: %w", r.ID, err)
	}
	st.Committed()
	return nil
}

// Staged is a report ready to be stored in a bbolt transaction that the
// caller runs and commits, together with its own writes (the quarantine
// stores a blocked message and its report in one transaction). Call Put
// inside the transaction, and Committed once it has committed; if it
// did not, drop the Staged.
type Staged struct {
	o     *Outbox
	r     Report
	key   []byte
	raw   []byte
	val   []byte
	added bool
}

// Stage checks and encodes r for Put.
func (o *Outbox) Stage(r Report) (*Staged, error) {
	if r.ID == "" || len(r.To) == 0 || len(r.Raw) == 0 {
		return nil, fmt.Errorf("%w: ID, To and Raw are required", ErrInvalidReport)
	}
	now := o.opts.Now()
	if r.Created.IsZero() {
		r.Created = now
	}
	val, err := json.Marshal(Entry{Report: r, NextAttempt: now})
	if err != nil {
		return nil, err
	}
	return &Staged{o: o, r: r, key: []byte(r.ID), raw: r.Raw, val: val}, nil
}

// Put writes the report in tx, unless its ID is already pending, sent or
// expired. It may run more than once (a retried transaction).
func (st *Staged) Put(tx *bolt.Tx) error {
	st.added = false
	if st.o.opts.Pool != nil {
		return errors.New("arf: the outbox is on PostgreSQL: use PutPG")
	}
	p, sent, exp, raw := tx.Bucket(bucketPending), tx.Bucket(bucketSent), tx.Bucket(bucketExpired), tx.Bucket(bucketRaw)
	if p == nil || sent == nil || exp == nil || raw == nil {
		return errors.New("arf: outbox buckets missing")
	}
	if p.Get(st.key) != nil || sent.Get(st.key) != nil || exp.Get(st.key) != nil {
		return nil
	}
	if err := raw.Put(st.key, st.raw); err != nil {
		return err
	}
	if err := p.Put(st.key, st.val); err != nil {
		return err
	}
	st.added = true
	return nil
}

// Committed counts the report and wakes the sender; call it once the
// transaction that ran Put has committed.
func (st *Staged) Committed() {
	if !st.added {
		return
	}
	st.o.metrics.depth.Inc()
	st.o.runner.Wake()
}

// Start runs the sender in the background until Stop.
func (o *Outbox) Start() { o.runner.Start() }

// Stop ends the sender and waits for it; a delivery in flight is cancelled
// and retried after the next Start. Stop is idempotent and safe without
// Start.
func (o *Outbox) Stop() { o.runner.Stop() }

// Round delivers every due report once, expires the old ones, and returns
// when the next one is due (zero when none is pending). The background
// sender calls it; tests and one-shot tools call it directly, never while
// the background sender runs (that could deliver a report twice).
func (o *Outbox) Round(ctx context.Context) (time.Time, error) {
	if o.opts.Pool != nil {
		return o.roundPG(ctx)
	}
	entries, err := o.Pending()
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, e := range entries {
		if ctx.Err() != nil {
			return next, ctx.Err()
		}
		now := o.opts.Now()
		if now.Sub(e.Created) > o.opts.MaxAge {
			if err := o.expire(e, "older than the maximum age "+o.opts.MaxAge.String()); err != nil {
				return next, err
			}
			continue
		}
		if e.NextAttempt.After(now) {
			next = outbox.Earliest(next, e.NextAttempt)
			continue
		}
		n, err := o.attempt(ctx, e)
		if err != nil {
			return next, err
		}
		next = outbox.Earliest(next, n)
	}
	return next, nil
}

// attempt delivers e once and records the outcome; it returns the next
// attempt's time when the delivery failed and will be retried.
func (o *Outbox) attempt(ctx context.Context, e Entry) (time.Time, error) {
	raw, err := o.Raw(e.ID)
	if err != nil {
		return time.Time{}, err
	}
	sctx, cancel := context.WithTimeout(context.WithValue(ctx, reportIDKey{}, e.ID), o.opts.SendTimeout)
	err = o.opts.Send(sctx, "", e.To, raw)
	cancel()
	if err == nil {
		derr := o.opts.DB.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketPending).Delete([]byte(e.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketRaw).Delete([]byte(e.ID)); err != nil {
				return err
			}
			return tx.Bucket(bucketSent).Put([]byte(e.ID), []byte(o.opts.Now().UTC().Format(time.RFC3339Nano)))
		})
		if derr != nil {
			return time.Time{}, fmt.Errorf("recording delivery of %s: %w", e.ID, derr)
		}
		o.metrics.sent.Inc()
		o.metrics.depth.Dec()
		o.pruneSent()
		return time.Time{}, nil
	}
	if ctx.Err() != nil {
		return time.Time{}, ctx.Err()
	}
	if isPermanent(err) {
		o.metrics.failed.Inc()
		e.LastError = err.Error()
		e.Attempts++
		return time.Time{}, o.expire(e, "refused permanently: "+err.Error())
	}
	e.Attempts++
	e.LastError = err.Error()
	e.NextAttempt = o.opts.Now().Add(o.retry.Delay(e.Attempts))
	o.metrics.retried.Inc()
	o.opts.Logger.Warn("arf report delivery failed; will retry", "report_id", e.ID, "attempts", e.Attempts, "next_attempt", e.NextAttempt, "err", err)
	if err := o.put(bucketPending, e); err != nil {
		return time.Time{}, err
	}
	return e.NextAttempt, nil
}

func (o *Outbox) put(bucket []byte, e Entry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return o.opts.DB.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(e.ID), val)
	})
}

// expire moves e to the expired list, counts and logs it.
func (o *Outbox) expire(e Entry, why string) error {
	e.Expired = o.opts.Now()
	if e.LastError == "" {
		e.LastError = why
	}
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	err = o.opts.DB.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPending).Delete([]byte(e.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketExpired).Put([]byte(e.ID), val)
	})
	if err != nil {
		return fmt.Errorf("expiring %s: %w", e.ID, err)
	}
	o.metrics.expired.Inc()
	o.metrics.depth.Dec()
	o.opts.Logger.Error("arf report not delivered; kept in the expired list", "report_id", e.ID, "to", e.To, "attempts", e.Attempts, "reason", why, "last_error", e.LastError)
	if o.opts.OnExpire != nil {
		o.opts.OnExpire(e)
	}
	return nil
}

// pruneSent forgets delivery records older than MaxAge: an ID enqueued
// again after that is sent again.
func (o *Outbox) pruneSent() {
	cutoff := o.opts.Now().Add(-o.opts.MaxAge)
	_ = o.opts.DB.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSent).Cursor()
		var old [][]byte
		for k, v := c.First(); k != nil && len(old) < 1000; k, v = c.Next() {
			t, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil || t.Before(cutoff) {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, k := range old {
			if err := tx.Bucket(bucketSent).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Pending lists the reports not yet delivered, oldest first.
func (o *Outbox) Pending() ([]Entry, error) {
	if o.opts.Pool != nil {
		return o.listPG("pending")
	}
	return o.list(bucketPending)
}

// Expired lists the reports that expired or were refused permanently,
// oldest first. They stay until DeleteExpired or Requeue.
func (o *Outbox) Expired() ([]Entry, error) {
	if o.opts.Pool != nil {
		return o.listPG("expired")
	}
	return o.list(bucketExpired)
}

// Requeue moves an expired report back to the pending list with a fresh
// age, e.g. after the abuse address was fixed.
func (o *Outbox) Requeue(id string) error {
	if o.opts.Pool != nil {
		return o.requeuePG(id)
	}
	now := o.opts.Now()
	found := false
	err := o.opts.DB.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketExpired).Get([]byte(id))
		if v == nil {
			return nil
		}
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		found = true
		e.Created, e.NextAttempt, e.Expired, e.Attempts = now, now, time.Time{}, 0
		val, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpired).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bucketPending).Put([]byte(id), val)
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("arf: no expired report %q", id)
	}
	o.metrics.depth.Inc()
	o.runner.Wake()
	return nil
}

// DeleteExpired removes an expired report for good.
func (o *Outbox) DeleteExpired(id string) error {
	if o.opts.Pool != nil {
		return o.deleteExpiredPG(id)
	}
	return o.opts.DB.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketExpired).Get([]byte(id)) == nil {
			return nil
		}
		if err := tx.Bucket(bucketRaw).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bucketExpired).Delete([]byte(id))
	})
}

// Raw returns the message of a pending or expired report.
func (o *Outbox) Raw(id string) ([]byte, error) {
	if o.opts.Pool != nil {
		return o.rawPG(id)
	}
	var raw []byte
	err := o.opts.DB.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketRaw).Get([]byte(id)); v != nil {
			raw = append([]byte(nil), v...)
		}
		return nil
	})
	if err == nil && raw == nil {
		err = fmt.Errorf("arf: no report %q in the outbox", id)
	}
	return raw, err
}

func (o *Outbox) list(bucket []byte) ([]Entry, error) {
	var out []Entry
	err := o.opts.DB.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("arf: outbox entry %q: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}
