package quarantine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

func newPGStore(t *testing.T, pool *pgxpool.Pool, opts Options) *Store {
	t.Helper()
	s, err := NewPostgres(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TestPostgresQuarantineAlsoAtomic: the caller's write (the ARF report)
// is in the PostgreSQL transaction of the quarantined record: when it
// fails nothing is kept, when it succeeds all is.
func TestPostgresQuarantineAlsoAtomic(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE test_also (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	s := newPGStore(t, pool, Options{Node: "node-a"})
	at := time.Now().Add(-time.Hour)
	boom := errors.New("report store failed")
	failing := sampleRecord(at, StatusQuarantined, VerdictSpam)
	err := s.QuarantineAlso(ctx, failing, []byte(sampleRaw), Also{PG: func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO test_also VALUES ($1)`, failing.ID); err != nil {
			return err
		}
		return boom
	}})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the also error", err)
	}
	if _, err := s.Get(failing.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("record of the failed quarantine: got %v, want ErrNotFound", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM quarantine_content) + (SELECT count(*) FROM test_also)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("content and also rows after a failed quarantine: %d, %v", n, err)
	}
	if err := s.Writable(); err != nil {
		t.Errorf("a failing also is not a database failure: Writable = %v", err)
	}
	// A bbolt-only Also is refused rather than silently dropped.
	boltOnly := sampleRecord(at.Add(time.Second), StatusQuarantined, VerdictSpam)
	if err := s.QuarantineWith(ctx, boltOnly, []byte(sampleRaw), func(*bbolt.Tx) error { return nil }); err == nil {
		t.Errorf("an Also without a PostgreSQL function was accepted")
	}
	if _, err := s.Get(boltOnly.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("record of the refused quarantine: %v", err)
	}
	if err := s.QuarantineWith(ctx, boltOnly, []byte(sampleRaw), nil); err != nil {
		t.Errorf("no also: %v", err)
	}

	ok := sampleRecord(at.Add(2*time.Second), StatusQuarantined, VerdictSpam)
	err = s.QuarantineAlso(ctx, ok, []byte(sampleRaw), Also{PG: func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO test_also VALUES ($1)`, ok.ID)
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := s.Raw(ok.ID, Actor{}); err != nil || string(raw) != sampleRaw {
		t.Errorf("quarantined: %q, %v", raw, err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM test_also WHERE id = $1`, ok.ID).Scan(&n); err != nil || n != 1 {
		t.Errorf("the also write: %d rows, %v", n, err)
	}
}

// TestPostgresNodesShareTheLog: two stores on one database (two nodes)
// see each other's records, quarantined content and changes; each record
// names its node.
func TestPostgresNodesShareTheLog(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	fd := &fakeDeliver{}
	a := newPGStore(t, pool, Options{Node: "node-a"})
	c := newPGStore(t, pool, Options{Node: "node-c", Deliver: fd.Deliver})
	at := time.Now().Add(-time.Minute)
	q := sampleRecord(at, StatusQuarantined, VerdictSpam)
	if err := a.Quarantine(ctx, q, []byte(sampleRaw)); err != nil {
		t.Fatal(err)
	}
	acc := sampleRecord(at.Add(time.Second), StatusAccepted, VerdictClean)
	if err := c.AppendWait(ctx, acc); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, c} {
		p, err := s.Search(Query{Domain: q.Domain})
		if err != nil || len(p.Records) != 2 {
			t.Fatalf("search: %d records, %v; want both nodes' 2", len(p.Records), err)
		}
	}
	v, err := c.Show(q.ID, Actor{})
	if err != nil || v.Record.ID != q.ID {
		t.Fatalf("show on node c: %v", err)
	}
	if _, err := c.Release(ctx, q.ID, Actor{Name: "admin"}); err != nil || fd.count() != 1 {
		t.Fatalf("release on node c: %v, %d deliveries", err, fd.count())
	}
	if r, err := a.Get(q.ID); err != nil || !r.Quarantine.Released() {
		t.Errorf("node a sees the release: %+v, %v", r, err)
	}
	if err := a.Delete(ctx, q.ID, Actor{Name: "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Raw(q.ID, Actor{}); !errors.Is(err, ErrGone) {
		t.Errorf("raw after delete on the other node: %v, want ErrGone", err)
	}
	rows, err := pool.Query(ctx, `SELECT id, node FROM quarantine_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, Node string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Node != "node-a" || nodes[1].Node != "node-c" {
		t.Errorf("nodes of the records: %+v", nodes)
	}
}

// TestPostgresSweepDropsDays: retention on PostgreSQL drops whole day
// partitions of the log and of the content, marks the records whose
// content went expired, and leaves younger days alone.
func TestPostgresSweepDropsDays(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	day := 24 * time.Hour
	now := time.Date(2026, 4, 10, 10, 30, 0, 0, time.UTC)
	s := newPGStore(t, pool, Options{LogRetention: 30 * day, QuarantineRetention: 14 * day, Now: func() time.Time { return now }})
	old := sampleRecord(now.Add(-40*day), StatusAccepted, VerdictClean)            // its day is past the log retention
	edge := sampleRecord(now.Add(-30*day+time.Hour), StatusAccepted, VerdictClean) // its day is not wholly past it
	qOld := sampleRecord(now.Add(-20*day), StatusQuarantined, VerdictSpam)         // content past retention
	qNew := sampleRecord(now.Add(-2*day), StatusQuarantined, VerdictSpam)
	// Another node wrote the oldest record: it believes its day's
	// partition exists.
	other := newPGStore(t, pool, Options{Node: "node-b", Now: func() time.Time { return now }})
	if err := other.AppendWait(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendWait(ctx, edge); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{qOld, qNew} {
		if err := s.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Sweep(now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1 || res.Contents != 1 {
		t.Errorf("sweep: %+v, want 1 record and 1 content", res)
	}
	if _, err := s.Get(old.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("record of a dropped day: %v", err)
	}
	if _, err := s.Get(edge.ID); err != nil {
		t.Errorf("record of the edge day: %v", err)
	}
	r, err := s.Get(qOld.ID)
	if err != nil || !r.Quarantine.Expired {
		t.Errorf("quarantined record past the content retention: %+v, %v; want it kept and expired", r, err)
	}
	if _, err := s.Raw(qOld.ID, Actor{}); !errors.Is(err, ErrGone) {
		t.Errorf("its content: %v, want ErrGone", err)
	}
	if _, err := s.Raw(qNew.ID, Actor{}); err != nil {
		t.Errorf("young content: %v", err)
	}
	var parts int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'quarantine_log' AND i.inhrelid::regclass::text = $1`, partitionName("quarantine_log", dayNumber(old.Time))).Scan(&parts); err != nil || parts != 0 {
		t.Errorf("the old day's partition: %d, %v; want it dropped", parts, err)
	}
	// A record arriving for a dropped day, on the node that did not drop
	// it, gets its partition back.
	late := sampleRecord(now.Add(-40*day+time.Minute), StatusAccepted, VerdictClean)
	if err := other.AppendWait(ctx, late); err != nil {
		t.Errorf("a record for a dropped day: %v", err)
	}
}

// TestPostgresReleaseOnceAcrossNodes: two nodes releasing one message at
// the same moment deliver it once; the other finds it released.
func TestPostgresReleaseOnceAcrossNodes(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	fd := &fakeDeliver{gate: make(chan struct{})}
	var entered atomic.Int32
	deliver := func(ctx context.Context, from string, rcpts []string, raw []byte) error {
		entered.Add(1)
		return fd.Deliver(ctx, from, rcpts, raw)
	}
	a := newPGStore(t, pool, Options{Node: "node-a", Deliver: deliver})
	b := newPGStore(t, pool, Options{Node: "node-b", Deliver: deliver})
	r := sampleRecord(time.Now().Add(-time.Minute), StatusQuarantined, VerdictSpam)
	if err := a.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res ReleaseResult
		err error
	}
	out := make(chan result, 2)
	for _, s := range []*Store{a, b} {
		go func() {
			res, err := s.Release(ctx, r.ID, Actor{Name: s.opts.Node})
			out <- result{res, err}
		}()
	}
	// Both releases are under way: one delivering and the other waiting
	// for the lock (or, without it, delivering too).
	for {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if entered.Load() == 2 || (entered.Load() == 1 && waiting == 1) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(fd.gate)
	already := 0
	for range 2 {
		x := <-out
		if x.err != nil {
			t.Fatal(x.err)
		}
		if x.res.Already {
			already++
		}
	}
	if fd.count() != 1 || already != 1 {
		t.Errorf("deliveries %d, already-released answers %d; want 1 and 1", fd.count(), already)
	}
}
