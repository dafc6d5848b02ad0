package quarantine

import (
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
)

// Defaults for zero Options fields.
const (
	DefaultLogRetention        = 30 * 24 * time.Hour
	DefaultQuarantineRetention = 14 * 24 * time.Hour
	DefaultSweepInterval       = time.Hour
	DefaultHourlyRetention     = 72 * time.Hour
	DefaultQueueSize           = 4096
	DefaultMaxBatch            = 2048
	DefaultMaxScan             = 200000
	DefaultRenderLimit         = 64 << 10
	DefaultProbeInterval       = time.Second
)

// DeliverFunc hands a released message to the next hop with its original
// envelope. raw is the message exactly as it was received.
type DeliverFunc func(ctx context.Context, from string, rcpts []string, raw []byte) error

// Options configures a Store. The zero value of every field means its
// default.
type Options struct {
	// LogRetention is how long log records (and the report rollups) are
	// kept; default 30 days.
	LogRetention time.Duration
	// QuarantineRetention is how long quarantined content is kept; the
	// record stays in the log, marked expired. Default 14 days.
	QuarantineRetention time.Duration
	// HourlyRetention is how long the hourly report counters per
	// identity, user and sender are kept (the daily ones, and hourly
	// totals and per-domain counters, follow LogRetention). A report
	// whose period starts or ends before it is rounded out to whole UTC
	// days there. Default 72 hours.
	HourlyRetention time.Duration
	// SweepInterval is how often the goroutine started by Start runs
	// Sweep; default one hour.
	SweepInterval time.Duration
	// QueueSize bounds the log records waiting for the committer; Append
	// blocks while it is full. Default 4096.
	QueueSize int
	// MaxBatch bounds the operations written in one commit round; default
	// 2048.
	MaxBatch int
	// CoalesceDelay caps how long a round of log records waits for more
	// before committing, so that a busy relay pays one commit for many
	// records. A round nobody waits for (Append) waits all of it. One
	// with records of relayed mail (AppendCoalesced) waits only while
	// other writers are at work (the last round had several waiters),
	// and then at most twice as long as recent commits took: a lone
	// writer's record commits at once. A synced write (Quarantine, AppendWait, ...) ends
	// the wait at once. Default 25ms; negative disables waiting.
	CoalesceDelay time.Duration
	// ProbeInterval is how often, while the message log cannot be
	// written (Writable returns an error), the store tries a small write
	// to find out whether it can again. Default one second.
	ProbeInterval time.Duration
	// MaxScan bounds the entries one Search call examines; a search that
	// reaches it returns what it found with a cursor to go on. Default
	// 200,000.
	MaxScan int
	// RenderLimit caps the text rendering of a body in Show; default 64 KiB.
	RenderLimit int
	// CompressionLevel is the compress/flate level for quarantined
	// content; default flate.DefaultCompression.
	CompressionLevel int
	// Node names this node (node_name) in the records it writes on the
	// PostgreSQL backend; default the host name.
	Node string
	// Spool, on the PostgreSQL backend, is the node's own bbolt database,
	// where the log records of relayed mail wait (bucket
	// quarantine.spool) while PostgreSQL is out of reach, to be shipped
	// when it answers again (docs/config-store.md). nil: no spool, and
	// mail that needs a record is refused while PostgreSQL is out of
	// reach. The caller closes it after Stop. Ignored by New.
	Spool *bbolt.DB
	// SpoolMax bounds the records in the spool; past it, records are
	// refused (ErrSpoolFull) and Writable fails. Default 1,000,000.
	SpoolMax int
	// Deliver releases a quarantined message; nil makes Release fail with
	// ErrNoDeliver.
	Deliver DeliverFunc
	// ReleaseTrace returns the trace header field (outguard's Received
	// field, RFC 5321 4.4) prepended to a released copy, with its CRLF;
	// nil prepends none.
	ReleaseTrace func(rec *Record, at time.Time) string
	// Registerer receives the store's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Logger receives errors of background work; default slog.Default().
	Logger *slog.Logger
	// Now is the clock used for release and deletion times and by the
	// sweeper; default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	if o.LogRetention == 0 {
		o.LogRetention = DefaultLogRetention
	}
	if o.QuarantineRetention == 0 {
		o.QuarantineRetention = DefaultQuarantineRetention
	}
	if o.HourlyRetention == 0 {
		o.HourlyRetention = DefaultHourlyRetention
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.CoalesceDelay == 0 {
		o.CoalesceDelay = 25 * time.Millisecond
	}
	if o.MaxScan == 0 {
		o.MaxScan = DefaultMaxScan
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.RenderLimit == 0 {
		o.RenderLimit = DefaultRenderLimit
	}
	if o.CompressionLevel == 0 {
		o.CompressionLevel = flate.DefaultCompression
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.LogRetention < 0 || o.QuarantineRetention < 0 || o.HourlyRetention < 0 || o.SweepInterval < 0:
		return errors.New("quarantine: retention and sweep interval must not be negative")
	case o.QueueSize < 0 || o.MaxBatch < 0 || o.MaxScan < 0 || o.RenderLimit < 0:
		return errors.New("quarantine: queue size, batch, scan and render limits must not be negative")
	case o.CompressionLevel < flate.HuffmanOnly || o.CompressionLevel > flate.BestCompression:
		return fmt.Errorf("quarantine: compression level %d out of range", o.CompressionLevel)
	}
	return nil
}

// Store is the message log and the quarantine, on a shared bbolt database
// (New) or on the fleet's PostgreSQL database (NewPostgres). Its methods
// are safe for concurrent use.
type Store struct {
	be   backend
	opts Options
	m    *metrics
	log  *slog.Logger

	// mu guards closed; Append holds it shared while it enqueues, so Stop
	// can close the queue once no Append is in flight.
	mu     sync.RWMutex
	closed bool
	queue  chan *op
	done   chan struct{} // closed when the committer has exited

	sweepMu   sync.Mutex // serialises sweeps
	startOnce sync.Once
	stopOnce  sync.Once
	stopSweep chan struct{}
	sweepDone chan struct{}

	releasing sync.Map // id -> chan struct{}, releases in progress

	qMessages atomic.Int64
	qBytes    atomic.Int64

	// unwritable holds the error of the last failed commit round, nil
	// once a round succeeds; probing is set while probeLoop runs.
	unwritable atomic.Pointer[error]
	probing    atomic.Bool

	// spool, on the PostgreSQL backend with Options.Spool, keeps log
	// records while the database is out of reach (spool.go).
	spool *spool

	// beforeRound, when set by a test, runs in the committer before each
	// round.
	beforeRound func()
}

// New creates the store's buckets in db if needed and starts the group
// committer. The caller owns db and closes it after Stop. Start the
// retention sweeper with Start; Stop flushes pending writes.
func New(db *bbolt.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("quarantine: nil database")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := newStore(opts)
	s.be = &boltBackend{db: db, s: s}
	if !db.IsReadOnly() {
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bucketLog, bucketIndex, bucketMsg, bucketRollup, bucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("quarantine: creating buckets: %w", err)
		}
	}
	return s.begin()
}

func newStore(opts Options) *Store {
	return &Store{
		opts:      opts,
		log:       opts.Logger,
		queue:     make(chan *op, opts.QueueSize),
		done:      make(chan struct{}),
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
}

// begin loads the quarantine counters, registers the metrics and starts
// the committer.
func (s *Store) begin() (*Store, error) {
	msgs, bytes, err := s.be.counters()
	if err != nil {
		return nil, err
	}
	s.qMessages.Store(msgs)
	s.qBytes.Store(bytes)
	// Registered last, so that a failed New leaves the registry clean.
	s.m = newMetrics(s.opts.Registerer, func() float64 { return float64(len(s.queue)) })
	s.m.qMessages.Set(float64(s.qMessages.Load()))
	s.m.qBytes.Set(float64(s.qBytes.Load()))
	go s.commitLoop()
	return s, nil
}

// Start runs Sweep every Options.SweepInterval until Stop. Calling it
// more than once has no further effect.
func (s *Store) Start() {
	s.startOnce.Do(func() { go s.sweepLoop() })
}

// Stop stops the sweeper, writes every queued record and stops the
// committer. Later writes fail with ErrClosed; reads keep working until
// the database is closed. Stop is idempotent.
func (s *Store) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopSweep)
		// Without Start there is no sweeper to wait for.
		s.startOnce.Do(func() { close(s.sweepDone) })
		<-s.sweepDone
		s.stopSpool()
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		s.mu.Unlock()
		<-s.done
	})
}

func (s *Store) sweepLoop() {
	defer close(s.sweepDone)
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			s.safeSweep()
		}
	}
}

func (s *Store) safeSweep() {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("quarantine: retention sweep panicked", "panic", v)
		}
	}()
	if _, err := s.Sweep(s.opts.Now()); err != nil {
		s.log.Error("quarantine: retention sweep failed", "err", err)
	}
}

// enqueue hands o to the committer, blocking while the queue is full.
func (s *Store) enqueue(o *op) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.queue <- o
	return nil
}

// submit enqueues o and waits until its round is committed. If ctx ends
// before the committer took o, o is dropped and ctx's error returned; once
// the committer has it, submit waits for the commit whatever ctx says, so
// an error always means nothing of o was written.
func (s *Store) submit(ctx context.Context, o *op) error {
	o.done = make(chan error, 1)
	if err := s.enqueue(o); err != nil {
		return err
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.claim.CompareAndSwap(opPending, opAbandoned) {
			return ctx.Err()
		}
		return <-o.done
	}
}

// Writable returns nil while the database can be written, and an error
// wrapping ErrUnwritable, with the cause, from a failed commit round until
// a later round (or the probe the store then runs every
// Options.ProbeInterval) succeeds. Callers refuse work that needs a record
// while it fails: see docs/config-store.md.
func (s *Store) Writable() error {
	if p := s.unwritable.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnwritable, *p)
	}
	if sp := s.spool; sp != nil && sp.down.Load() && sp.records.Load() >= sp.max {
		return fmt.Errorf("%w: PostgreSQL is out of reach and %w (%d records)", ErrUnwritable, ErrSpoolFull, sp.max)
	}
	return nil
}

// setWritable records the outcome of a commit round; it logs and counts
// the changes between writable and not, and starts the probe on a failure.
func (s *Store) setWritable(err error) {
	if err == nil {
		if s.unwritable.Swap(nil) != nil {
			s.m.writable.Set(1)
			s.log.Warn("quarantine: message log writable again; accepting mail")
		}
		return
	}
	s.m.commitFailures.Inc()
	if s.unwritable.Swap(&err) == nil {
		s.m.writable.Set(0)
		s.log.Error("quarantine: message log cannot be written; mail that needs a record is refused until it can", "err", err)
	}
	if s.probing.CompareAndSwap(false, true) {
		go s.probeLoop()
	}
}

// probeValue is what a probe writes: about what a small round of log
// records needs, so that a probe that fits says records fit too.
var probeValue = make([]byte, 16<<10)

// probeLoop writes a probe every ProbeInterval until the log is writable
// again or the store stops: with mail refused at MAIL there may be no
// other write to find out.
func (s *Store) probeLoop() {
	defer s.probing.Store(false)
	t := time.NewTicker(s.opts.ProbeInterval)
	defer t.Stop()
	for s.unwritable.Load() != nil {
		select {
		case <-t.C:
		case <-s.stopSweep:
			return
		}
		if err := s.submit(context.Background(), &op{probe: true}); errors.Is(err, ErrClosed) {
			return
		}
	}
}

// Append queues rec for the message log and returns without waiting for
// it to be written: use it for transactions whose reply does not depend on
// the log. It blocks only while the queue is full (backpressure: records
// are never dropped for lack of room). Append validates rec and encodes it
// in the caller's goroutine; it returns ErrBadRecord for a malformed id or
// status and ErrClosed after Stop. A record with a Quarantine field is
// refused: use Quarantine.
func (s *Store) Append(rec *Record) error {
	o, err := s.recordOp(rec)
	if err != nil {
		return err
	}
	return s.enqueue(o)
}

// AppendWait is Append that returns once the record is durably written.
// An error means the record was not written.
func (s *Store) AppendWait(ctx context.Context, rec *Record) error {
	o, err := s.recordOp(rec)
	if err != nil {
		return err
	}
	return s.submit(ctx, o)
}

// AppendCoalesced is AppendWait for records written at a high rate whose
// caller can wait a little: the record joins a round of queued records,
// which, while other writers are at work, waits a little for company
// before it commits (at most twice as long as recent commits took, and
// Options.CoalesceDelay); a lone writer's record commits at once. The
// relay uses it for mail the next hop accepted, so that it answers 250
// only once the record is on disk while many records still share one
// fsync. An error means the record was not written.
func (s *Store) AppendCoalesced(ctx context.Context, rec *Record) error {
	o, err := s.recordOp(rec)
	if err != nil {
		return err
	}
	o.lazy = true
	return s.submit(ctx, o)
}

// Flush returns once everything queued before the call is written.
func (s *Store) Flush(ctx context.Context) error {
	return s.submit(ctx, &op{})
}

func (s *Store) recordOp(rec *Record) (*op, error) {
	if rec == nil {
		return nil, fmt.Errorf("%w: nil", ErrBadRecord)
	}
	r := *rec
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Quarantine != nil {
		return nil, fmt.Errorf("%w: %s: quarantine info is set by Quarantine", ErrBadRecord, r.ID)
	}
	return newRecordOp(&r), nil
}

func newRecordOp(r *Record) *op {
	return &op{
		id:      r.ID,
		rec:     r,
		status:  r.Status,
		val:     encodeRecord(make([]byte, 0, encodedSizeHint(r)), r),
		idx:     indexKeys(r),
		idxVal:  idxVal(r),
		rollups: rollupKeys(r),
	}
}

func getCounter(b *bbolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func addCounter(b *bbolt.Bucket, k []byte, delta int64) error {
	if delta == 0 {
		return nil
	}
	v := getCounter(b, k) + delta
	if v < 0 {
		v = 0
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

// Get returns the record with that id, or ErrNotFound. It does not apply
// a domain scope: callers serving a domain-scoped admin check
// Record.Domain themselves, or use Search with a Scope.
func (s *Store) Get(id string) (*Record, error) {
	cid, err := ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return s.be.get(cid)
}

func getRecord(tx *bbolt.Tx, id string) (*Record, error) {
	v := tx.Bucket(bucketLog).Get(idKey(id))
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return decodeRecord(id, v)
}

// ByMessageID returns the newest record whose Message-ID is msgid (angle
// brackets optional), or ErrNotFound.
func (s *Store) ByMessageID(msgid string) (*Record, error) {
	v := normMessageID(msgid)
	if v == "" {
		return nil, fmt.Errorf("%w: empty Message-ID", ErrNotFound)
	}
	return s.newestByIndex(idxMessageID, v, func(r *Record) bool { return normMessageID(r.MessageID) == normMessageID(msgid) })
}

// ByTraceToken returns the newest record carrying that trace token, or
// ErrNotFound.
func (s *Store) ByTraceToken(token string) (*Record, error) {
	v := normValue(token, false)
	if v == "" {
		return nil, fmt.Errorf("%w: empty trace token", ErrNotFound)
	}
	return s.newestByIndex(idxTrace, v, func(r *Record) bool { return r.TraceToken == token })
}

func (s *Store) newestByIndex(kind byte, value string, match func(*Record) bool) (*Record, error) {
	return s.be.newest(kind, value, match)
}

func (b *boltBackend) newest(kind byte, value string, match func(*Record) bool) (*Record, error) {
	var rec *Record
	err := b.db.View(func(tx *bbolt.Tx) error {
		it := newIndexIter(tx.Bucket(bucketIndex), idxPrefix(kind, value), "", "")
		for id, _, ok := it.next(); ok; id, _, ok = it.next() {
			r, err := getRecord(tx, id)
			if err != nil {
				continue
			}
			if match(r) {
				rec = r
				return nil
			}
		}
		return fmt.Errorf("%w: %q", ErrNotFound, value)
	})
	return rec, err
}

// Complaint is third-party feedback attributed to a transaction.
type Complaint struct {
	// Time is when the complaint arrived; zero means now.
	Time time.Time
}

// AddComplaint counts a complaint against the transaction txID: the
// record's Complaints is incremented and LastComplaint set. Complaints
// are stored on the record rather than as separate events, so search
// results and Get show them without a join. It waits for the write.
func (s *Store) AddComplaint(ctx context.Context, txID string, c Complaint) error {
	id, err := ParseID(txID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if c.Time.IsZero() {
		c.Time = s.opts.Now()
	}
	return s.submit(ctx, &op{id: id, update: func(r *Record) error {
		r.Complaints++
		if c.Time.After(r.LastComplaint) {
			r.LastComplaint = c.Time.UTC()
		}
		return nil
	}})
}

// SetLearned records that an operator taught the content model with
// transaction txID's message, as "spam" or "ham".
func (s *Store) SetLearned(ctx context.Context, txID, label string) error {
	if label != "spam" && label != "ham" {
		return fmt.Errorf("%w: learned label %q: use spam or ham", ErrBadQuery, label)
	}
	id, err := ParseID(txID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return s.submit(ctx, &op{id: id, update: func(r *Record) error {
		r.Learned = label
		return nil
	}})
}
