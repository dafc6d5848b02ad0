package identity

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// backend is where a Manager keeps its records: the lock records (lock,
// history, escalation count), the window state written behind, and the
// WouldLocks. boltStore keeps them in bbolt buckets; pgStore in the
// PostgreSQL tables a fleet of nodes shares. The in-memory lock index and
// the windows' counting stay in the Manager, whatever the backend.
type backend interface {
	// getRecord returns the record of key, or nil.
	getRecord(ctx context.Context, key string) (*record, error)
	// updateRecords runs fn on the record of each key (nil when there is
	// none) in one transaction that holds them against every other writer
	// (other nodes included), and writes the record fn returns, if not
	// nil. An error from fn aborts the transaction and is returned as is.
	updateRecords(ctx context.Context, keys []string, fn func(key string, r *record) (*record, error)) error
	// scanRecords calls fn on each record whose key starts with prefix,
	// in key order, until fn returns false.
	scanRecords(ctx context.Context, prefix string, fn func(key string, r *record) (bool, error)) error

	// loadWindows calls keep on each stored window state of this node;
	// those it does not keep are deleted.
	loadWindows(keep func(key string, v []byte) bool) error
	// writeWindows stores and deletes window states in one transaction.
	writeWindows(puts map[string][]byte, dels []string) error

	// addWouldLock stores wl, setting its ID, and drops the oldest past max.
	addWouldLock(wl *WouldLock, max int) error
	// scanWouldLocks calls fn on each WouldLock, newest first, until fn
	// returns false.
	scanWouldLocks(ctx context.Context, fn func(WouldLock) (bool, error)) error
}

// Bucket names on the shared database.
var (
	bucketLocks      = []byte("identity_locks")
	bucketWindows    = []byte("identity_windows")
	bucketWouldLocks = []byte("identity_wouldlocks")
)

// boltStore is the bbolt backend: three buckets on the node's database.
type boltStore struct {
	db         *bolt.DB
	wouldCount atomic.Int64
}

func newBoltStore(db *bolt.DB) (*boltStore, error) {
	s := &boltStore{db: db}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLocks, bucketWindows, bucketWouldLocks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		s.wouldCount.Store(int64(tx.Bucket(bucketWouldLocks).Stats().KeyN))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity: creating buckets: %w", err)
	}
	return s, nil
}

func decodeRecord(key string, v []byte) (*record, error) {
	r := &record{}
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("identity: decoding lock record %q: %w", key, err)
	}
	return r, nil
}

func (s *boltStore) getRecord(ctx context.Context, key string) (*record, error) {
	var r *record
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLocks).Get([]byte(key))
		if v == nil {
			return nil
		}
		var err error
		r, err = decodeRecord(key, v)
		return err
	})
	return r, err
}

func (s *boltStore) updateRecords(ctx context.Context, keys []string, fn func(string, *record) (*record, error)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLocks)
		for _, key := range keys {
			var r *record
			if v := b.Get([]byte(key)); v != nil {
				var err error
				if r, err = decodeRecord(key, v); err != nil {
					return err
				}
			}
			put, err := fn(key, r)
			if err != nil {
				return err
			}
			if put == nil {
				continue
			}
			v, err := json.Marshal(put)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(key), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) scanRecords(ctx context.Context, prefix string, fn func(string, *record) (bool, error)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLocks).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			more, err := fn(string(k), r)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) loadWindows(keep func(string, []byte) bool) error {
	var stale [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWindows).ForEach(func(k, v []byte) error {
			if !keep(string(k), v) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWindows)
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dropping stale windows: %w", err)
	}
	return nil
}

func (s *boltStore) writeWindows(puts map[string][]byte, dels []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWindows)
		for k, v := range puts {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, k := range dels {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) addWouldLock(wl *WouldLock, max int) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWouldLocks)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		wl.ID = id
		v, err := json.Marshal(wl)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(id), v); err != nil {
			return err
		}
		over := s.wouldCount.Add(1) - int64(max)
		c := b.Cursor()
		for k, _ := c.First(); k != nil && over > 0; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			over--
			s.wouldCount.Add(-1)
		}
		return nil
	})
	if err != nil {
		_ = s.db.View(func(tx *bolt.Tx) error {
			s.wouldCount.Store(int64(tx.Bucket(bucketWouldLocks).Stats().KeyN))
			return nil
		})
	}
	return err
}

func seqKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

func (s *boltStore) scanWouldLocks(ctx context.Context, fn func(WouldLock) (bool, error)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketWouldLocks).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var wl WouldLock
			if err := json.Unmarshal(v, &wl); err != nil {
				return fmt.Errorf("identity: decoding would-lock %x: %w", k, err)
			}
			more, err := fn(wl)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}
