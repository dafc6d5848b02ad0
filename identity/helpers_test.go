package identity

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// testDB opens a bbolt file in t.TempDir and closes it at cleanup.
func testDB(t testing.TB) (*bolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outguard.db")
	return openDB(t, path), path
}

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testManager opens a Manager on a fresh database with the clock and no
// background loop; Close runs at cleanup.
func testManager(t testing.TB, clock *fakeClock, opts Options) (*Manager, *bolt.DB) {
	t.Helper()
	db, _ := testDB(t)
	return openManager(t, db, clock, opts), db
}

func openManager(t testing.TB, db *bolt.DB, clock *fakeClock, opts Options) *Manager {
	t.Helper()
	if opts.Now == nil && clock != nil {
		opts.Now = clock.Now
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = -1
	}
	m, err := Open(db, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
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
