package quarantine

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
)

// openDB opens a fresh bbolt file in t.TempDir, closed at cleanup.
func openDB(t testing.TB, noSync bool) (*bbolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outguard.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: noSync, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// newTestStore opens a store on a fresh NoSync database (tests check
// logic, benchmarks measure fsync), stopped at cleanup. In the postgres
// leg of eachBackend it opens the store on a fresh PostgreSQL database
// and returns a nil *bbolt.DB.
func newTestStore(t testing.TB, opts Options) (*Store, *bbolt.DB) {
	t.Helper()
	if onPostgres(t) {
		if opts.Node == "" {
			opts.Node = "node-a"
		}
		s, err := NewPostgres(pgtest.Pool(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s, nil
	}
	db, _ := openDB(t, true)
	s, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, db
}

// fakeDeliver records deliveries; Err, when set, fails them.
type fakeDeliver struct {
	mu    sync.Mutex
	calls int
	from  string
	rcpts []string
	raw   []byte
	Err   error
	// gate, when set, is waited on inside Deliver (to overlap releases).
	gate chan struct{}
}

func (f *fakeDeliver) Deliver(ctx context.Context, from string, rcpts []string, raw []byte) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	f.calls++
	f.from, f.rcpts, f.raw = from, append([]string(nil), rcpts...), append([]byte(nil), raw...)
	return nil
}

func (f *fakeDeliver) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

var testBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sampleRecord returns a fully populated record at t.
func sampleRecord(t time.Time, st Status, v Verdict) *Record {
	return &Record{
		ID:         testID(t),
		Time:       t.Add(1234 * time.Microsecond),
		Listener:   "submission",
		ClientIP:   netip.MustParseAddr("192.0.2.10"),
		ClientPort: 40123,
		User:       "webhost1",
		Domain:     "out.example.net",
		Identity:   "alice@customer.example",
		Sender:     "alice@customer.example",
		Recipients: []Recipient{
			{Address: "bob@example.org", Code: 250, Text: "2.0.0 Ok"},
			{Address: "carol@example.org", Code: 550, Text: "5.1.1 no such user", Refused: true},
		},
		HeaderFrom:   "Alice <alice@customer.example>",
		Subject:      "Quarterly numbers",
		MessageID:    fmt.Sprintf("<%d.%d@customer.example>", t.UnixNano(), st),
		Size:         4321,
		Status:       st,
		Verdict:      v,
		Score:        7.5,
		Reasons:      []string{"builtin:URL_SHORTENER", "rspamd:BAYES_SPAM"},
		NextHopReply: "250 2.0.0 Ok: queued as 4Xyz",
		Duration:     230 * time.Millisecond,
		TraceToken:   fmt.Sprintf("tt-%d", t.UnixNano()),
	}
}

const sampleRaw = "From: Alice <alice@customer.example>\r\nTo: bob@example.org\r\nSubject: Quarterly numbers\r\nMessage-ID: <x@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBuy now!\r\nhttp://example.com/\r\n"

func flush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// testID dates a record's id (testutil.DatedID).
func testID(t time.Time) string { return testutil.DatedID(t) }

// backendPostgres names the subtest of eachBackend that runs on
// PostgreSQL; newTestStore opens a PostgreSQL store inside it.
const backendPostgres = "postgres"

// eachBackend runs fn once per storage backend: the conformance suite.
// The postgres leg needs OUTGUARD_TEST_PG_DSN (internal/pgdb/pgtest) and
// skips visibly without it, unless OUTGUARD_REQUIRE_EXTERNAL is set.
func eachBackend(t *testing.T, fn func(t *testing.T)) {
	t.Run("bbolt", fn)
	t.Run(backendPostgres, fn)
}

// onPostgres reports whether t runs in the postgres leg of eachBackend.
func onPostgres(t testing.TB) bool {
	return strings.Contains(t.Name(), "/"+backendPostgres)
}

// countRecords counts the log's records through Search.
func countRecords(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	q := Query{Limit: MaxLimit}
	for {
		p, err := s.Search(q)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Records)
		if p.NextCursor == "" {
			return n
		}
		q.Cursor = p.NextCursor
	}
}
