package feedback

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/quarantine"
)

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

func createBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(reportBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(indexBucket)
		return err
	})
}

// prune removes the reports received before cutoff with their index
// entries, in batches so that no write transaction runs long.
func (in *Intake) prune(cutoff time.Time) (int, error) {
	const batch = 500
	total := 0
	for {
		n, more := 0, false
		err := in.db.Update(func(tx *bolt.Tx) error {
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
				if len(old) == batch {
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
		if err != nil {
			return total, fmt.Errorf("pruning feedback: %w", err)
		}
		total += n
		in.m.pruned.Add(float64(n))
		if !more {
			return total, nil
		}
	}
}

// List returns stored reports, newest first: at most limit (1 to 1000),
// older than the id before ("" for the newest), only counted or only not
// counted ones when counted is non-nil. next is the id to pass as before
// for the next page, "" at the end.
func (in *Intake) List(limit int, before string, counted *bool) (out []Result, next string, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	err = in.db.View(func(tx *bolt.Tx) error {
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
