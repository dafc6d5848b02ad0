package feedback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// fakeLog is an in-memory message log: transactions by Message-ID and by
// trace token, the last transaction of each identity, and the complaints
// marked on records.
type fakeLog struct {
	mu         sync.Mutex
	byMsgID    map[string]arf.TxRef
	byToken    map[string]arf.TxRef
	byIdentity map[string]arf.TxRef
	complaints map[string][]time.Time
}

func (l *fakeLog) ByTraceToken(_ context.Context, tok string) (arf.TxRef, bool, error) {
	r, ok := l.byToken[tok]
	return r, ok, nil
}

func (l *fakeLog) ByMessageID(_ context.Context, id string) (arf.TxRef, bool, error) {
	r, ok := l.byMsgID[id]
	return r, ok, nil
}

func (l *fakeLog) ByIdentity(_ context.Context, ident string) (arf.TxRef, bool, error) {
	r, ok := l.byIdentity[ident]
	return r, ok, nil
}

func (l *fakeLog) AddComplaint(_ context.Context, txID string, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.complaints[txID] = append(l.complaints[txID], at)
	return nil
}

// fakeLocks counts complaints per identity and locks at lockAt.
type fakeLocks struct {
	mu     sync.Mutex
	seen   []Complaint
	lockAt int
}

func (f *fakeLocks) ObserveComplaint(_ context.Context, c Complaint) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, c)
	n := 0
	for _, s := range f.seen {
		if s.Domain == c.Domain && s.Identity == c.Identity {
			n++
		}
	}
	return f.lockAt > 0 && n >= f.lockAt, nil
}

// fakeLearner records what it was taught; err makes it fail.
type fakeLearner struct {
	taught [][]byte
	err    error
}

func (f *fakeLearner) LearnSpam(raw []byte) (float64, float64, error) {
	if f.err != nil {
		return 0, 0, f.err
	}
	f.taught = append(f.taught, raw)
	return 0.2, 0.9, nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Transactions of the fake message log.
var (
	txAlice = arf.TxRef{TxID: "01JAAAAAAAAAAAAAAAAAAAAAAA", Domain: "out.example.net", User: "web7", Identity: "alice@customer.example"}
	txBob   = arf.TxRef{TxID: "01JBBBBBBBBBBBBBBBBBBBBBBB", Domain: "out.example.net", User: "web8", Identity: "bob@customer.example"}
	// txAnon is relayed mail whose identity was not found.
	txAnon = arf.TxRef{TxID: "01JCCCCCCCCCCCCCCCCCCCCCCC", Domain: "out.example.net", User: "web9"}
)

// testBackend is one store of the conformance suite: the intake tests
// run unchanged against each (TestConformance).
type testBackend struct {
	name string
	// open makes a fresh store, closed at cleanup, and returns what sets
	// it in Options (as the node named node).
	open func(t testing.TB) func(o *Options, node string)
}

var (
	boltBackend = testBackend{
		name: "bbolt",
		open: func(t testing.TB) func(*Options, string) {
			// NoSync: these tests never crash the process, and fuzzing
			// runs many ingests.
			db, err := bolt.Open(filepath.Join(t.TempDir(), "outguard.db"), 0o600, &bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return func(o *Options, _ string) { o.DB = db }
		},
	}
	pgBackend = testBackend{
		name: "postgres",
		open: func(t testing.TB) func(*Options, string) {
			pool := pgtest.Pool(t)
			return func(o *Options, node string) { o.Postgres, o.Node = pool, node }
		},
	}
	backends = []testBackend{boltBackend, pgBackend}
)

// conformance lists the intake tests that run against every backend.
var conformance = []struct {
	name string
	fn   func(*testing.T, testBackend)
}{
	{"CountingRules", testCountingRules},
	{"SameReportTwice", testSameReportTwice},
	{"ReporterMatching", testReporterMatching},
	{"NotFeedback", testNotFeedback},
	{"Locked", testLocked},
	{"Learning", testLearning},
	{"Retention", testRetention},
	{"RetentionInBatches", testRetentionInBatches},
	{"List", testList},
	{"StartStop", testStartStop},
}

// TestConformance runs the intake tests against bbolt and PostgreSQL
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

// env is an intake over a fresh database and fakes.
type env struct {
	in      *Intake
	store   func(o *Options, node string)
	log     *fakeLog
	locks   *fakeLocks
	learner *fakeLearner
	clock   *clock
	reg     *prometheus.Registry
}

func newEnv(t testing.TB, be testBackend, s Settings) *env {
	t.Helper()
	e := &env{store: be.open(t),
		log: &fakeLog{
			byMsgID:    map[string]arf.TxRef{"alice.1@customer.example": txAlice, "bob.1@customer.example": txBob, "anon.1@customer.example": txAnon},
			byToken:    map[string]arf.TxRef{"tok-bob": txBob},
			byIdentity: map[string]arf.TxRef{"carol@customer.example": {Domain: "out.example.net", User: "web7", Identity: "carol@customer.example"}},
			complaints: map[string][]time.Time{},
		},
		locks:   &fakeLocks{lockAt: 3},
		learner: &fakeLearner{},
		clock:   &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)},
		reg:     prometheus.NewRegistry(),
	}
	e.in = e.open(t)
	e.in.Configure(s)
	return e
}

// open builds an intake over e's database and fakes.
func (e *env) open(t testing.TB) *Intake {
	t.Helper()
	return e.openAs(t, "node-a")
}

// openAs is open for the node named node.
func (e *env) openAs(t testing.TB, node string) *Intake {
	t.Helper()
	o := Options{Log: e.log, Locks: e.locks, Learner: e.learner, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: e.reg}
	e.store(&o, node)
	in, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in
}

// settings are the defaults with the given reporters and learning.
func settings(learn bool, reps ...config.Reporter) Settings {
	return Settings{IdentityHeader: arf.DefaultIdentityHeader, TraceHeader: arf.DefaultTraceHeader,
		MaxBytes: arf.DefaultParseMaxBytes, Retention: config.DefaultFeedbackRetention, Reporters: reps, Learn: learn}
}

// fbl is the reporter of mailbox.example's feedback loop.
var fbl = config.Reporter{Name: "mailbox", Domains: []string{"mailbox.example"}}

// original is a message as the mailbox provider received it; header
// holds extra header lines (CRLF-terminated).
func original(msgID, header string) string {
	s := header + "From: shop@customer.example\r\nTo: someone@mailbox.example\r\nSubject: offer\r\n"
	if msgID != "" {
		s += "Message-ID: <" + msgID + ">\r\n"
	}
	return s + "Date: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nbuy now\r\n"
}

// report is an ARF report from "from" of feedback type typ quoting orig;
// n varies its text so that reports about the same original differ.
func report(from, typ string, n int, orig string) []byte {
	return []byte("From: " + from + "\r\nTo: fbl@outguard.test\r\nSubject: complaint " + fmt.Sprint(n) + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain\r\n\r\nA user complained (case " + fmt.Sprint(n) + ").\r\n" +
		"--zz\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: " + typ + "\r\nUser-Agent: MailboxFBL/1\r\nVersion: 1\r\n\r\n" +
		"--zz\r\nContent-Type: message/rfc822\r\n\r\n" + orig + "\r\n--zz--\r\n")
}

// ingest ingests raw as an upload and fails the test on an error.
func (e *env) ingest(t *testing.T, raw []byte) Result {
	t.Helper()
	res, err := e.in.Ingest(context.Background(), raw, "test")
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

// ingestSMTP ingests raw as if received over SMTP from client with the
// envelope sender envFrom.
func (e *env) ingestSMTP(t *testing.T, raw []byte, client, envFrom string) Result {
	t.Helper()
	res, err := e.in.IngestSMTP(context.Background(), raw, "smtp:"+client, netip.MustParseAddr(client), envFrom)
	if err != nil {
		t.Fatalf("IngestSMTP: %v", err)
	}
	return res
}

// stored lists every stored report, newest first.
func (e *env) stored(t *testing.T) []Result {
	t.Helper()
	out, _, err := e.in.List(1000, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) counter(name string, labels ...string) float64 {
	switch name {
	case "ingested":
		return testutil.ToFloat64(e.in.m.ingested.WithLabelValues(labels...))
	case "outcomes":
		return testutil.ToFloat64(e.in.m.outcomes.WithLabelValues(labels...))
	case "pruned":
		return testutil.ToFloat64(e.in.m.pruned)
	}
	panic("unknown counter " + name)
}

var errLearn = errors.New("model is read-only")
