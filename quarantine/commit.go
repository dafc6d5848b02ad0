package quarantine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// op is one write handed to the committer. Everything that can be done
// outside the write transaction (validation, encoding, index and rollup
// keys, compression) is done by the caller before enqueueing, so the
// single committer goroutine only copies bytes into the B+trees.
type op struct {
	id string

	// A new record: the record, its encoding, index keys, index value
	// and rollup keys.
	rec     *Record
	status  Status
	val     []byte
	idx     [][]byte
	idxVal  []byte
	rollups []string
	// content is the compressed raw message of a quarantined record.
	content []byte

	// update changes an existing record in place (complaints, release,
	// deletion); an error it returns fails this op only. dropContent
	// also removes the quarantined content.
	update      func(*Record) error
	dropContent bool

	// also runs in the same transaction as the record (the ARF report of
	// a quarantined message): an error from it fails the op and writes
	// nothing of it.
	also Also

	// probe is a health check of the disk (see probeLoop); it writes a
	// fixed-size value to the meta bucket.
	probe bool

	// done, when set, receives the op's outcome once its round is
	// committed; ops without it are fire-and-forget (Append).
	done chan error
	// lazy marks a waiter that does not end the coalescing wait: the
	// record of relayed mail, whose 250 waits for it but which should
	// share its fsync with others (Options.CoalesceDelay).
	lazy bool
	// claim decides between the committer and a waiter whose context
	// ended: the first to swap it from opPending wins. A waiter that
	// wins abandons the op, which is then never written; an op the
	// committer has claimed is waited for to the end, so that a
	// caller's error always means "not written".
	claim atomic.Int32
}

// States of op.claim.
const (
	opPending int32 = iota
	opClaimed
	opAbandoned
)

// take claims o for writing; false means its waiter gave up on it first.
func (o *op) take() bool {
	if o.done == nil {
		return true
	}
	return o.claim.CompareAndSwap(opPending, opClaimed) || o.claim.Load() == opClaimed
}

// errAlso marks an error of op.also: the op's own failure, not the disk's.
type errAlso struct{ err error }

func (e errAlso) Error() string { return e.err.Error() }
func (e errAlso) Unwrap() error { return e.err }

// commitLoop is the group committer: it takes whatever is queued (up to
// MaxBatch) and writes it in one transaction, so one fsync covers every
// record and quarantined message that arrived while the previous round
// was being written (group commit). A round starts as soon as the
// previous one has ended; how long it may first wait for company is
// coalesce's choice. A failed round fails every waiter in it (each op is
// then tried alone, so one bad op fails only itself).
func (s *Store) commitLoop() {
	defer close(s.done)
	batch := make([]*op, 0, s.opts.MaxBatch)
	var pace pacer
	for o := range s.queue {
		batch = append(batch[:0], o)
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case o, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.coalesce(&batch, pace.wait(s.opts.CoalesceDelay))
		start := time.Now()
		if s.beforeRound != nil {
			s.beforeRound()
		}
		s.commitRound(batch)
		pace.observe(batch, time.Since(start))
		clear(batch)
	}
}

// pacer is what the committer remembers of its recent rounds to decide
// whether a round of relayed mail's records (AppendCoalesced) should wait
// for company. Waiting pays only when other writers are at work: a lone
// writer's record would wait for nobody, so it commits at once. When the
// last round carried more than one waiter, others are writing, and a
// round waits for company up to waitCommits times as long as a commit
// takes (avg), capped by Options.CoalesceDelay (docs/config-store.md,
// "How writes reach the disk").
type pacer struct {
	avg     time.Duration // moving average of the time a round takes
	company bool          // the last round had more than one waiter
}

// waitCommits is the wait for company, in commit times. While records
// keep coming, rounds that start at once (no wait) follow each other
// back to back: a record waits 1.5 commit times on average (half the
// commit in progress, then its own), and every commit carries what
// arrived during one. Waiting two commit times makes a round every three
// commit times: three times fewer commits (page writes, fsyncs and their
// CPU) for one commit time more of average wait. Measured in bench/README.md
// ("The group commit's wait").
const waitCommits = 2

// wait is how long the next round of lazy waiters may wait for company,
// at most limit.
func (p *pacer) wait(limit time.Duration) time.Duration {
	if !p.company || limit <= 0 {
		return 0
	}
	return min(waitCommits*p.avg, limit)
}

// observe notes a round of batch that took d.
func (p *pacer) observe(batch []*op, d time.Duration) {
	waiters := 0
	for _, o := range batch {
		if o.done != nil {
			waiters++
		}
	}
	p.company = waiters > 1
	p.avg += (d - p.avg) / 4
}

// coalesce lets a round gather more ops before it commits. A round of
// queued records nobody waits for (Append) waits up to CoalesceDelay:
// only the fsyncs are at stake. A waiter of relayed mail (lazy,
// AppendCoalesced) shortens the wait to lazyWait from its arrival (zero:
// the round commits at once). Any other waiter ends it at once.
func (s *Store) coalesce(batch *[]*op, lazyWait time.Duration) {
	d := s.opts.CoalesceDelay
	if d <= 0 {
		return
	}
	for _, o := range *batch {
		if o.done != nil {
			if !o.lazy {
				return
			}
			d = min(d, lazyWait)
		}
	}
	if d <= 0 {
		return
	}
	deadline := time.Now().Add(d)
	t := time.NewTimer(d)
	defer t.Stop()
	for len(*batch) < s.opts.MaxBatch {
		select {
		case o, ok := <-s.queue:
			if !ok {
				return
			}
			*batch = append(*batch, o)
			if o.done == nil {
				continue
			}
			if !o.lazy || lazyWait <= 0 {
				return
			}
			if until := time.Until(deadline); lazyWait < until {
				deadline = time.Now().Add(lazyWait)
				t.Reset(lazyWait)
			}
		case <-t.C:
			return
		}
	}
}

// qDelta is a change to the quarantine counters.
type qDelta struct{ msgs, bytes int64 }

func (s *Store) commitRound(batch []*op) {
	if s.spool != nil && s.spool.down.Load() {
		s.spoolRound(batch, nil)
		return
	}
	errs := make([]error, len(batch))
	var delta qDelta
	start := time.Now()
	err := s.safeCommit(batch, errs, &delta)
	if s.spool != nil && unreachable(err) {
		// PostgreSQL is out of reach: the records go to the local spool
		// (docs/config-store.md). Nothing of this round was committed,
		// or, if the connection broke during COMMIT, shipping the
		// records again skips the ids already there.
		s.setDown(err)
		s.spoolRound(batch, err)
		return
	}
	if err != nil && len(batch) > 1 {
		// Isolate the op that broke the round: write each alone.
		for _, o := range batch {
			s.commitRound([]*op{o})
		}
		return
	}
	s.m.commitDuration.Observe(time.Since(start).Seconds())
	s.m.batchSize.Observe(float64(len(batch)))
	var ae errAlso
	switch {
	case err == nil:
		s.setWritable(nil)
	case !errors.As(err, &ae):
		s.setWritable(err)
	}
	if err == nil {
		s.qMessages.Add(delta.msgs)
		s.qBytes.Add(delta.bytes)
		s.m.qMessages.Set(float64(s.qMessages.Load()))
		s.m.qBytes.Set(float64(s.qBytes.Load()))
	}
	for i, o := range batch {
		e := errs[i]
		if err != nil {
			e = err
		}
		if e == nil && o.val != nil {
			s.m.records.WithLabelValues(o.status.String()).Inc()
		}
		if o.done != nil {
			o.done <- e
		} else if e != nil {
			s.m.writeErrors.Inc()
			s.log.Error("quarantine: message log write failed", "id", o.id, "err", e)
		}
	}
}

// safeCommit writes a round through the backend, turning a panic into an
// error so that one bad op cannot kill the committer.
func (s *Store) safeCommit(batch []*op, errs []error, delta *qDelta) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("quarantine: panic in commit: %v", v)
		}
	}()
	return s.be.commit(batch, errs, delta)
}

// commit writes a round in one bbolt transaction.
func (b *boltBackend) commit(batch []*op, errs []error, delta *qDelta) error {
	return b.db.Update(func(tx *bbolt.Tx) error {
		*delta = qDelta{}
		clear(errs)
		return applyBolt(tx, batch, errs, delta)
	})
}

func applyBolt(tx *bbolt.Tx, batch []*op, errs []error, delta *qDelta) error {
	logB := tx.Bucket(bucketLog)
	idxB := tx.Bucket(bucketIndex)
	msgB := tx.Bucket(bucketMsg)
	rollB := tx.Bucket(bucketRollup)
	meta := tx.Bucket(bucketMeta)
	// Ids grow with time, so the log is written almost in key order:
	// fuller pages keep the file small.
	logB.FillPercent = 0.9
	msgB.FillPercent = 0.9
	// Index keys of one value are also written in id order, and rollups
	// in time order: keep their pages full too.
	idxB.FillPercent = 0.9
	rollB.FillPercent = 0.9
	// The counters a round increments: those of the totals and domains
	// are shared by its records, those per sender mostly not.
	agg := make(map[string]uint64, 8*len(batch))
	for i, o := range batch {
		if !o.take() {
			errs[i] = errAbandoned
			continue
		}
		switch {
		case o.probe:
			if err := meta.Put(metaProbe, probeValue); err != nil {
				return err
			}
		case o.val != nil:
			key := idKey(o.id)
			if logB.Get(key) != nil {
				errs[i] = fmt.Errorf("%w: %s: id already in the log", ErrBadRecord, o.id)
				continue
			}
			if o.content != nil {
				if err := msgB.Put(key, o.content); err != nil {
					return err
				}
				delta.msgs++
				delta.bytes += int64(len(o.content))
			}
			if err := logB.Put(key, o.val); err != nil {
				return err
			}
			for _, k := range o.idx {
				if err := idxB.Put(k, o.idxVal); err != nil {
					return err
				}
			}
			for _, k := range o.rollups {
				agg[k]++
			}
			if o.also.Bolt != nil {
				if err := o.also.Bolt(tx); err != nil {
					return errAlso{err}
				}
			}
		case o.update != nil:
			opErr, err := applyUpdate(logB, idxB, msgB, o, delta)
			if err != nil {
				return err
			}
			errs[i] = opErr
		}
	}
	if len(agg) > 0 {
		if err := addRollups(rollB, agg); err != nil {
			return err
		}
	}
	if err := addCounter(meta, metaQMessages, delta.msgs); err != nil {
		return err
	}
	return addCounter(meta, metaQBytes, delta.bytes)
}

// applyUpdate runs o.update on its record. opErr is a refusal that fails
// only this op (no such record, the update said no) and leaves the
// transaction untouched; err is a write error that fails the round.
func applyUpdate(logB, idxB, msgB *bbolt.Bucket, o *op, delta *qDelta) (opErr, err error) {
	key := idKey(o.id)
	v := logB.Get(key)
	if v == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, o.id), nil
	}
	r, err := decodeRecord(o.id, v)
	if err != nil {
		return err, nil
	}
	oldKeys, oldVal := indexKeys(r), idxVal(r)
	if err := o.update(r); err != nil {
		return err, nil
	}
	// An update that changes what the index holds (the status on
	// release) moves the record's index entries.
	if newKeys, newVal := indexKeys(r), idxVal(r); !bytes.Equal(oldVal, newVal) || !slices.EqualFunc(oldKeys, newKeys, bytes.Equal) {
		for _, k := range oldKeys {
			if err := idxB.Delete(k); err != nil {
				return nil, err
			}
		}
		for _, k := range newKeys {
			if err := idxB.Put(k, newVal); err != nil {
				return nil, err
			}
		}
	}
	if o.dropContent {
		if c := msgB.Get(key); c != nil {
			delta.msgs--
			delta.bytes -= int64(len(c))
			if err := msgB.Delete(key); err != nil {
				return nil, err
			}
		}
	}
	return nil, logB.Put(key, encodeRecord(make([]byte, 0, len(v)+16), r))
}

// addRollups adds the counts in agg to the rollup counters, in key order
// so that neighbouring counters are written together.
func addRollups(b *bbolt.Bucket, agg map[string]uint64) error {
	keys := make([]string, 0, len(agg))
	for k := range agg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// bbolt keeps the value slices until commit: one buffer for all. It
	// copies the keys (Bucket.Put): one buffer, reused, for those.
	vals := make([]byte, 8*len(keys))
	var kb []byte
	for i, k := range keys {
		kb = append(kb[:0], k...)
		n := agg[k]
		if v := b.Get(kb); len(v) == 8 {
			n += binary.BigEndian.Uint64(v)
		}
		val := vals[8*i : 8*i+8 : 8*i+8]
		binary.BigEndian.PutUint64(val, n)
		if err := b.Put(kb, val); err != nil {
			return err
		}
	}
	return nil
}
