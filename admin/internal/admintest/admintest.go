// Package admintest holds the fixtures that the tests of the operations
// layer (admin/ops) and of its front ends (admin/api, admin/console)
// share: a database with real identity and quarantine stores, three
// tokens of different scopes, seeded records, a settable clock, and
// fakes of the feedback intake, the content model and campaign
// detection. Only tests import it.
package admintest

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// Test tokens: "root" (TokAll) sees everything, "outtok" (TokOut) only
// DomOut, "othertok" (TokOther) only DomOther.
const (
	TokAll   = "all-secret-token"
	TokOut   = "out-secret-token"
	TokOther = "other-secret-token"
	DomOut   = "out.example.net"
	DomOther = "other.example.org"
)

// Users are the outgoing users and their domains.
var Users = map[string]string{"webhost1": DomOut, "webhost2": DomOut, "otheruser": DomOther}

// Principals of the three tokens.
var (
	Root  = ops.Principal{Name: "root"}
	Out   = ops.Principal{Name: "outtok", Domain: DomOut}
	Other = ops.Principal{Name: "othertok", Domain: DomOther}
)

// Hashes are the bcrypt hashes of TokAll, TokOut and TokOther.
var Hashes = sync.OnceValue(func() [3]string {
	var h [3]string
	for i, s := range []string{TokAll, TokOut, TokOther} {
		// The lowest cost keeps the many wrong-token requests fast.
		v, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		h[i] = string(v)
	}
	return h
})

// Tokens are the three test tokens.
func Tokens() []ops.Token {
	h := Hashes()
	return []ops.Token{
		{Name: "root", Hash: h[0], Scope: ops.ScopeAll},
		{Name: "outtok", Hash: h[1], Scope: DomOut},
		{Name: "othertok", Hash: h[2], Scope: DomOther},
	}
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Deliver records releases; Err, when set, fails them.
type Deliver struct {
	mu    sync.Mutex
	calls int
	Err   error
}

// Deliver is the store's delivery function.
func (f *Deliver) Deliver(ctx context.Context, from string, rcpts []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	f.calls++
	return nil
}

// Count returns the deliveries made.
func (f *Deliver) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Feedback is a feedback intake returning Res (with the source as the
// parse result's file) or Err, and a lister of List.
type Feedback struct {
	mu     sync.Mutex
	Res    feedback.Result
	Err    error
	Calls  int
	Source string
	Raw    []byte
	List   []feedback.Result
	Query  ops.FeedbackQuery
}

// ListFeedback returns List, filtered by domain as the daemon does, and
// remembers the query.
func (f *Feedback) ListFeedback(ctx context.Context, q ops.FeedbackQuery) (ops.FeedbackList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Query = q
	out := ops.FeedbackList{}
	for _, r := range f.List {
		if q.Domain == "" || r.Domain == q.Domain {
			out.Reports = append(out.Reports, r)
		}
	}
	return out, f.Err
}

// Ingest returns Res or Err.
func (f *Feedback) Ingest(ctx context.Context, raw []byte, source string) (feedback.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls++
	f.Source, f.Raw = source, raw
	r := f.Res
	r.Parse.File = source
	return r, f.Err
}

// Env is the operations layer over real identity and quarantine stores
// on a fresh bbolt file, with three seeded records.
type Env struct {
	T        testing.TB
	DB       *bolt.DB
	Clock    *Clock
	Locks    *identity.Manager
	Store    *quarantine.Store
	Deliver  *Deliver
	Feedback *Feedback
	Reg      *prometheus.Registry
	// Reloads counts the reloads; ReloadErr fails them.
	Reloads   int
	ReloadErr error
	// Opts are the options New built Ops with; a setup function may
	// change them (Teacher, Campaigns).
	Opts ops.Options
	Ops  *ops.Ops

	// The seeded records: spam quarantined for DomOut, clean accepted
	// for DomOut, phishing quarantined for DomOther.
	SpamOut, CleanOut, SpamOther string

	ids int
}

// ID returns a log id for at that is the same in every run: the time
// part of a log id, then the env's count of ids so far. The seeded
// records have such ids, so that replies can be compared with golden
// files.
func (e *Env) ID(at time.Time) string {
	e.ids++
	return quarantine.NewID(at)[:10] + fmt.Sprintf("%016d", e.ids)
}

// New builds the env; setup, when not nil, runs after seeding and before
// the operations are built (it may set e.Opts.Teacher or Campaigns).
func New(t testing.TB, setup func(*Env)) *Env {
	t.Helper()
	e := &Env{T: t, Clock: &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, Deliver: &Deliver{}, Feedback: &Feedback{}, Reg: prometheus.NewRegistry()}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "outguard.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.DB = db
	e.Locks, err = identity.Open(db, identity.Options{Now: e.Clock.Now, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Locks.Close() })
	e.Store, err = quarantine.New(db, quarantine.Options{Now: e.Clock.Now, Deliver: e.Deliver.Deliver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Store.Stop)
	e.Opts = ops.Options{
		Tokens: Tokens(),
		Locks:  e.Locks, Store: e.Store, DB: db, Feedback: e.Feedback, FeedbackList: e.Feedback,
		Reload: func() error { e.Reloads++; return e.ReloadErr },
		UserDomain: func(u string) (string, bool) {
			d, ok := Users[u]
			return d, ok
		},
		KnownDomain: func(d string) bool { return strings.EqualFold(d, DomOut) || strings.EqualFold(d, DomOther) },
		Now:         e.Clock.Now, Registerer: e.Reg,
		// The tests send many wrong tokens from one address on purpose;
		// the tests of the throttle set their own.
		Throttle: ops.ThrottleOptions{Failures: 1000},
	}
	e.seed()
	if setup != nil {
		setup(e)
	}
	e.Ops, err = ops.New(e.Opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// SampleRaw is the content of the quarantined records.
const SampleRaw = "From: Alice <alice@customer.example>\r\nTo: bob@example.org\r\nSubject: Cheap pills\r\nMessage-ID: <spam1@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBuy now!\r\nhttp://example.com/\r\n"

// Record is a log record with fixed fields, at at.
func Record(at time.Time, domain, user, ident string, st quarantine.Status, v quarantine.Verdict, subject string) *quarantine.Record {
	return &quarantine.Record{
		ID: testutil.DatedID(at), Time: at, Listener: "submission",
		ClientIP: netip.MustParseAddr("192.0.2.10"), ClientPort: 40000,
		User: user, Domain: domain, Identity: ident, Sender: ident,
		Recipients: []quarantine.Recipient{{Address: "bob@example.org", Code: 550, Text: "5.7.1 refused"}},
		Subject:    subject, MessageID: "<" + subject + "@customer.example>", Size: 200,
		Status: st, Verdict: v, Score: 9, Reasons: []string{"builtin:TEST"},
	}
}

// seed writes three records and counts one spam for alice and one
// phishing for mallory.
func (e *Env) seed() {
	t := e.T
	ctx := context.Background()
	now := e.Clock.Now()
	r1 := Record(now.Add(-2*time.Hour), DomOut, "webhost1", "alice@customer.example", quarantine.StatusQuarantined, quarantine.VerdictSpam, "Cheap pills")
	r2 := Record(now.Add(-90*time.Minute), DomOut, "webhost2", "bob@customer.example", quarantine.StatusAccepted, quarantine.VerdictClean, "Invoice")
	r2.Recipients[0].Code = 250
	r3 := Record(now.Add(-time.Hour), DomOther, "otheruser", "mallory@other.example", quarantine.StatusQuarantined, quarantine.VerdictPhishing, "Your bank")
	for _, r := range []*quarantine.Record{r1, r2, r3} {
		r.ID = e.ID(r.Time)
	}
	for _, r := range []*quarantine.Record{r1, r3} {
		if err := e.Store.Quarantine(ctx, r, []byte(SampleRaw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Store.AppendWait(ctx, r2); err != nil {
		t.Fatal(err)
	}
	e.SpamOut, e.CleanOut, e.SpamOther = r1.ID, r2.ID, r3.ID
	for _, o := range []identity.Observation{
		{Domain: DomOut, User: "webhost1", Identity: "alice@customer.example", TxID: r1.ID, Class: identity.ClassSpam, Recipients: 1},
		{Domain: DomOther, User: "otheruser", Identity: "mallory@other.example", TxID: r3.ID, Class: identity.ClassPhishing, Recipients: 1},
	} {
		if _, err := e.Locks.Observe(ctx, o, identity.DefaultPolicy()); err != nil {
			t.Fatal(err)
		}
	}
}

// AuditEntries returns the audit trail, newest first, as root sees it.
func (e *Env) AuditEntries(f ops.AuditFilter) []ops.AuditEntry {
	e.T.Helper()
	if f.Limit == 0 {
		f.Limit = ops.MaxAuditLimit
	}
	l, err := e.Ops.Audit(context.Background(), Root, f)
	if err != nil {
		e.T.Fatal(err)
	}
	return l
}

// AuditCount returns the number of audit entries.
func (e *Env) AuditCount() int { return len(e.AuditEntries(ops.AuditFilter{})) }

// Audit returns the audit trail for writing entries directly.
func (e *Env) Audit() *ops.Audit {
	a, err := ops.OpenAudit(e.DB)
	if err != nil {
		e.T.Fatal(err)
	}
	return a
}

// LockCount returns the number of locks ever made.
func (e *Env) LockCount() int {
	e.T.Helper()
	l, err := e.Locks.List(context.Background(), identity.ListFilter{})
	if err != nil {
		e.T.Fatal(err)
	}
	return len(l)
}

// IsLocked reports whether the target is locked now.
func (e *Env) IsLocked(kind identity.Kind, domain, name string) bool {
	l, err := e.Locks.Get(context.Background(), identity.Target{Kind: kind, Domain: domain, Name: name})
	return err == nil && l.Active(e.Clock.Now())
}

// Teacher is a content model that records its lessons: every lesson
// moves the score by 4 and bumps the version. A stored message is read
// from and marked in the real store, as the daemon does. Err, when set,
// fails every lesson.
type Teacher struct {
	Store *quarantine.Store

	mu      sync.Mutex
	lessons []Lesson
	uploads int
	Err     error
}

// Lesson is one LearnStored call.
type Lesson struct {
	ID   string
	Spam bool
}

var _ ops.ModelTeacher = (*Teacher)(nil)

// LearnStored teaches the stored message id.
func (f *Teacher) LearnStored(ctx context.Context, id string, spam bool) (ops.LearnResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return ops.LearnResult{}, f.Err
	}
	if _, err := f.Store.Raw(id, quarantine.Actor{Name: "learn"}); err != nil {
		return ops.LearnResult{}, fmt.Errorf("%w: %s: the message's content is not kept (%v)", ops.ErrConflict, id, err)
	}
	f.lessons = append(f.lessons, Lesson{ID: id, Spam: spam})
	res := f.result(spam)
	return res, f.Store.SetLearned(ctx, id, res.As)
}

func (f *Teacher) result(spam bool) ops.LearnResult {
	res := ops.LearnResult{As: "ham", Before: 1.5, After: -2.5, Version: fmt.Sprintf("seed-test+%d", len(f.lessons)+f.uploads)}
	if spam {
		res.As, res.After = "spam", 5.5
	}
	return res
}

// LearnRaw counts an upload.
func (f *Teacher) LearnRaw(ctx context.Context, raw []byte, spam bool) (ops.LearnResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return ops.LearnResult{}, f.Err
	}
	f.uploads++
	return f.result(spam), nil
}

// Info describes a fixed model.
func (f *Teacher) Info() (ops.ModelInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := ops.ModelInfo{SeedFeatures: 100, Trained: "the test corpus", SpamThreshold: 5, SuspectThreshold: 3}
	m.Overlay.Seed, m.Overlay.Version, m.Overlay.MaxFeatures = "seed-test", fmt.Sprintf("seed-test+%d", len(f.lessons)+f.uploads), 10
	return m, nil
}

// Export returns a fixed overlay.
func (f *Teacher) Export() ([]byte, error) { return []byte("overlay"), nil }

// Import accepts "overlay".
func (f *Teacher) Import(b []byte) error {
	if string(b) != "overlay" {
		return fmt.Errorf("%w: not an overlay", ops.ErrBadRequest)
	}
	return nil
}

// Reset does nothing.
func (f *Teacher) Reset() error { return nil }

// Taught returns the lessons so far.
func (f *Teacher) Taught() []Lesson {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Lesson(nil), f.lessons...)
}

// Notices renders customer notices of DomOut from a fixed template (to
// the identity when it is an email address) and records the ones
// queued; other domains have none.
type Notices struct {
	mu     sync.Mutex
	queued []identity.Lock
}

// RenderNotice implements ops.NoticeRenderer.
func (n *Notices) RenderNotice(l identity.Lock) (ops.Notice, bool, error) {
	if !strings.EqualFold(l.Domain, DomOut) {
		return ops.Notice{}, false, nil
	}
	to := ""
	if strings.Contains(l.Name, "@") {
		to = l.Name
	}
	return ops.Notice{To: to, Subject: "Outgoing mail of " + l.Name + " is paused",
		Body: "Reason: " + l.Reason + "\nSince: " + l.Start.UTC().Format(time.RFC3339) + "\n"}, true, nil
}

// QueueNotice implements ops.NoticeOutbox.
func (n *Notices) QueueNotice(ctx context.Context, l identity.Lock) (ops.Notice, error) {
	nt, ok, err := n.RenderNotice(l)
	if err != nil || !ok {
		return ops.Notice{}, fmt.Errorf("no notice for %s (%v)", l.Domain, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queued = append(n.queued, l)
	return nt, nil
}

// Queued returns the locks whose notices were queued.
func (n *Notices) Queued() []identity.Lock {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]identity.Lock(nil), n.queued...)
}
