package quarantine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// sweepChunk bounds the deletions per transaction, so a large sweep does
// not hold the write lock (and the committer) for long.
const sweepChunk = 5000

// SweepResult counts what a Sweep removed.
type SweepResult struct {
	// Records removed from the log (with their index entries).
	Records int
	// Contents of quarantined messages removed (records kept, marked
	// expired), plus those removed with their records.
	Contents int
	// Rollups counters removed.
	Rollups int
}

// Sweep applies retention as of now: it removes log records whose id time
// is before now-LogRetention (with their index entries and any content),
// quarantined content before now-QuarantineRetention (marking the record
// expired), rollup buckets that end at or before now-LogRetention, and
// hourly per-identity, user and sender buckets that end at or before
// now-HourlyRetention.
// Everything newer stays. Start runs it periodically; tests and the CLI
// may call it directly.
func (s *Store) Sweep(now time.Time) (SweepResult, error) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	var res SweepResult
	err := s.be.sweep(now, &res)
	s.m.swept.WithLabelValues("record").Add(float64(res.Records))
	s.m.swept.WithLabelValues("content").Add(float64(res.Contents))
	s.m.swept.WithLabelValues("rollup").Add(float64(res.Rollups))
	return res, err
}

// sweep applies retention in chunks of bbolt transactions.
func (b *boltBackend) sweep(now time.Time, res *SweepResult) error {
	s := b.s
	logCut := now.Add(-s.opts.LogRetention)
	qCut := now.Add(-s.opts.QuarantineRetention)

	for {
		n, err := b.sweepChunk(func(tx *bbolt.Tx, d *qDelta) (int, error) {
			return sweepRecords(tx, idFloor(logCut), d, res)
		})
		if err != nil {
			return fmt.Errorf("quarantine: sweeping the log: %w", err)
		}
		if n < sweepChunk {
			break
		}
	}
	for {
		n, err := b.sweepChunk(func(tx *bbolt.Tx, d *qDelta) (int, error) {
			return sweepContent(tx, idFloor(qCut), d)
		})
		res.Contents += n
		if err != nil {
			return fmt.Errorf("quarantine: sweeping quarantined content: %w", err)
		}
		if n < sweepChunk {
			break
		}
	}
	// Buckets below a limit end at or before the cut-off.
	hourLimit := uint32(logCut.Unix() / 3600)
	dayLimit := uint32(logCut.Unix() / 86400)
	keyHourLimit := uint32(now.Add(-s.opts.HourlyRetention).Unix() / 3600)
	for _, g := range []struct {
		gran  byte
		limit uint32
	}{{granHour, hourLimit}, {granKeyHour, keyHourLimit}, {granDay, dayLimit}} {
		for {
			n, err := b.sweepChunk(func(tx *bbolt.Tx, _ *qDelta) (int, error) {
				return sweepRollups(tx.Bucket(bucketRollup), g.gran, g.limit)
			})
			res.Rollups += n
			if err != nil {
				return fmt.Errorf("quarantine: sweeping rollups: %w", err)
			}
			if n < sweepChunk {
				break
			}
		}
	}
	return nil
}

// sweepChunk runs fn in one write transaction, updating the quarantine
// counters on success.
func (b *boltBackend) sweepChunk(fn func(*bbolt.Tx, *qDelta) (int, error)) (int, error) {
	s := b.s
	var d qDelta
	var n int
	err := b.db.Update(func(tx *bbolt.Tx) error {
		d = qDelta{}
		var err error
		if n, err = fn(tx, &d); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := addCounter(meta, metaQMessages, d.msgs); err != nil {
			return err
		}
		return addCounter(meta, metaQBytes, d.bytes)
	})
	if err != nil {
		return 0, err
	}
	s.qMessages.Add(d.msgs)
	s.qBytes.Add(d.bytes)
	s.m.qMessages.Set(float64(s.qMessages.Load()))
	s.m.qBytes.Set(float64(s.qBytes.Load()))
	return n, nil
}

// firstKeysBefore returns up to sweepChunk keys of b, oldest first, that
// are below limit.
func firstKeysBefore(b *bbolt.Bucket, limit string) [][]byte {
	var keys [][]byte
	lk := idKey(limit)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, lk) < 0 && len(keys) < sweepChunk; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}

func sweepRecords(tx *bbolt.Tx, cut string, d *qDelta, res *SweepResult) (int, error) {
	logB, idxB, msgB := tx.Bucket(bucketLog), tx.Bucket(bucketIndex), tx.Bucket(bucketMsg)
	keys := firstKeysBefore(logB, cut)
	for _, k := range keys {
		if r, err := decodeRecord(keyID(k), logB.Get(k)); err == nil {
			for _, ik := range indexKeys(r) {
				if err := idxB.Delete(ik); err != nil {
					return 0, err
				}
			}
		}
		if c := msgB.Get(k); c != nil {
			d.msgs--
			d.bytes -= int64(len(c))
			res.Contents++
			if err := msgB.Delete(k); err != nil {
				return 0, err
			}
		}
		if err := logB.Delete(k); err != nil {
			return 0, err
		}
	}
	res.Records += len(keys)
	return len(keys), nil
}

func sweepContent(tx *bbolt.Tx, cut string, d *qDelta) (int, error) {
	logB, msgB := tx.Bucket(bucketLog), tx.Bucket(bucketMsg)
	keys := firstKeysBefore(msgB, cut)
	for _, k := range keys {
		c := msgB.Get(k)
		d.msgs--
		d.bytes -= int64(len(c))
		if err := msgB.Delete(k); err != nil {
			return 0, err
		}
		v := logB.Get(k)
		if v == nil {
			continue
		}
		r, err := decodeRecord(keyID(k), v)
		if err != nil || r.Quarantine == nil {
			continue
		}
		r.Quarantine.Expired = true
		if err := logB.Put(k, encodeRecord(make([]byte, 0, len(v)+4), r)); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func sweepRollups(b *bbolt.Bucket, gran byte, limit uint32) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek([]byte{gran}); k != nil && k[0] == gran && len(keys) < sweepChunk; k, _ = c.Next() {
		if len(k) < 5 || binary.BigEndian.Uint32(k[1:5]) >= limit {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
