package quarantine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.etcd.io/bbolt"
)

// The spool of the PostgreSQL backend (docs/config-store.md, "When
// PostgreSQL is unreachable"): while the fleet's database cannot be
// reached, the log records of mail the node relays are written to a
// bucket of the node's own bbolt file instead, before the 250, and
// shipped to PostgreSQL once it answers again. Shipping is idempotent by
// log id (the log's INSERT skips an id it already has, and only rows it
// inserts add to the rollups), so a crash between the INSERT and the
// removal from the spool ships the record again without doubling it.
//
// Only plain log records are spooled. A quarantined message, an update
// (complaint, release) or anything else that needs the shared database
// fails with ErrDegraded while it is out of reach: the relay answers
// 451 4.3.0 for mail it would have quarantined.

var (
	// bucketSpool maps the text id (which sorts by time) to the encoded
	// record waiting to be shipped.
	bucketSpool = []byte("quarantine.spool")
	// bucketSpoolFailed keeps spooled records PostgreSQL refused for
	// themselves (not for being out of reach), so that one cannot block
	// the others; they are logged and counted, never dropped.
	bucketSpoolFailed = []byte("quarantine.spool.failed")
	// bucketSpoolMeta holds the spool's disk probe.
	bucketSpoolMeta = []byte("quarantine.spool.meta")
)

// DefaultSpoolMax is the default bound of Options.SpoolMax.
const DefaultSpoolMax = 1000000

// shipBatch bounds the records shipped in one PostgreSQL transaction.
const shipBatch = 1000

// Errors of the spool.
var (
	// ErrDegraded: the shared database is out of reach and the write
	// cannot be spooled (a quarantined message, an update), or a read
	// needs the database.
	ErrDegraded = errors.New("quarantine: the shared message store is out of reach")
	// ErrSpoolFull: the database is out of reach and the spool holds
	// Options.SpoolMax records.
	ErrSpoolFull = errors.New("quarantine: the local spool of log records is full")
)

// State is where the store writes, for /-/ready and the metrics.
type State int

// States of a Store.
const (
	// StateOK: records are written to the database (bbolt, or
	// PostgreSQL with an empty spool).
	StateOK State = iota
	// StateShipping: PostgreSQL answers again and the spooled records
	// are being shipped; new records go to PostgreSQL.
	StateShipping
	// StateSpooling: PostgreSQL is out of reach; records of relayed mail
	// go to the spool, quarantining is refused.
	StateSpooling
	// StateUnwritable: records cannot be kept (the disk fails, or the
	// spool is full or fails while PostgreSQL is out of reach): mail
	// that needs a record is refused.
	StateUnwritable
)

var stateNames = [...]string{"ok", "shipping", "spooling", "unwritable"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// spool is the PostgreSQL backend's local buffer of log records.
type spool struct {
	db  *bbolt.DB
	max int64

	// down is set while PostgreSQL is out of reach: from a failed round
	// until a shipping round or probe succeeds.
	down    atomic.Bool
	records atomic.Int64
	bytes   atomic.Int64

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once

	spooled prometheus.Counter
	shipped prometheus.Counter
	failed  prometheus.Counter
}

// openSpool creates the spool's buckets in Options.Spool and loads its
// counters; startSpool registers its metrics and starts the shipper.
func (s *Store) openSpool() error {
	db := s.opts.Spool
	sp := &spool{db: db, max: int64(s.opts.SpoolMax), kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if sp.max <= 0 {
		sp.max = DefaultSpoolMax
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketSpool, bucketSpoolFailed, bucketSpoolMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quarantine: creating the spool: %w", err)
	}
	if err := sp.recount(); err != nil {
		return fmt.Errorf("quarantine: reading the spool: %w", err)
	}
	s.spool = sp
	return nil
}

// startSpool registers the spool's metrics (and the store's state) and
// starts the shipper, which ships at once what a previous run left.
func (s *Store) startSpool() {
	sp := s.spool
	reg := s.opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if s.opts.Node != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": s.opts.Node}, reg)
	}
	f := promauto.With(reg)
	for st := StateOK; st <= StateUnwritable; st++ {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "outguard_store_state",
			Help:        "1 for the state the message store is in: ok, shipping (PostgreSQL is back, spooled records are being shipped), spooling (PostgreSQL is out of reach, records of relayed mail go to the local spool), unwritable (records cannot be kept: mail is refused).",
			ConstLabels: prometheus.Labels{"state": st.String()},
		}, func() float64 {
			if s.State() == st {
				return 1
			}
			return 0
		})
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_store_spool_records",
		Help: "Log records waiting in the local spool to be shipped to PostgreSQL.",
	}, func() float64 { return float64(sp.records.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_store_spool_max_records",
		Help: "The bound of the local spool (store.postgres.spool_max_records).",
	}, func() float64 { return float64(sp.max) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_store_spool_bytes",
		Help: "Encoded size of the log records waiting in the local spool.",
	}, func() float64 { return float64(sp.bytes.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "outguard_store_spool_oldest_age_seconds",
		Help: "Age of the oldest log record waiting in the local spool; 0 when it is empty.",
	}, func() float64 {
		at, ok := sp.oldest()
		if !ok {
			return 0
		}
		return max(0, s.opts.Now().Sub(at).Seconds())
	})
	sp.spooled = f.NewCounter(prometheus.CounterOpts{
		Name: "outguard_store_spooled_total",
		Help: "Log records written to the local spool while PostgreSQL was out of reach.",
	})
	sp.shipped = f.NewCounter(prometheus.CounterOpts{
		Name: "outguard_store_spool_shipped_total",
		Help: "Spooled log records shipped to PostgreSQL (or found there already) and removed from the spool.",
	})
	sp.failed = f.NewCounter(prometheus.CounterOpts{
		Name: "outguard_store_spool_failed_total",
		Help: "Spooled log records PostgreSQL refused for themselves; they are kept in the bucket quarantine.spool.failed.",
	})
	// What a previous run left is counted now, not when the goroutine
	// first runs: records spooled by this run in between wait for the
	// ticker like any others.
	go s.shipLoop(sp.records.Load() > 0)
}

// recount loads the spool's counters from the bucket.
func (sp *spool) recount() error {
	return sp.db.View(func(tx *bbolt.Tx) error {
		var n, size int64
		c := tx.Bucket(bucketSpool).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n++
			size += int64(len(v))
		}
		sp.records.Store(n)
		sp.bytes.Store(size)
		return nil
	})
}

// oldest returns the time of the oldest spooled record (ids sort by
// time); false when the spool is empty.
func (sp *spool) oldest() (time.Time, bool) {
	var id string
	err := sp.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketSpool).Cursor().First()
		id = string(k)
		return nil
	})
	if err != nil || id == "" {
		return time.Time{}, false
	}
	t, err := IDTime(id)
	return t, err == nil
}

func (sp *spool) wake() {
	select {
	case sp.kick <- struct{}{}:
	default:
	}
}

// unreachable tells a failure to reach PostgreSQL (connection refused or
// lost, the server shutting down or refusing connections, a read-only
// server after a failover, a timeout) from a refusal of the round's own
// content, which is isolated op by op as on bbolt.
func unreachable(err error) bool {
	var ae errAlso
	if err == nil || errors.As(err, &ae) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources (too many connections, disk full)
			"57", // operator intervention (shutdown, terminated, cannot connect now)
			"58", // system error
			"55", // object not in prerequisite state (the database does not accept connections)
			"3D", // the database does not exist (yet)
			"25": // read-only transaction: the server is a standby after a failover
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, net.ErrClosed) || isConnClosed(err)
}

// isConnClosed matches pgx's errors for a connection it closed after a
// failure, which carry no type of their own.
func isConnClosed(err error) bool {
	msg := err.Error()
	for _, s := range []string{"conn closed", "conn busy", "failed to connect", "closed pool", "connection reset", "broken pipe"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// spoolable reports whether o is a plain log record, which the spool can
// keep while PostgreSQL is out of reach.
func spoolable(o *op) bool {
	return o.val != nil && o.content == nil && o.also.PG == nil && o.also.Bolt == nil && o.update == nil
}

// spoolRound writes a committer round while PostgreSQL is out of reach:
// plain records go to the spool in one bbolt transaction (one fsync);
// a probe writes to the spool's meta bucket, so that it tests the disk
// the records now depend on; everything else fails with ErrDegraded.
// cause is PostgreSQL's error.
func (s *Store) spoolRound(batch []*op, cause error) {
	sp := s.spool
	errs := make([]error, len(batch))
	var recs []int
	probe := false
	for i, o := range batch {
		switch {
		case spoolable(o):
			if !o.take() {
				errs[i] = errAbandoned
				continue
			}
			recs = append(recs, i)
		case o.probe:
			probe = true
		case o.val == nil && o.update == nil:
			// A Flush marker: nothing to write.
		default:
			if cause != nil {
				errs[i] = fmt.Errorf("%w: %w", ErrDegraded, cause)
			} else {
				errs[i] = ErrDegraded
			}
		}
	}
	var added, size int64
	start := time.Now()
	err := sp.db.Update(func(tx *bbolt.Tx) error {
		added, size = 0, 0
		b := tx.Bucket(bucketSpool)
		b.FillPercent = 0.9
		for _, i := range recs {
			o := batch[i]
			errs[i] = nil
			if b.Get([]byte(o.id)) != nil {
				errs[i] = fmt.Errorf("%w: %s: id already in the log", ErrBadRecord, o.id)
				continue
			}
			if sp.records.Load()+added >= sp.max {
				errs[i] = fmt.Errorf("%w (%d records)", ErrSpoolFull, sp.max)
				continue
			}
			if err := b.Put([]byte(o.id), o.val); err != nil {
				return err
			}
			added++
			size += int64(len(o.val))
		}
		if probe {
			return tx.Bucket(bucketSpoolMeta).Put(metaProbe, probeValue)
		}
		return nil
	})
	s.m.commitDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		err = fmt.Errorf("quarantine: writing the local spool: %w", err)
	} else {
		if added > 0 {
			sp.records.Add(added)
			sp.bytes.Add(size)
			sp.spooled.Add(float64(added))
		}
		if len(recs) > 0 || probe {
			// The spool takes records again (after a failed write, or
			// once shipping made room).
			s.setWritable(nil)
		}
	}
	if err != nil {
		s.setWritable(err)
	}
	for i, o := range batch {
		e := errs[i]
		if err != nil && (spoolable(o) || o.probe) {
			e = err
		}
		if o.done != nil {
			o.done <- e
		} else if e != nil {
			s.m.writeErrors.Inc()
			s.log.Error("quarantine: message log write failed", "id", o.id, "err", e)
		}
	}
}

// setDown records that PostgreSQL is out of reach (err) or answers again
// (nil), logging each change.
func (s *Store) setDown(err error) {
	sp := s.spool
	if err != nil {
		if sp.down.CompareAndSwap(false, true) {
			s.log.Error("quarantine: PostgreSQL is out of reach; spooling log records of relayed mail locally and refusing to quarantine (451 4.3.0) until it answers",
				"err", err, "spool_records", sp.records.Load(), "spool_max_records", sp.max)
		}
		sp.wake()
		return
	}
	if sp.down.CompareAndSwap(true, false) {
		s.log.Warn("quarantine: PostgreSQL answers again; shipping the spooled log records", "spool_records", sp.records.Load())
	}
}

// State says where the store writes now.
func (s *Store) State() State {
	if s.unwritable.Load() != nil {
		return StateUnwritable
	}
	sp := s.spool
	switch {
	case sp == nil:
		return StateOK
	case sp.down.Load():
		if sp.records.Load() >= sp.max {
			return StateUnwritable
		}
		return StateSpooling
	case sp.records.Load() > 0:
		return StateShipping
	}
	return StateOK
}

// SpoolRecords returns the number of log records waiting in the local
// spool (0 without one).
func (s *Store) SpoolRecords() int64 {
	if s.spool == nil {
		return 0
	}
	return s.spool.records.Load()
}

// degraded returns ErrDegraded while PostgreSQL is out of reach, for
// reads that would only wait for it to time out.
func (s *Store) degraded() error {
	if s.spool != nil && s.spool.down.Load() {
		return fmt.Errorf("%w (%d log records of this node are spooled until it answers)", ErrDegraded, s.spool.records.Load())
	}
	return nil
}

// shipLoop ships the spool to PostgreSQL every ProbeInterval (and first
// at once when a previous run left records), or when woken, until Stop; while the spool is empty and PostgreSQL out of
// reach it probes the database instead.
func (s *Store) shipLoop(leftover bool) {
	sp := s.spool
	defer close(sp.done)
	t := time.NewTicker(s.opts.ProbeInterval)
	defer t.Stop()
	if leftover {
		// What a previous run left.
		s.safeShip()
	}
	for {
		select {
		case <-sp.stop:
			return
		case <-t.C:
		case <-sp.kick:
			// Give the database the probe interval to come back rather
			// than hammer it right after a failure.
			select {
			case <-sp.stop:
				return
			case <-t.C:
			}
		}
		s.safeShip()
	}
}

func (s *Store) safeShip() {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("quarantine: shipping the spool panicked", "panic", v)
		}
	}()
	s.ship()
}

// ship sends the spooled records to PostgreSQL in rounds of shipBatch,
// removing each round from the spool once its transaction is committed.
// It returns at the first failure (PostgreSQL still out of reach) or when
// the spool is empty.
func (s *Store) ship() {
	sp := s.spool
	for {
		select {
		case <-sp.stop:
			return
		default:
		}
		batch, err := s.readSpool(shipBatch)
		if err != nil {
			s.log.Error("quarantine: reading the spool", "err", err)
			return
		}
		if len(batch) == 0 {
			if sp.down.Load() {
				s.probePG()
			}
			return
		}
		errs := make([]error, len(batch))
		var delta qDelta
		err = s.safeCommit(batch, errs, &delta)
		if err != nil && !unreachable(err) && len(batch) > 1 {
			// One record PostgreSQL refuses for itself: ship one by one,
			// setting aside the refused ones.
			for _, o := range batch {
				if !s.shipOne(o) {
					return
				}
			}
			continue
		}
		if err != nil {
			if unreachable(err) {
				s.setDown(err)
				return
			}
			s.setAside([]*op{batch[0]}, err)
			continue
		}
		s.setDown(nil)
		s.afterShip(batch, errs)
		if err := s.unspool(batch); err != nil {
			s.log.Error("quarantine: removing shipped records from the spool (they will be shipped again, without doubles)", "err", err)
			return
		}
	}
}

// shipOne ships o alone; false means PostgreSQL is out of reach again.
func (s *Store) shipOne(o *op) bool {
	errs := make([]error, 1)
	var delta qDelta
	err := s.safeCommit([]*op{o}, errs, &delta)
	switch {
	case err == nil:
		s.setDown(nil)
		s.afterShip([]*op{o}, errs)
		if err := s.unspool([]*op{o}); err != nil {
			s.log.Error("quarantine: removing a shipped record from the spool", "id", o.id, "err", err)
			return false
		}
	case unreachable(err):
		s.setDown(err)
		return false
	default:
		s.setAside([]*op{o}, err)
	}
	return true
}

// afterShip counts a shipped round. A record refused as already in the
// log (ErrBadRecord is the only refusal of a new record by the PostgreSQL
// backend) was shipped by an earlier round whose removal from the spool
// did not happen: it counts as shipped.
func (s *Store) afterShip(batch []*op, errs []error) {
	for i, o := range batch {
		if errs[i] == nil {
			s.m.records.WithLabelValues(o.status.String()).Inc()
		}
	}
	s.spool.shipped.Add(float64(len(batch)))
}

// setAside moves records PostgreSQL refused for themselves to the failed
// bucket, so that they do not hold up the others.
func (s *Store) setAside(ops []*op, cause error) {
	sp := s.spool
	err := sp.db.Update(func(tx *bbolt.Tx) error {
		b, f := tx.Bucket(bucketSpool), tx.Bucket(bucketSpoolFailed)
		for _, o := range ops {
			if err := f.Put([]byte(o.id), o.val); err != nil {
				return err
			}
			if err := b.Delete([]byte(o.id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("quarantine: setting aside a spooled record PostgreSQL refused", "err", err)
		return
	}
	for _, o := range ops {
		sp.failed.Inc()
		s.log.Error("quarantine: PostgreSQL refused a spooled log record; kept in the bucket quarantine.spool.failed", "id", o.id, "err", cause)
	}
	if err := sp.recount(); err != nil {
		s.log.Error("quarantine: counting the spool", "err", err)
	}
}

// readSpool returns up to n spooled records, oldest first, as ops for the
// backend.
func (s *Store) readSpool(n int) ([]*op, error) {
	var ops []*op
	err := s.spool.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketSpool).Cursor()
		for k, v := c.First(); k != nil && len(ops) < n; k, v = c.Next() {
			id := string(k)
			r, err := decodeRecord(id, v)
			if err != nil {
				return fmt.Errorf("spooled record %s: %w", id, err)
			}
			o := newRecordOp(r)
			// Ship the bytes as they were spooled.
			o.val = bytes.Clone(v)
			ops = append(ops, o)
		}
		return nil
	})
	return ops, err
}

// unspool removes shipped records from the spool.
func (s *Store) unspool(ops []*op) error {
	sp := s.spool
	var n, size int64
	err := sp.db.Update(func(tx *bbolt.Tx) error {
		n, size = 0, 0
		b := tx.Bucket(bucketSpool)
		for _, o := range ops {
			if v := b.Get([]byte(o.id)); v != nil {
				n++
				size += int64(len(v))
				if err := b.Delete([]byte(o.id)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sp.records.Add(-n)
	sp.bytes.Add(-size)
	return nil
}

// probePG writes a probe to PostgreSQL and records whether it answers.
func (s *Store) probePG() {
	errs := make([]error, 1)
	var delta qDelta
	err := s.safeCommit([]*op{{probe: true}}, errs, &delta)
	if err == nil {
		s.setDown(nil)
		return
	}
	if !unreachable(err) {
		s.log.Warn("quarantine: probing PostgreSQL", "err", err)
	}
}

// stopSpool stops the shipper and waits for it.
func (s *Store) stopSpool() {
	if s.spool == nil {
		return
	}
	s.spool.once.Do(func() { close(s.spool.stop) })
	<-s.spool.done
}
