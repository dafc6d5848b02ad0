// Package storecopy copies a node's bbolt database into the PostgreSQL
// database of a fleet (outguard store copy, docs/config-store.md,
// "Growing from one node").
//
// # Overview
//
// Each kind of record is a Kind: one bbolt bucket walked in key order,
// and a Copy function that writes one record of it into PostgreSQL with
// the owning package's own encoding. The packages that own the buckets
// declare their kinds (quarantine.CopyLog, identity.CopyLocks, ...); the
// wiring lists them in the order they are copied, so adding a kind is one
// entry in that table. Run walks the kinds in order, in batches: a batch
// is written in one PostgreSQL transaction together with its row in
// store_copy_progress (the last bbolt key done and the counts), so a copy
// that is killed at any point, run again, starts after the last batch it
// committed. Copy functions insert only what is absent (keyed by each
// record's natural key), so a record already in the database (copied from
// another file, or by a run whose progress row was lost) is counted as
// present, never written twice.
//
// # Caveats
//
// The bbolt file is opened read-only and must not be open by a running
// outguard: bbolt's file lock makes Open wait, and Open gives up after
// its timeout (ErrLocked). Copying from a live node is not supported: its
// records would change under the copy.
package storecopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked is returned by Open when another process (a running outguard)
// holds the bbolt file.
var ErrLocked = errors.New("the database file is open by another process (a running outguard?)")

// ErrBusy is returned by Run when another copy into the same database is
// running.
var ErrBusy = errors.New("another store copy into this database is running")

// Open opens the bbolt file at path read-only, waiting up to timeout for
// the file lock. A missing file is an error (bbolt would create one).
func Open(path string, timeout time.Duration) (*bolt.DB, error) {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// State is what became of one record.
type State int

const (
	// Copied: the record was written.
	Copied State = iota + 1
	// Present: a record of the same natural key was already there;
	// nothing was written.
	Present
	// Skipped: the record cannot be copied (Outcome.Reason says why).
	Skipped
)

// Outcome is what Copy did with one record.
type Outcome struct {
	State State
	// Reason says why a record was skipped; records are counted by
	// reason, so it names a class ("undecodable record"), not a record.
	Reason string
}

// Skip returns the outcome of a record skipped for reason.
func Skip(reason string) Outcome { return Outcome{State: Skipped, Reason: reason} }

// InsertOutcome is Copied when an INSERT ... ON CONFLICT DO NOTHING wrote
// its row, else Present.
func InsertOutcome(tag pgconn.CommandTag) Outcome {
	if tag.RowsAffected() > 0 {
		return Outcome{State: Copied}
	}
	return Outcome{State: Present}
}

// Env is what a Copy function works with.
type Env struct {
	// Src is the read transaction on the bbolt file, for the buckets
	// read beside the one walked (a report's raw text, a message's log
	// record).
	Src *bolt.Tx
	// Dst is the PostgreSQL transaction of the batch.
	Dst pgx.Tx
	// Node is the node_name the copied records are attributed to.
	Node string
}

// Item is one key and value of the walked bucket, valid for the batch.
type Item struct{ Key, Value []byte }

// Kind is one kind of record copied.
type Kind struct {
	// Name names the kind in the report and in store_copy_progress
	// ("quarantine.log"); it must not change between releases.
	Name string
	// Bucket is the bbolt bucket walked, in key order. A missing bucket
	// (an older database) holds no records.
	Bucket string
	// Record reports whether a key of Bucket is a record of its own;
	// nil means every key. Others are passed over (read by Copy of
	// another key), neither counted nor copied.
	Record func(key []byte) bool
	// Prepare, when set, runs before each batch, outside its
	// transaction (creating partitions the batch needs).
	Prepare func(ctx context.Context, pool *pgxpool.Pool, batch []Item) error
	// Copy writes one record in e.Dst, inserting only what is absent.
	// An error aborts the batch and the run.
	Copy func(ctx context.Context, e Env, it Item) (Outcome, error)
	// CopyBatch, used instead of Copy when set, writes a whole batch
	// (one multi-row statement rather than a round trip per record) and
	// returns the outcome of each item, in order.
	CopyBatch func(ctx context.Context, e Env, batch []Item) ([]Outcome, error)
}

// Count is what happened to the records of one kind.
type Count struct {
	Kind string `json:"kind"`
	// Total is the number of records in the bbolt file.
	Total int `json:"total"`
	// Earlier counts the records done by earlier runs (skipped by this
	// one through its progress row).
	Earlier int64 `json:"earlier"`
	// Copied, Present and Skipped count this run's records.
	Copied  int64 `json:"copied"`
	Present int64 `json:"present"`
	Skipped int64 `json:"skipped"`
	// Reasons counts the skipped records by reason.
	Reasons map[string]int64 `json:"reasons,omitempty"`
	// Done is set once every record of the kind went through (now or
	// in an earlier run).
	Done bool `json:"done"`
}

// Remaining returns how many records are left to go through: those the
// file holds beyond what earlier runs and this one went through (records
// the node added after a copy, when it ran again on bbolt, included).
func (c Count) Remaining() int {
	return max(0, c.Total-int(c.Earlier)-int(c.Copied+c.Present+c.Skipped))
}

// Options are Run's settings.
type Options struct {
	// Source names the copied file in store_copy_progress; Run makes it
	// absolute. Required.
	Source string
	// Node is the node_name records are attributed to. Required.
	Node string
	// Batch is the number of records per transaction; 0 means 500.
	Batch int
	// DryRun counts the records, and those an earlier run did, but
	// writes nothing (the progress table may be missing then).
	DryRun bool
	// Begin, when set, is called once with every kind's count before
	// any record is copied (the records to go through, for a progress
	// bar).
	Begin func(counts []Count)
	// Step, when set, is called after each record with its kind and
	// outcome (the batch is not committed yet).
	Step func(kind string, o Outcome)
}

// Report is what Run did, one Count per kind in the order copied.
type Report struct {
	Source string  `json:"source"`
	DryRun bool    `json:"dry_run"`
	Kinds  []Count `json:"kinds"`
}

// progressLock is the key of the session advisory lock a copy holds, so
// that two copies into one database do not run at once ("storecopy").
const progressLock int64 = 0x73746f7265636f70

// Run copies the kinds from db into pool, resuming after what earlier
// runs committed. The schema (internal/pgdb's migrations) must be
// applied, except for a dry run. Each kind goes on after the last key an
// earlier run committed, also when that run finished it: records added
// to the file since (keys that sort after, as new log ids do) are copied
// too. On error the report holds the counts of the batches committed.
func Run(ctx context.Context, db *bolt.DB, pool *pgxpool.Pool, kinds []Kind, opts Options) (Report, error) {
	if opts.Source == "" || opts.Node == "" {
		return Report{}, errors.New("storecopy: Options.Source and Options.Node are required")
	}
	if abs, err := filepath.Abs(opts.Source); err == nil {
		opts.Source = abs
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	rep := Report{Source: opts.Source, DryRun: opts.DryRun}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("storecopy: %w", err)
	}
	defer conn.Release()
	if !opts.DryRun {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", progressLock).Scan(&got); err != nil {
			return rep, fmt.Errorf("storecopy: %w", err)
		}
		if !got {
			return rep, ErrBusy
		}
		defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", progressLock)
	}
	cursors := make([][]byte, len(kinds))
	for i, k := range kinds {
		c, cursor, err := start(ctx, conn, db, k, opts)
		if err != nil {
			return rep, err
		}
		rep.Kinds = append(rep.Kinds, c)
		cursors[i] = cursor
	}
	if opts.Begin != nil {
		opts.Begin(append([]Count(nil), rep.Kinds...))
	}
	if opts.DryRun {
		return rep, nil
	}
	for i, k := range kinds {
		if err := copyKind(ctx, db, pool, k, cursors[i], &rep.Kinds[i], opts); err != nil {
			return rep, fmt.Errorf("storecopy: %s: %w", k.Name, err)
		}
	}
	return rep, nil
}

// start counts the records of k and reads its progress row.
func start(ctx context.Context, conn *pgxpool.Conn, db *bolt.DB, k Kind, opts Options) (Count, []byte, error) {
	c := Count{Kind: k.Name}
	var cursor []byte
	var copied, present, skipped int64
	err := conn.QueryRow(ctx, `SELECT last_key, done, copied, present, skipped FROM store_copy_progress
		WHERE source = $1 AND kind = $2`, opts.Source, k.Name).Scan(&cursor, &c.Done, &copied, &present, &skipped)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case opts.DryRun && errors.As(err, &pe) && pe.Code == "42P01":
		// No progress table: the schema is not applied, nothing copied.
	case err != nil:
		return c, nil, fmt.Errorf("storecopy: reading progress: %w", err)
	}
	c.Earlier = copied + present + skipped
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(k.Bucket))
		if b == nil {
			return nil
		}
		if k.Record == nil {
			c.Total = b.Stats().KeyN
			return nil
		}
		return b.ForEach(func(key, _ []byte) error {
			if k.Record(key) {
				c.Total++
			}
			return nil
		})
	})
	if err != nil {
		return c, nil, fmt.Errorf("storecopy: counting %s: %w", k.Name, err)
	}
	return c, cursor, nil
}

// copyKind copies the records of k after cursor, one transaction per
// batch.
func copyKind(ctx context.Context, db *bolt.DB, pool *pgxpool.Pool, k Kind, cursor []byte, c *Count, opts Options) error {
	for {
		var last []byte
		var d Count
		err := db.View(func(src *bolt.Tx) error {
			var batch []Item
			if b := src.Bucket([]byte(k.Bucket)); b != nil {
				cur := b.Cursor()
				var key, val []byte
				if cursor == nil {
					key, val = cur.First()
				} else if key, val = cur.Seek(cursor); key != nil && bytes.Equal(key, cursor) {
					key, val = cur.Next()
				}
				for ; key != nil && len(batch) < opts.Batch; key, val = cur.Next() {
					last = bytes.Clone(key)
					if k.Record == nil || k.Record(key) {
						batch = append(batch, Item{Key: key, Value: val})
					}
				}
			}
			if k.Prepare != nil && len(batch) > 0 {
				if err := k.Prepare(ctx, pool, batch); err != nil {
					return err
				}
			}
			return pgx.BeginFunc(ctx, pool, func(dst pgx.Tx) error {
				d = Count{}
				outs, err := k.copyBatch(ctx, Env{Src: src, Dst: dst, Node: opts.Node}, batch)
				if err != nil {
					return err
				}
				for _, o := range outs {
					d.add(o)
					if opts.Step != nil {
						opts.Step(k.Name, o)
					}
				}
				pos := last
				if pos == nil {
					pos = cursor
				}
				d.Done = last == nil
				_, err = dst.Exec(ctx, `INSERT INTO store_copy_progress AS p (source, kind, last_key, done, copied, present, skipped, node, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
					ON CONFLICT (source, kind) DO UPDATE SET last_key = excluded.last_key, done = excluded.done,
						copied = p.copied + excluded.copied, present = p.present + excluded.present,
						skipped = p.skipped + excluded.skipped, node = excluded.node, updated_at = now()`,
					opts.Source, k.Name, pos, d.Done, d.Copied, d.Present, d.Skipped, opts.Node)
				return err
			})
		})
		if err != nil {
			return err
		}
		// Committed: the batch counts.
		c.Copied += d.Copied
		c.Present += d.Present
		c.Skipped += d.Skipped
		for r, n := range d.Reasons {
			if c.Reasons == nil {
				c.Reasons = map[string]int64{}
			}
			c.Reasons[r] += n
		}
		c.Done = d.Done
		if last == nil {
			return nil
		}
		cursor = last
	}
}

// copyBatch writes batch with CopyBatch, or Copy record by record.
func (k Kind) copyBatch(ctx context.Context, e Env, batch []Item) ([]Outcome, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	if k.CopyBatch != nil {
		outs, err := k.CopyBatch(ctx, e, batch)
		if err == nil && len(outs) != len(batch) {
			err = fmt.Errorf("%d outcomes for %d records", len(outs), len(batch))
		}
		return outs, err
	}
	outs := make([]Outcome, 0, len(batch))
	for _, it := range batch {
		o, err := k.Copy(ctx, e, it)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// add counts one outcome.
func (c *Count) add(o Outcome) {
	switch o.State {
	case Copied:
		c.Copied++
	case Present:
		c.Present++
	default:
		c.Skipped++
		if c.Reasons == nil {
			c.Reasons = map[string]int64{}
		}
		c.Reasons[o.Reason]++
	}
}

// SortedReasons returns the skip reasons of c, most frequent first.
func (c Count) SortedReasons() []string {
	out := make([]string, 0, len(c.Reasons))
	for r := range c.Reasons {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if c.Reasons[out[i]] != c.Reasons[out[j]] {
			return c.Reasons[out[i]] > c.Reasons[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
