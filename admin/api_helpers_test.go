package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// Test tokens: "root" sees everything, "outtok" only out.example.net.
const (
	tokAll   = "all-secret-token"
	tokOut   = "out-secret-token"
	tokOther = "other-secret-token"
	domOut   = "out.example.net"
	domOther = "other.example.org"
)

var testHashes = sync.OnceValue(func() [3]string {
	var h [3]string
	for i, s := range []string{tokAll, tokOut, tokOther} {
		// The lowest cost keeps the many wrong-token requests fast.
		v, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		h[i] = string(v)
	}
	return h
})

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
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

// fakeDeliver records releases.
type fakeDeliver struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeDeliver) deliver(ctx context.Context, from string, rcpts []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.calls++
	return nil
}

func (f *fakeDeliver) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeFeedback is a FeedbackIngester returning res or err.
type fakeFeedback struct {
	mu     sync.Mutex
	res    FeedbackResult
	err    error
	calls  int
	source string
	raw    []byte
	list   []FeedbackResult
	query  FeedbackQuery
}

// ListFeedback returns the stored list, filtered by domain as the app
// does, and remembers the query.
func (f *fakeFeedback) ListFeedback(ctx context.Context, q FeedbackQuery) (FeedbackList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.query = q
	out := FeedbackList{}
	for _, r := range f.list {
		if q.Domain == "" || r.Domain == q.Domain {
			out.Reports = append(out.Reports, r)
		}
	}
	return out, f.err
}

func (f *fakeFeedback) Ingest(ctx context.Context, raw []byte, source string) (FeedbackResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.source, f.raw = source, raw
	r := f.res
	r.File = source
	return r, f.err
}

// env is an API over real identity and quarantine stores on a fresh
// bbolt file, served by httptest.
type env struct {
	t         testing.TB
	db        *bolt.DB
	clock     *fakeClock
	locks     *identity.Manager
	store     *quarantine.Store
	api       *API
	srv       *httptest.Server
	deliver   *fakeDeliver
	feedback  *fakeFeedback
	reg       *prometheus.Registry
	reloads   int
	reloadErr error

	// ids of the seeded records.
	spamOut, cleanOut, spamOther string
}

var users = map[string]string{"webhost1": domOut, "webhost2": domOut, "otheruser": domOther}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with setup run after seeding and before the
// server starts (its handlers read what setup sets).
func newEnvWith(t testing.TB, setup func(*env)) *env {
	t.Helper()
	e := &env{t: t, clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, deliver: &fakeDeliver{}, feedback: &fakeFeedback{}, reg: prometheus.NewRegistry()}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "outguard.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.locks, err = identity.Open(db, identity.Options{Now: e.clock.Now, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.locks.Close() })
	e.store, err = quarantine.New(db, quarantine.Options{Now: e.clock.Now, Deliver: e.deliver.deliver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.store.Stop)
	h := testHashes()
	e.api, err = NewAPI(APIOptions{
		Tokens: []Token{
			{Name: "root", Hash: h[0], Scope: ScopeAll},
			{Name: "outtok", Hash: h[1], Scope: domOut},
			{Name: "othertok", Hash: h[2], Scope: domOther},
		},
		Locks: e.locks, Store: e.store, DB: db, Feedback: e.feedback, FeedbackList: e.feedback,
		Reload: func() error { e.reloads++; return e.reloadErr },
		UserDomain: func(u string) (string, bool) {
			d, ok := users[u]
			return d, ok
		},
		KnownDomain: func(d string) bool { return strings.EqualFold(d, domOut) || strings.EqualFold(d, domOther) },
		Now:         e.clock.Now, Registerer: e.reg, MaxFeedbackBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.seed()
	if setup != nil {
		setup(e)
	}
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	return e
}

const sampleRaw = "From: Alice <alice@customer.example>\r\nTo: bob@example.org\r\nSubject: Cheap pills\r\nMessage-ID: <spam1@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBuy now!\r\nhttp://example.com/\r\n"

func record(at time.Time, domain, user, ident string, st quarantine.Status, v quarantine.Verdict, subject string) *quarantine.Record {
	return &quarantine.Record{
		ID: testutil.DatedID(at), Listener: "submission",
		ClientIP: netip.MustParseAddr("192.0.2.10"), ClientPort: 40000,
		User: user, Domain: domain, Identity: ident, Sender: ident,
		Recipients: []quarantine.Recipient{{Address: "bob@example.org", Code: 550, Text: "5.7.1 refused"}},
		Subject:    subject, MessageID: "<" + subject + "@customer.example>", Size: 200,
		Status: st, Verdict: v, Score: 9, Reasons: []string{"builtin:TEST"},
	}
}

// seed writes three records and counts one spam for alice.
func (e *env) seed() {
	t := e.t
	ctx := context.Background()
	now := e.clock.Now()
	r1 := record(now.Add(-2*time.Hour), domOut, "webhost1", "alice@customer.example", quarantine.StatusQuarantined, quarantine.VerdictSpam, "Cheap pills")
	r2 := record(now.Add(-90*time.Minute), domOut, "webhost2", "bob@customer.example", quarantine.StatusAccepted, quarantine.VerdictClean, "Invoice")
	r2.Recipients[0].Code = 250
	r3 := record(now.Add(-time.Hour), domOther, "otheruser", "mallory@other.example", quarantine.StatusQuarantined, quarantine.VerdictPhishing, "Your bank")
	for _, r := range []*quarantine.Record{r1, r3} {
		if err := e.store.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.AppendWait(ctx, r2); err != nil {
		t.Fatal(err)
	}
	e.spamOut, e.cleanOut, e.spamOther = r1.ID, r2.ID, r3.ID
	for _, o := range []identity.Observation{
		{Domain: domOut, User: "webhost1", Identity: "alice@customer.example", TxID: r1.ID, Class: identity.ClassSpam, Recipients: 1},
		{Domain: domOther, User: "otheruser", Identity: "mallory@other.example", TxID: r3.ID, Class: identity.ClassPhishing, Recipients: 1},
	} {
		if _, err := e.locks.Observe(ctx, o, identity.DefaultPolicy()); err != nil {
			t.Fatal(err)
		}
	}
}

// do sends a request with token (none if "") and returns status and body.
func (e *env) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// doJSON is do that decodes a JSON answer into v.
func (e *env) doJSON(method, path, token string, body any, v any) int {
	e.t.Helper()
	code, b := e.do(method, path, token, body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			e.t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return code
}

// errorOf decodes an error body, failing the test if it is not one.
func errorOf(t *testing.T, b []byte) ErrorDetail {
	t.Helper()
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("got body %q, want a JSON error with code and message", b)
	}
	return eb.Error
}

// auditCount returns the number of audit entries.
func (e *env) auditCount() int {
	e.t.Helper()
	l, err := e.api.Audit().List(context.Background(), AuditFilter{Limit: MaxAuditLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(l)
}

// lockCount returns the number of locks ever made.
func (e *env) lockCount() int {
	e.t.Helper()
	l, err := e.locks.List(context.Background(), identity.ListFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(l)
}

var quarantineAll = quarantine.Actor{Name: "test"}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }
