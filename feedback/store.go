package feedback

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/quarantine"
)

// store keeps the accepted reports and the de-duplication index.
// boltStore keeps them in this node's bbolt file; pgStore in the tables a
// fleet of nodes shares, so that a report received by one node is known
// as a duplicate on the others (docs/config-arf.md, "Several nodes").
type store interface {
	// lookup returns the ids of the reports holding the index entries
	// digest and key ("" for none, and for an empty key).
	lookup(ctx context.Context, digest, key string) (digestOf, keyOf string, err error)
	// put stores res (its ID set) and raw with the index entries res.Digest
	// and, when res.Counted, res.DedupKey, in one transaction. When
	// another report already holds res.Digest (a copy stored meanwhile,
	// by another node) it stores nothing and returns that report's id.
	// When res counts but another report already holds res.DedupKey, res
	// is stored as a not-counted duplicate of that one, and res says so.
	put(ctx context.Context, res *Result, raw []byte) (digestOf string, err error)
	// prune removes up to max reports received before cutoff, with their
	// index entries, and says whether more remain.
	prune(ctx context.Context, cutoff time.Time, max int) (n int, more bool, err error)
	// list is Intake.List.
	list(ctx context.Context, limit int, before string, counted *bool) ([]Result, string, error)
}

// markDuplicate makes res a stored, not-counted second complaint about
// what the report of id already counted.
func markDuplicate(res *Result, id string) {
	res.Counted, res.NotCounted, res.Duplicate, res.DuplicateOf = false, NotCountedDuplicate, true, id
}

// reportBucket keeps every accepted third-party feedback report, raw and
// with what intake made of it, under "<id>/raw" and "<id>/meta"; ids sort
// by arrival. indexBucket de-duplicates: "d/<sha256 of the raw report>"
// and "k/<reporter>\x00<transaction>" name the id of the report that holds
// them. Retention removes a report and its index entries together. The
// names predate this package; they stay for the data already on disk.
var (
	reportBucket = []byte("app_feedback")
	indexBucket  = []byte("app_feedback_index")
)

// boltStore is the intake's store in the buckets of this node's bbolt
// file.
type boltStore struct{ db *bolt.DB }

func newBoltStore(db *bolt.DB) (*boltStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(reportBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(indexBucket)
		return err
	})
	return &boltStore{db: db}, err
}

func (s *boltStore) lookup(_ context.Context, digest, key string) (digestOf, keyOf string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(indexBucket)
		digestOf = string(idx.Get([]byte(digest)))
		if key != "" {
			keyOf = string(idx.Get([]byte(key)))
		}
		return nil
	})
	return digestOf, keyOf, err
}

func (s *boltStore) put(_ context.Context, res *Result, raw []byte) (digestOf string, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(reportBucket), tx.Bucket(indexBucket)
		if id := idx.Get([]byte(res.Digest)); id != nil {
			digestOf = string(id)
			return nil
		}
		if res.Counted && res.DedupKey != "" {
			if id := idx.Get([]byte(res.DedupKey)); id != nil {
				markDuplicate(res, string(id))
			}
		}
		meta, err := json.Marshal(res)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(res.ID+"/meta"), meta); err != nil {
			return err
		}
		if err := b.Put([]byte(res.ID+"/raw"), raw); err != nil {
			return err
		}
		if err := idx.Put([]byte(res.Digest), []byte(res.ID)); err != nil {
			return err
		}
		if res.Counted && res.DedupKey != "" {
			return idx.Put([]byte(res.DedupKey), []byte(res.ID))
		}
		return nil
	})
	return digestOf, err
}

func (s *boltStore) prune(_ context.Context, cutoff time.Time, max int) (n int, more bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(reportBucket), tx.Bucket(indexBucket)
		var old []string
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id, kind, ok := strings.Cut(string(k), "/")
			if !ok || kind != "meta" {
				continue
			}
			// The id holds the arrival time (reports stored before
			// Received was recorded have only that).
			at, err := quarantine.IDTime(id)
			if err != nil {
				continue
			}
			if !at.Before(cutoff) {
				// Ids sort by arrival: the rest is newer.
				break
			}
			if len(old) == max {
				more = true
				break
			}
			old = append(old, id)
			var r Result
			if json.Unmarshal(v, &r) != nil {
				continue
			}
			for _, ik := range []string{r.Digest, r.DedupKey} {
				if ik == "" {
					continue
				}
				if got := idx.Get([]byte(ik)); string(got) == id {
					if err := idx.Delete([]byte(ik)); err != nil {
						return err
					}
				}
			}
		}
		for _, id := range old {
			if err := b.Delete([]byte(id + "/meta")); err != nil {
				return err
			}
			if err := b.Delete([]byte(id + "/raw")); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, more, err
}

func (s *boltStore) list(_ context.Context, limit int, before string, counted *bool) (out []Result, next string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(reportBucket).Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			if k, _ = c.Seek([]byte(before + "/")); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			id, kind, ok := strings.Cut(string(k), "/")
			if !ok || kind != "meta" {
				continue
			}
			var r Result
			if json.Unmarshal(v, &r) != nil {
				continue
			}
			if counted != nil && r.Counted != *counted {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			r.ID = id
			out = append(out, r)
		}
		return nil
	})
	return out, next, err
}
