package quarantine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// backend is where a Store keeps the log, the quarantined content and the
// rollups: bbolt (boltBackend, one node) or PostgreSQL (pgBackend, shared
// by a fleet). The Store does everything that does not depend on it:
// validation, encoding, the group committer, checks of scopes and actors,
// the planning of reports.
type backend interface {
	// commit writes one committer round atomically: new records with
	// their content, rollups and Also work, and updates. errs[i] receives
	// the refusal of batch[i] alone; a returned error fails the round.
	commit(batch []*op, errs []error, delta *qDelta) error
	// takes reports whether also has the function this backend runs.
	takes(also Also) bool
	get(id string) (*Record, error)
	// newest returns the newest record indexed under kind/value that
	// match accepts.
	newest(kind byte, value string, match func(*Record) bool) (*Record, error)
	// load returns a record and its stored content, nil when none.
	load(id string) (*Record, []byte, error)
	search(q *Query, domain, lo, hi string, m *matcher, limit int) (Page, error)
	sumRollups(spans []rollupSpan, classes []Class, g GroupBy, scope string) (map[string]int64, error)
	series(gran byte, unit int64, b0, b1 uint32, group GroupBy, key string) ([]SeriesPoint, error)
	sweep(now time.Time, res *SweepResult) error
	// counters returns the quarantined messages and their stored bytes.
	counters() (msgs, bytes int64, err error)
	// lockRelease makes the other nodes' releases of id wait until
	// unlock; a Store already serialises its own.
	lockRelease(ctx context.Context, id string) (unlock func(), err error)
}

// boltBackend keeps the store in the node's bbolt database.
type boltBackend struct {
	db *bbolt.DB
	s  *Store
}

func (b *boltBackend) takes(also Also) bool { return also.Bolt != nil }

// lockRelease has nothing to do: one process owns a bbolt file.
func (b *boltBackend) lockRelease(context.Context, string) (func(), error) { return func() {}, nil }

func (b *boltBackend) get(id string) (*Record, error) {
	var rec *Record
	err := b.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getRecord(tx, id)
		return err
	})
	return rec, err
}

func (b *boltBackend) load(id string) (*Record, []byte, error) {
	var rec *Record
	var content []byte
	err := b.db.View(func(tx *bbolt.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		rec = r
		if c := tx.Bucket(bucketMsg).Get(idKey(id)); c != nil {
			content = bytes.Clone(c)
		}
		return nil
	})
	return rec, content, err
}

func (b *boltBackend) counters() (msgs, n int64, err error) {
	err = b.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("buckets missing in a read-only database")
		}
		msgs, n = getCounter(meta, metaQMessages), getCounter(meta, metaQBytes)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("quarantine: %w", err)
	}
	return msgs, n, nil
}
