package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

var testSecret = []byte("0123456789abcdef-secret")

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

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

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testDB(t testing.TB) *bolt.DB { return openDB(t, filepath.Join(t.TempDir(), "outguard.db")) }

// testBackend is one store of the conformance suite: the outbox tests
// run unchanged against each (TestConformance).
type testBackend struct {
	name string
	// fresh makes an empty store and returns its handle: a bbolt file's
	// path, a PostgreSQL database's DSN.
	fresh func(t testing.TB) string
	// use opens the store at handle into o (closed at cleanup) for the
	// node named node.
	use func(t testing.TB, handle, node string, o *Options)
}

var (
	boltBackend = testBackend{
		name:  "bbolt",
		fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "outguard.db") },
		use: func(t testing.TB, path, _ string, o *Options) {
			o.DB = openDB(t, path)
		},
	}
	pgBackend = testBackend{
		name: "postgres",
		fresh: func(t testing.TB) string {
			dsn := pgtest.NewDatabase(t)
			pgtest.OpenPool(t, dsn, true) // migrated
			return dsn
		},
		use: func(t testing.TB, dsn, node string, o *Options) {
			o.Postgres = pgtest.OpenPool(t, dsn, false)
			o.Node = node
		},
	}
	backends = []testBackend{boltBackend, pgBackend}
)

// with returns o on a fresh store of be.
func (be testBackend) with(t testing.TB, o Options) Options {
	t.Helper()
	be.use(t, be.fresh(t), "node-a", &o)
	return o
}

// closeStore closes the store of o, as a node's shutdown does.
func closeStore(o Options) {
	if o.DB != nil {
		o.DB.Close()
	}
	if o.Postgres != nil {
		o.Postgres.Close()
	}
}

// conformance lists the outbox tests that run against every backend.
var conformance = []struct {
	name string
	fn   func(*testing.T, testBackend)
}{
	{"WebhookAutoLockReceiverDownThenUp", testWebhookAutoLockReceiverDownThenUp},
	{"NotifierSurvivesRestart", testNotifierSurvivesRestart},
	{"NotifierExpiry", testNotifierExpiry},
	{"NotifierEventFilterAndLimits", testNotifierEventFilterAndLimits},
	{"MailOnAutoLock", testMailOnAutoLock},
	{"StartDeliversInBackground", testStartDeliversInBackground},
	{"RoundStopsAtADeadReceiver", testRoundStopsAtADeadReceiver},
	{"NotifierJitter", testNotifierJitter},
}

// TestConformance runs the outbox tests against bbolt and PostgreSQL
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

// receiver is a webhook endpoint that verifies every request. While down
// is set it drops the connection without answering, as a dead host would
// look to the client.
type receiver struct {
	t     testing.TB
	clock func() time.Time
	srv   *httptest.Server
	down  atomic.Bool

	mu       sync.Mutex
	events   []Event
	attempts int
	bad      []error
	got      chan Event
}

func newReceiver(t testing.TB, clock func() time.Time) *receiver {
	r := &receiver{t: t, clock: clock, got: make(chan Event, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.attempts++
	r.mu.Unlock()
	if r.down.Load() {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	if err := Verify(testSecret, req.Header, body, r.clock(), 0); err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, err)
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(HeaderDelivery) || string(ev.Type) != req.Header.Get(HeaderEvent) {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.got <- ev
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) received() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *receiver) attemptCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}
