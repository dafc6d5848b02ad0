package identity

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Defaults of Options.
const (
	DefaultFlushInterval = 5 * time.Second
	DefaultMaxHistory    = 200
	DefaultMaxWouldLocks = 10_000
	DefaultShards        = 64
)

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives flush and sweep failures; nil discards.
	Logger *slog.Logger
	// Now is the clock (a test seam); nil is time.Now.
	Now func() time.Time
	// FlushInterval is how often window state is written behind to bbolt
	// and expired locks are settled (history, escalation count). Default
	// DefaultFlushInterval. Negative disables the background loop; Flush
	// and Close still write.
	FlushInterval time.Duration
	// OnEvent, if set, is called after each lock, unlock, expiry and
	// would-lock is committed, outside the Manager's locks, on the
	// goroutine that caused it (Observe, Lock, Unlock or the flush loop).
	// It must not block; hand slow work to another goroutine.
	OnEvent func(Event)
	// MaxHistory bounds the history kept per target; older entries are
	// dropped. Default DefaultMaxHistory.
	MaxHistory int
	// MaxWouldLocks bounds the WouldLocks kept; the oldest are dropped.
	// Default DefaultMaxWouldLocks.
	MaxWouldLocks int
	// Shards is the number of window shards; each has its own mutex.
	// Default DefaultShards.
	Shards int
	// RoundInterval is how often, on PostgreSQL (OpenPostgres), the
	// window increments are sent and the other nodes' counts read back.
	// Default DefaultRoundInterval; negative disables the loop (Flush
	// still runs a round).
	RoundInterval time.Duration
	// ResyncInterval is how often, on PostgreSQL, the lock index is
	// reloaded in full besides the notifications. Default
	// DefaultResyncInterval.
	ResyncInterval time.Duration
}

// Manager keeps locks and automatic-locking windows. It is safe for
// concurrent use. Open it once per database; Close it before closing the
// database.
type Manager struct {
	store backend
	// fleet is the PostgreSQL store's fleet side; nil on bbolt.
	fleet   fleetStore
	opts    Options
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics

	// index holds, by Target.key, every lock not yet settled: those in
	// force and those expired but not yet swept. Values are *Lock and are
	// never modified once stored.
	index sync.Map

	// writeMu serialises lock writes so that reading a record, deciding
	// and writing it back is atomic with respect to the index.
	writeMu sync.Mutex

	seed   maphash.Seed
	shards []shard

	// indexFresh is when the index was last known current (Unix
	// nanoseconds), on PostgreSQL; opened is when the Manager was opened.
	indexFresh atomic.Int64
	opened     time.Time
	// roundMu serialises fleet rounds (the loop, Flush, Close).
	roundMu sync.Mutex
	// fleetCancel stops the listener and the round loop; fleetDone and
	// roundDone are closed when they have stopped.
	fleetCancel func()
	fleetDone   chan struct{}
	roundDone   chan struct{}
	// fleetRoundTimeout bounds each round of the loop (pgdb.RoundTimeout).
	fleetRoundTimeout time.Duration

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// Open creates the Manager's buckets on the node's bbolt database if
// needed and loads the locks in force and the window state. It starts the
// write-behind loop unless Options.FlushInterval is negative.
func Open(db *bolt.DB, opts Options) (*Manager, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalid)
	}
	st, err := newBoltStore(db)
	if err != nil {
		return nil, err
	}
	return openWith(st, opts, nil)
}

// openWith builds a Manager on st and loads it; fleet is the shared
// store's fleet side, nil on bbolt.
func openWith(st backend, opts Options, fleet fleetStore) (*Manager, error) {
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MaxHistory <= 0 {
		opts.MaxHistory = DefaultMaxHistory
	}
	if opts.MaxWouldLocks <= 0 {
		opts.MaxWouldLocks = DefaultMaxWouldLocks
	}
	if opts.Shards <= 0 {
		opts.Shards = DefaultShards
	}
	m := &Manager{
		store:  st,
		fleet:  fleet,
		opened: time.Now(),
		opts:   opts,
		now:    opts.Now,
		log:    opts.Logger,
		seed:   maphash.MakeSeed(),
		shards: make([]shard, opts.Shards),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	for i := range m.shards {
		m.shards[i].windows = map[string]*window{}
		m.shards[i].dirty = map[string]*window{}
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	m.metrics = newMetrics(opts.Registerer, m)
	if opts.FlushInterval > 0 {
		go m.loop()
	} else {
		close(m.done)
	}
	return m, nil
}

// Close stops the write-behind loop, settles expired locks and writes the
// window state a last time. Call it after the last Observe (stop the SMTP
// listeners first) and before closing the database, which it does not
// close. Later calls return nil; other methods return ErrClosed after
// Close.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		if m.fleetCancel != nil {
			m.fleetCancel()
			<-m.fleetDone
			if m.roundDone != nil {
				<-m.roundDone
			}
		}
		// The last round sends what was counted since the one before;
		// a crossing it finds can still lock.
		rerr := m.round(context.Background())
		m.closed.Store(true)
		err = errors.Join(rerr, m.sweep(), m.flush())
	})
	return err
}

// Flush writes the window state changed since the last flush and settles
// expired locks now, instead of waiting for the loop.
func (m *Manager) Flush() error {
	if m.closed.Load() {
		return ErrClosed
	}
	return errors.Join(m.sweep(), m.flush(), m.round(context.Background()), m.expireFleet())
}

// expireFleet drops the fleet counts that left their windows.
func (m *Manager) expireFleet() error {
	if m.fleet == nil {
		return nil
	}
	return m.fleet.expireCounts(context.Background(), m.now().UnixNano())
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.tick()
		}
	}
}

// tick runs one flush and sweep, surviving a panic so the loop goes on.
func (m *Manager) tick() {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("identity: panic in flush loop", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	if err := m.sweep(); err != nil {
		m.metrics.flushErrors.Inc()
		m.log.Error("identity: settling expired locks", "err", err)
	}
	if err := m.flush(); err != nil {
		m.metrics.flushErrors.Inc()
		m.log.Error("identity: writing window state", "err", err)
	}
	if err := m.expireFleet(); err != nil {
		m.metrics.flushErrors.Inc()
		m.log.Error("identity: expiring fleet counts", "err", err)
	}
}

func (m *Manager) emit(ev Event) {
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
}

func (m *Manager) shardOf(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
}
