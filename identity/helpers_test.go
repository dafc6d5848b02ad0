package identity

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testBackend is one backend of the conformance suite: the storage tests
// run unchanged against each (TestConformance).
type testBackend struct {
	name string
	// fresh makes an empty store and returns its handle: a bbolt file's
	// path, a PostgreSQL database's DSN.
	fresh func(t testing.TB) string
	// open opens the store at handle; it is closed at cleanup.
	open func(t testing.TB, handle string) backend
}

// testNode is the node name of the PostgreSQL leg's Managers.
const testNode = "node-test"

var (
	boltBackend = testBackend{
		name:  "bbolt",
		fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "outguard.db") },
		open: func(t testing.TB, path string) backend {
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("bolt.Open: %v", err)
			}
			t.Cleanup(func() { db.Close() })
			st, err := newBoltStore(db)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	pgBackend = testBackend{
		name: "postgres",
		fresh: func(t testing.TB) string {
			dsn := pgtest.NewDatabase(t)
			pgtest.OpenPool(t, dsn, true) // migrated
			return dsn
		},
		open: func(t testing.TB, dsn string) backend {
			return newPgStore(pgtest.OpenPool(t, dsn, false), testNode)
		},
	}
	backends = []testBackend{boltBackend, pgBackend}
)

// testDB opens a fresh store of be; the handle reopens it (openDB).
func testDB(t testing.TB, be testBackend) (backend, string) {
	t.Helper()
	h := be.fresh(t)
	return be.open(t, h), h
}

func openDB(t testing.TB, be testBackend, handle string) backend {
	t.Helper()
	return be.open(t, handle)
}

// testManager opens a Manager on a fresh store with the clock and no
// background loop; Close runs at cleanup.
func testManager(t testing.TB, be testBackend, clock *fakeClock, opts Options) (*Manager, backend) {
	t.Helper()
	db, _ := testDB(t, be)
	return openManager(t, db, clock, opts), db
}

func openManager(t testing.TB, db backend, clock *fakeClock, opts Options) *Manager {
	t.Helper()
	if opts.Now == nil && clock != nil {
		opts.Now = clock.Now
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = -1
	}
	m, err := openWith(db, opts, fleetOf(db))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// fleetOf returns the fleet side of a PostgreSQL store, nil on bbolt.
func fleetOf(db backend) fleetStore {
	if pg, ok := db.(*pgStore); ok {
		return pg
	}
	return nil
}

// closeStore closes what the test opened the store on.
func closeStore(db backend) error {
	switch st := db.(type) {
	case *boltStore:
		return st.db.Close()
	case *pgStore:
		st.pool.Close()
	}
	return nil
}

// bucketKeys counts what the store holds of a bucket: its keys on bbolt,
// this node's rows of the matching table on PostgreSQL.
func bucketKeys(t *testing.T, db backend, name []byte) int {
	t.Helper()
	n := 0
	var err error
	switch st := db.(type) {
	case *boltStore:
		err = st.db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket(name).Stats().KeyN
			return nil
		})
	case *pgStore:
		q := map[string]string{
			string(bucketLocks):      "SELECT count(*) FROM identity_locks",
			string(bucketWindows):    "SELECT count(*) FROM identity_windows WHERE node = $1",
			string(bucketWouldLocks): "SELECT count(*) FROM identity_wouldlocks",
		}[string(name)]
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, st.node)
		}
		err = st.pool.QueryRow(context.Background(), q, args...).Scan(&n)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// conformance lists the storage tests that run against every backend.
var conformance = []struct {
	name string
	fn   func(*testing.T, testBackend)
}{
	{"LockUnlock", testLockUnlock},
	{"LockInvalid", testLockInvalid},
	{"LockExpiry", testLockExpiry},
	{"RelockAfterUnsweptExpiry", testRelockAfterUnsweptExpiry},
	{"List", testList},
	{"LocksSurviveReopen", testLocksSurviveReopen},
	{"Closed", testClosed},
	{"LockMetrics", testLockMetrics},
	{"HistoryBounded", testHistoryBounded},
	{"AutoLockFiveSpamInTenMinutes", testAutoLockFiveSpamInTenMinutes},
	{"SlidingWindow", testSlidingWindow},
	{"ThresholdsPerCounter", testThresholdsPerCounter},
	{"ObserveOff", testObserveOff},
	{"ObserveInvalid", testObserveInvalid},
	{"Escalation", testEscalation},
	{"PermanentAutoLock", testPermanentAutoLock},
	{"AlreadyLockedIsNotRelocked", testAlreadyLockedIsNotRelocked},
	{"MonitorMode", testMonitorMode},
	{"WouldLocksBounded", testWouldLocksBounded},
	{"Usage", testUsage},
	{"WindowsWriteBehindAndReopen", testWindowsWriteBehindAndReopen},
	{"ReopenDropsStaleWindows", testReopenDropsStaleWindows},
	{"Refusals", testRefusals},
	{"UsageOfLockedIdentity", testUsageOfLockedIdentity},
	{"ConcurrentObserveOneIdentity", testConcurrentObserveOneIdentity},
	{"ConcurrentObserveManyIdentitiesWithFlush", testConcurrentObserveManyIdentitiesWithFlush},
	{"FlushLoop", testFlushLoop},
}

// TestConformance runs the storage tests against bbolt and PostgreSQL
// (which skips without a test server, see internal/pgdb/pgtest).
func TestConformance(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			if be.name == "postgres" {
				pgtest.ServerDSN(t)
			}
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) { c.fn(t, be) })
			}
		})
	}
}

// eventLog records OnEvent calls.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) types() []EventType {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EventType
	for _, e := range l.events {
		out = append(out, e.Type)
	}
	return out
}
