package notify

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// store keeps the outbox items. boltStore keeps them in this node's bbolt
// file; pgStore in the table a fleet of nodes shares, where each item is
// leased to the node delivering it (docs/config-notify.md, "Several
// nodes").
type store interface {
	// count returns the number of items in the outbox.
	count(ctx context.Context) (int, error)
	// add stores items in one transaction, or none and ErrFull when the
	// outbox would then hold more than max.
	add(ctx context.Context, items []item, max int) error
	// expire removes the items created before cutoff, except those a
	// node holds a lease on at now, and returns them.
	expire(ctx context.Context, cutoff, now time.Time) ([]item, error)
	// claim returns the first item after the position after (0: from
	// the start), in the order items were added, that is due at now,
	// not leased to a node at now and of none of the channels in skip,
	// and leases it until now+lease; nil when there is none.
	claim(ctx context.Context, after int64, now time.Time, lease time.Duration, skip []string) (*claimed, error)
	// done removes a delivered item, unless its lease was taken over.
	done(ctx context.Context, c *claimed) error
	// release stores it (a failed attempt) and ends the lease, unless
	// the lease was taken over.
	release(ctx context.Context, c *claimed) error
	// nextByChannel returns, per channel, the earliest time one of its
	// items can next be attempted (its next attempt, or the end of a
	// lease on it when later).
	nextByChannel(ctx context.Context) (map[string]time.Time, error)
}

// claimed is an item leased to this node for one delivery attempt.
type claimed struct {
	// pos is the item's position in the outbox; token identifies the
	// lease (PostgreSQL only).
	pos   int64
	token string
	it    item
}

var bucketOutbox = []byte("notify_outbox")

// boltStore is the outbox in the notify_outbox bucket of this node's
// bbolt file, keyed by a big-endian sequence number. Only this node's
// delivery goroutine works it, so it takes no leases.
type boltStore struct {
	db  *bolt.DB
	log *slog.Logger
}

func newBoltStore(db *bolt.DB, log *slog.Logger) (*boltStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketOutbox)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("notify: creating bucket: %w", err)
	}
	return &boltStore{db: db, log: log}, nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func (s *boltStore) count(context.Context) (int, error) {
	var k int
	err := s.db.View(func(tx *bolt.Tx) error {
		k = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return k, err
}

func (s *boltStore) add(_ context.Context, items []item, max int) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b.Stats().KeyN+len(items) > max {
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
}

// decode reads a stored item; an unreadable one is logged and reported
// as not ok, to be removed.
func (s *boltStore) decode(k, v []byte) (item, bool) {
	var it item
	if err := json.Unmarshal(v, &it); err != nil {
		s.log.Error("notify: dropping unreadable outbox item", "key", fmt.Sprintf("%x", k), "err", err)
		return it, false
	}
	return it, true
}

func (s *boltStore) expire(_ context.Context, cutoff, _ time.Time) ([]item, error) {
	var out []item
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil; {
			it, ok := s.decode(k, v)
			if ok && !it.Created.Before(cutoff) {
				k, v = c.Next()
				continue
			}
			key := slices.Clone(k)
			if err := c.Delete(); err != nil {
				return err
			}
			if ok {
				out = append(out, it)
			}
			// After Delete, Next may skip an item: seek instead.
			k, v = c.Seek(key)
		}
		return nil
	})
	return out, err
}

func (s *boltStore) claim(_ context.Context, after int64, now time.Time, _ time.Duration, skip []string) (*claimed, error) {
	var out *claimed
	var corrupt [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(uint64(after) + 1)); k != nil; k, v = c.Next() {
			it, ok := s.decode(k, v)
			if !ok {
				corrupt = append(corrupt, slices.Clone(k))
				continue
			}
			if it.NextAttempt.After(now) || slices.Contains(skip, it.Channel) {
				continue
			}
			out = &claimed{pos: int64(binary.BigEndian.Uint64(k)), it: it}
			return nil
		}
		return nil
	})
	if err != nil || len(corrupt) == 0 {
		return out, err
	}
	return out, s.db.Update(func(tx *bolt.Tx) error {
		for _, k := range corrupt {
			if err := tx.Bucket(bucketOutbox).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) done(_ context.Context, c *claimed) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(seqKey(uint64(c.pos))) })
}

func (s *boltStore) release(_ context.Context, c *claimed) error {
	v, err := json.Marshal(c.it)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Put(seqKey(uint64(c.pos)), v) })
}

func (s *boltStore) nextByChannel(context.Context) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			var it item
			if json.Unmarshal(v, &it) != nil {
				return nil // removed by the next claim
			}
			if t, ok := out[it.Channel]; !ok || it.NextAttempt.Before(t) {
				out[it.Channel] = it.NextAttempt
			}
			return nil
		})
	})
	return out, err
}
