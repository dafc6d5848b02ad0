package quarantine

import (
	"context"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// TestPostgresFrozenConnectionSpools: when the database stops answering
// without closing anything (a black-holed network, a frozen primary), a
// record of relayed mail does not wait for TCP to notice: its round gives
// up after pgdb.RoundTimeout, the record goes to the local spool, and it
// is shipped once the database answers again.
func TestPostgresFrozenConnectionSpools(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	proxy, via := pgtest.NewProxy(t, dsn)
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: via, MaxConns: 4, StatementTimeout: 200 * time.Millisecond, NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db, _ := openDB(t, true)
	s := newPGStore(t, pool, Options{Node: "node-a", Spool: db, ProbeInterval: 50 * time.Millisecond})
	at := time.Now().Add(-time.Hour)
	before := sampleRecord(at, StatusAccepted, VerdictClean)
	if err := s.AppendWait(ctx, before); err != nil {
		t.Fatal(err)
	}

	proxy.Freeze()
	// A liveness guard, not a measure: without a client-side deadline
	// the write waits on the frozen connection until this ends.
	guard, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	during := sampleRecord(at.Add(time.Second), StatusAccepted, VerdictClean)
	if err := s.AppendCoalesced(guard, during); err != nil {
		t.Fatalf("record while the database is frozen: %v, want it spooled", err)
	}
	if st := s.State(); st != StateSpooling {
		t.Errorf("state: %v, want spooling", st)
	}

	proxy.Thaw()
	for s.SpoolRecords() > 0 || s.State() != StateOK {
		if guard.Err() != nil {
			t.Fatalf("after the thaw: %d records still spooled, state %v", s.SpoolRecords(), s.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	direct := pgtest.OpenPool(t, dsn, false)
	for _, r := range []*Record{before, during} {
		var n int
		if err := direct.QueryRow(ctx, `SELECT count(*) FROM quarantine_log WHERE id = $1`, r.ID).Scan(&n); err != nil || n != 1 {
			t.Errorf("record %s in the log %d times (%v), want once", r.ID, n, err)
		}
	}
}
