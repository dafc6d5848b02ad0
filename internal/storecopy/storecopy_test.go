package storecopy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// testKinds copy the buckets "a" (every key) and "b" (keys ending in
// "/rec"; values "bad" are skipped) into the table rows, keyed by kind
// and key, counting each insert attempt in the table inserts.
func testKinds() []Kind {
	copyFn := func(kind string) func(ctx context.Context, e Env, it Item) (Outcome, error) {
		return func(ctx context.Context, e Env, it Item) (Outcome, error) {
			if string(it.Value) == "bad" {
				return Skip("bad value"), nil
			}
			if _, err := e.Dst.Exec(ctx, `INSERT INTO inserts (kind, key) VALUES ($1, $2)`, kind, string(it.Key)); err != nil {
				return Outcome{}, err
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO rows (kind, key, node) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, kind, string(it.Key), e.Node)
			if err != nil {
				return Outcome{}, err
			}
			return InsertOutcome(tag), nil
		}
	}
	return []Kind{
		{Name: "a", Bucket: "a", Copy: copyFn("a")},
		{Name: "missing", Bucket: "not there", Copy: copyFn("missing")},
		// b in batches.
		{Name: "b", Bucket: "b", Record: func(k []byte) bool { return strings.HasSuffix(string(k), "/rec") },
			CopyBatch: func(ctx context.Context, e Env, batch []Item) ([]Outcome, error) {
				var outs []Outcome
				for _, it := range batch {
					o, err := copyFn("b")(ctx, e, it)
					if err != nil {
						return nil, err
					}
					outs = append(outs, o)
				}
				return outs, nil
			}},
	}
}

// testSource writes bucket a with na keys and b with nb records (one in
// five "bad"), each beside a key that is not a record.
func testSource(t *testing.T, na, nb int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		a, _ := tx.CreateBucket([]byte("a"))
		b, _ := tx.CreateBucket([]byte("b"))
		for i := range na {
			a.Put(fmt.Appendf(nil, "%05d", i), []byte("v"))
		}
		for i := range nb {
			v := "v"
			if i%5 == 4 {
				v = "bad"
			}
			b.Put(fmt.Appendf(nil, "%05d/rec", i), []byte(v))
			b.Put(fmt.Appendf(nil, "%05d/raw", i), []byte("raw"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: pgtest.NewDatabase(t), MaxConns: 4, NodeName: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pgdb.Migrate(ctx, pool, "n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE rows (kind text, key text, node text, PRIMARY KEY (kind, key));
		CREATE TABLE inserts (kind text, key text)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// TestRunResumesAfterEveryRecord interrupts a copy after each record in
// turn, then runs it to the end: whatever the point, every record is
// written once, each skipped one counted once, and the counts of the
// runs add up; records of batches that did not commit are redone, never
// those of batches that did.
func TestRunResumesAfterEveryRecord(t *testing.T) {
	pool := testPool(t)
	src := testSource(t, 7, 10)
	db, err := Open(src, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const total = 7 + 10
	for stop := 1; stop <= total; stop++ {
		if _, err := pool.Exec(ctx, `TRUNCATE rows, inserts, store_copy_progress`); err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		n := 0
		first, err := Run(runCtx, db, pool, testKinds(), Options{Source: src, Node: "n1", Batch: 3, Step: func(string, Outcome) {
			if n++; n == stop {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at %d: %v, want context.Canceled", stop, err)
		}
		rep, err := Run(ctx, db, pool, testKinds(), Options{Source: src, Node: "n1", Batch: 3})
		if err != nil {
			t.Fatalf("stop at %d, second run: %v", stop, err)
		}
		var rows, inserts, dupInserts int
		pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rows), (SELECT count(*) FROM inserts),
			(SELECT count(*) FROM (SELECT kind, key FROM inserts GROUP BY kind, key HAVING count(*) > 1) d)`).Scan(&rows, &inserts, &dupInserts)
		if rows != 7+8 || inserts != 7+8 || dupInserts != 0 {
			t.Errorf("stop at %d: %d rows, %d committed inserts (%d keys twice); want 15, 15, 0", stop, rows, inserts, dupInserts)
		}
		for i, c := range rep.Kinds {
			f := first.Kinds[i]
			if c.Earlier != f.Copied+f.Present+f.Skipped {
				t.Errorf("stop at %d: %s: %d earlier, the first run committed %d", stop, c.Kind, c.Earlier, f.Copied+f.Present+f.Skipped)
			}
			if got := f.Copied + c.Copied; got != map[string]int64{"a": 7, "b": 8, "missing": 0}[c.Kind] {
				t.Errorf("stop at %d: %s copied %d in all", stop, c.Kind, got)
			}
			if got := f.Skipped + c.Skipped; c.Kind == "b" && (got != 2 || f.Reasons["bad value"]+c.Reasons["bad value"] != 2) {
				t.Errorf("stop at %d: b skipped %d (%v %v), want 2 bad values", stop, got, f.Reasons, c.Reasons)
			}
			if !c.Done || c.Present != 0 || c.Total != map[string]int{"a": 7, "b": 10, "missing": 0}[c.Kind] {
				t.Errorf("stop at %d: %+v", stop, c)
			}
		}
	}
}

func TestRunDryRunAndBusy(t *testing.T) {
	pool := testPool(t)
	src := testSource(t, 4, 5)
	db, err := Open(src, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rep, err := Run(ctx, db, pool, testKinds(), Options{Source: src, Node: "n1", DryRun: true})
	if err != nil || rep.Kinds[0].Remaining() != 4 || rep.Kinds[2].Remaining() != 5 {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	var rows int
	pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM rows) + (SELECT count(*) FROM store_copy_progress)`).Scan(&rows)
	if rows != 0 {
		t.Errorf("a dry run wrote %d rows", rows)
	}

	// A copy holds the database: another one is refused meanwhile.
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := Run(ctx, db, pool, testKinds(), Options{Source: src, Node: "n1", Batch: 1, Step: func(string, Outcome) {
			select {
			case <-held:
			default:
				close(held)
				<-release
			}
		}})
		done <- err
	}()
	<-held
	_, err = Run(ctx, db, pool, testKinds(), Options{Source: src, Node: "n1"})
	close(release)
	if !errors.Is(err, ErrBusy) {
		t.Errorf("a second copy at once: %v, want ErrBusy", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	src := testSource(t, 1, 0)
	w, err := bolt.Open(src, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(src, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("a file open for writing: %v, want ErrLocked", err)
	}
	w.Close()
	db, err := Open(src, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(filepath.Join(t.TempDir(), "none.db"), time.Second); err == nil {
		t.Error("a missing file opened")
	}
}

// TestRunCopiesRecordsAddedSince: a kind an earlier run finished goes on
// after its last key, so records the node added since are copied, and
// only those.
func TestRunCopiesRecordsAddedSince(t *testing.T) {
	pool := testPool(t)
	src := testSource(t, 3, 0)
	ctx := context.Background()
	run := func() Report {
		t.Helper()
		db, err := Open(src, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rep, err := Run(ctx, db, pool, testKinds(), Options{Source: src, Node: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); rep.Kinds[0].Copied != 3 || !rep.Kinds[0].Done {
		t.Fatalf("first copy: %+v", rep.Kinds[0])
	}
	w, err := bolt.Open(src, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Update(func(tx *bolt.Tx) error {
		tx.Bucket([]byte("a")).Put([]byte("00003"), []byte("v"))
		return tx.Bucket([]byte("a")).Put([]byte("00004"), []byte("v"))
	})
	w.Close()
	if c := run().Kinds[0]; c.Copied != 2 || c.Present != 0 || c.Earlier != 3 || c.Total != 5 || !c.Done {
		t.Errorf("copy after the node added 2 records: %+v, want 2 copied after 3 earlier", c)
	}
}
