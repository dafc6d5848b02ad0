package arf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// fakeSender records deliveries; errs are returned in turn (nil: success)
// and the last one repeats.
type fakeSender struct {
	mu    sync.Mutex
	errs  []error
	calls int
	sent  []string // report bodies delivered
	from  []string
	panic bool
	got   chan struct{}
}

func (f *fakeSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.panic {
		f.panic = false
		panic("relay exploded")
	}
	var err error
	if len(f.errs) > 0 {
		err = f.errs[0]
		if len(f.errs) > 1 {
			f.errs = f.errs[1:]
		}
	}
	if err == nil {
		f.sent = append(f.sent, string(raw))
		f.from = append(f.from, from)
		if f.got != nil {
			f.got <- struct{}{}
		}
	}
	return err
}

func (f *fakeSender) count() (calls, sent int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, len(f.sent)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "outguard.db")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type outboxEnv struct {
	db     *bolt.DB
	ob     *Outbox
	send   *fakeSender
	clock  *clock
	reg    *prometheus.Registry
	logBuf *bytes.Buffer
}

func newOutboxEnv(t *testing.T, db *bolt.DB, send *fakeSender) *outboxEnv {
	t.Helper()
	if db == nil && !onPostgres(t) {
		db = openDB(t, "")
	}
	if send == nil {
		send = &fakeSender{}
	}
	env := &outboxEnv{db: db, send: send, clock: &clock{t: fixedNow}, reg: prometheus.NewRegistry(), logBuf: &bytes.Buffer{}}
	var pool *pgxpool.Pool
	if onPostgres(t) {
		pool, db = pgtest.Pool(t), nil
	}
	ob, err := NewOutbox(OutboxOptions{
		DB:           db,
		Pool:         pool,
		Send:         send.Send,
		RetryInitial: 30 * time.Second,
		RetryMax:     2 * time.Minute,
		MaxAge:       time.Hour,
		Now:          env.clock.Now,
		Logger:       slog.New(slog.NewTextHandler(env.logBuf, nil)),
		Registerer:   env.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	env.ob = ob
	// The schedule tests read exact waits; TestOutboxJitter covers the
	// jitter.
	ob.retry.Rand = func() float64 { return 0 }
	t.Cleanup(ob.Stop)
	return env
}

func (e *outboxEnv) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func rep(id string) Report {
	return Report{ID: id, To: []string{"abuse@out.example.net"}, Raw: []byte("Subject: report " + id + "\r\n\r\nbody\r\n")}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outguard.db")
	db := openDB(t, path)
	env := newOutboxEnv(t, db, nil)
	for _, id := range []string{"r1", "r2"} {
		if err := env.ob.Enqueue(context.Background(), rep(id)); err != nil {
			t.Fatal(err)
		}
	}
	if got := env.metric(t, "outguard_arf_outbox_depth"); got != 2 {
		t.Errorf("depth: got %v, want 2", got)
	}
	env.ob.Stop()
	db.Close()

	env2 := newOutboxEnv(t, openDB(t, path), nil)
	if got := env2.metric(t, "outguard_arf_outbox_depth"); got != 2 {
		t.Errorf("depth after restart: got %v, want 2", got)
	}
	if _, err := env2.ob.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, sent := env2.send.count(); sent != 2 {
		t.Fatalf("sent after restart: got %d, want 2", sent)
	}
	if env2.send.from[0] != "" {
		t.Errorf("envelope sender: got %q, want the null sender", env2.send.from[0])
	}
	if !strings.Contains(env2.send.sent[0], "Subject: report r1") {
		t.Errorf("sent content: got %q, want report r1", env2.send.sent[0])
	}
	env2.ob.Stop()
	env2.db.Close()

	// Delivered reports are not sent again after another restart, and
	// enqueueing one again is a no-op.
	env3 := newOutboxEnv(t, openDB(t, path), nil)
	if err := env3.ob.Enqueue(context.Background(), rep("r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := env3.ob.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := env3.send.count(); calls != 0 {
		t.Errorf("sends after delivered restart: got %d, want 0", calls)
	}
	if got := env3.metric(t, "outguard_arf_outbox_depth"); got != 0 {
		t.Errorf("depth: got %v, want 0", got)
	}
}

func TestOutboxRetryBackoff(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		down := errors.New("dial tcp: connection refused")
		send := &fakeSender{errs: []error{down, down, down, down, nil}}
		env := newOutboxEnv(t, nil, send)
		ctx := context.Background()
		if err := env.ob.Enqueue(ctx, rep("r1")); err != nil {
			t.Fatal(err)
		}
		wantWaits := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute}
		for i, wait := range wantWaits {
			next, err := env.ob.Round(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := next.Sub(env.clock.Now()); got != wait {
				t.Errorf("attempt %d: got next attempt in %v, want %v", i+1, got, wait)
			}
			// Not due yet: a round before the wait sends nothing.
			env.clock.Add(wait - time.Second)
			calls, _ := send.count()
			if _, err := env.ob.Round(ctx); err != nil {
				t.Fatal(err)
			}
			if c, _ := send.count(); c != calls {
				t.Errorf("attempt %d: sent before the backoff elapsed", i+1)
			}
			env.clock.Add(time.Second)
		}
		if _, err := env.ob.Round(ctx); err != nil {
			t.Fatal(err)
		}
		if _, sent := send.count(); sent != 1 {
			t.Fatalf("sent: got %d, want 1", sent)
		}
		for name, want := range map[string]float64{
			"outguard_arf_reports_retried_total": 4,
			"outguard_arf_reports_sent_total":    1,
			"outguard_arf_outbox_depth":          0,
			"outguard_arf_reports_expired_total": 0,
		} {
			if got := env.metric(t, name); got != want {
				t.Errorf("%s: got %v, want %v", name, got, want)
			}
		}
	})
}

func TestOutboxExpires(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		send := &fakeSender{errs: []error{errors.New("connection refused")}}
		env := newOutboxEnv(t, nil, send)
		ctx := context.Background()
		if err := env.ob.Enqueue(ctx, rep("old")); err != nil {
			t.Fatal(err)
		}
		for range 40 {
			if _, err := env.ob.Round(ctx); err != nil {
				t.Fatal(err)
			}
			env.clock.Add(2 * time.Minute)
		}
		pending, _ := env.ob.Pending()
		if len(pending) != 0 {
			t.Errorf("pending: got %d, want 0", len(pending))
		}
		expired, err := env.ob.Expired()
		if err != nil {
			t.Fatal(err)
		}
		if len(expired) != 1 || expired[0].ID != "old" || expired[0].LastError != "connection refused" {
			t.Fatalf("expired: got %+v, want report old with its last error", expired)
		}
		if raw, err := env.ob.Raw("old"); err != nil || !bytes.Contains(raw, []byte("report old")) {
			t.Errorf("raw of expired report: got %q, %v", raw, err)
		}
		if got := env.metric(t, "outguard_arf_reports_expired_total"); got != 1 {
			t.Errorf("expired metric: got %v, want 1", got)
		}
		logs := env.logBuf.String()
		if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "report_id=old") {
			t.Errorf("log: got %q, want an error line with report_id=old", logs)
		}
		// Requeue brings it back with a fresh age.
		send.mu.Lock()
		send.errs = []error{nil}
		send.mu.Unlock()
		if err := env.ob.Requeue("old"); err != nil {
			t.Fatal(err)
		}
		if _, err := env.ob.Round(ctx); err != nil {
			t.Fatal(err)
		}
		if _, sent := send.count(); sent != 1 {
			t.Errorf("sent after requeue: got %d, want 1", sent)
		}
		if expired, _ := env.ob.Expired(); len(expired) != 0 {
			t.Errorf("expired after requeue: got %d, want 0", len(expired))
		}
	})
}

func TestOutboxPermanentFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		send := &fakeSender{errs: []error{&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}}
		env := newOutboxEnv(t, nil, send)
		ctx := context.Background()
		if err := env.ob.Enqueue(ctx, rep("r")); err != nil {
			t.Fatal(err)
		}
		if _, err := env.ob.Round(ctx); err != nil {
			t.Fatal(err)
		}
		expired, _ := env.ob.Expired()
		if len(expired) != 1 {
			t.Fatalf("expired: got %d, want 1", len(expired))
		}
		if got := env.metric(t, "outguard_arf_reports_failed_total"); got != 1 {
			t.Errorf("failed metric: got %v, want 1", got)
		}
		if err := env.ob.DeleteExpired("r"); err != nil {
			t.Fatal(err)
		}
		if _, err := env.ob.Raw("r"); err == nil {
			t.Errorf("raw after delete: got no error, want one")
		}
	})
}

func TestOutboxConcurrentEnqueue(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		env := newOutboxEnv(t, nil, nil)
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Go(func() { errs <- env.ob.Enqueue(context.Background(), rep(fmt.Sprintf("r%02d", i))) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		pending, err := env.ob.Pending()
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 50 {
			t.Errorf("pending: got %d, want 50", len(pending))
		}
		if got := env.metric(t, "outguard_arf_outbox_depth"); got != 50 {
			t.Errorf("depth: got %v, want 50", got)
		}
		if err := env.ob.Enqueue(context.Background(), Report{ID: "x"}); !errors.Is(err, ErrInvalidReport) {
			t.Errorf("invalid report: got %v, want %v", err, ErrInvalidReport)
		}
	})
}

func TestOutboxBackgroundSender(t *testing.T) {
	send := &fakeSender{panic: true, got: make(chan struct{}, 4)}
	db := openDB(t, "")
	ob, err := NewOutbox(OutboxOptions{DB: db, Send: send.Send, RetryInitial: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ob.Start()
	ob.Start()
	if err := ob.Enqueue(context.Background(), rep("bg")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-send.got:
	case <-time.After(10 * time.Second):
		t.Fatal("report not delivered by the background sender after a panic")
	}
	ob.Stop()
	ob.Stop()
	if calls, sent := send.count(); calls < 2 || sent != 1 {
		t.Errorf("calls, sent: got %d, %d, want >=2, 1", calls, sent)
	}
}

func TestOutboxMetricsExposition(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		env := newOutboxEnv(t, nil, nil)
		if err := env.ob.Enqueue(context.Background(), rep("m")); err != nil {
			t.Fatal(err)
		}
		want := `
# HELP outguard_arf_outbox_depth ARF reports waiting in the outbox for delivery.
# TYPE outguard_arf_outbox_depth gauge
outguard_arf_outbox_depth 1
# HELP outguard_arf_reports_sent_total ARF reports delivered to the report relay.
# TYPE outguard_arf_reports_sent_total counter
outguard_arf_reports_sent_total 0
`
		if err := testutil.GatherAndCompare(env.reg, strings.NewReader(want), "outguard_arf_outbox_depth", "outguard_arf_reports_sent_total"); err != nil {
			t.Error(err)
		}
	})
}

func BenchmarkOutboxEnqueue(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "b.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ob, err := NewOutbox(OutboxOptions{DB: db, Send: (&fakeSender{}).Send})
	if err != nil {
		b.Fatal(err)
	}
	raw := bytes.Repeat([]byte("x"), 8<<10)
	var n int64
	var mu sync.Mutex
	b.SetParallelism(25) // 50 goroutines on 2 cores, like 50 sessions
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			id := fmt.Sprintf("r%d", n)
			mu.Unlock()
			if err := ob.Enqueue(context.Background(), Report{ID: id, To: []string{"a@b"}, Raw: raw}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOutboxJitter checks that reports failing in the same round come back
// at different times, each between half and all of the backoff.
func TestOutboxJitter(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		down := errors.New("dial tcp: connection refused")
		send := &fakeSender{errs: []error{down, down, down, down, down, down, down, down}}
		env := newOutboxEnv(t, nil, send)
		env.ob.retry.Rand = nil // the real jitter
		ctx := context.Background()
		for i := range 8 {
			if err := env.ob.Enqueue(ctx, rep(fmt.Sprint("r", i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := env.ob.Round(ctx); err != nil {
			t.Fatal(err)
		}
		entries, err := env.ob.Pending()
		if err != nil || len(entries) != 8 {
			t.Fatalf("pending: %d, %v", len(entries), err)
		}
		seen := map[time.Time]bool{}
		for _, e := range entries {
			wait := e.NextAttempt.Sub(env.clock.Now())
			if wait < 15*time.Second || wait > 30*time.Second {
				t.Errorf("%s: next attempt in %v, want 15s to 30s", e.ID, wait)
			}
			seen[e.NextAttempt] = true
		}
		if len(seen) < 2 {
			t.Errorf("8 reports failing together all come back at %v", entries[0].NextAttempt)
		}
	})
}
