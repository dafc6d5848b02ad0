package notify

import (
	"context"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/identity"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newNotifier(t *testing.T, o Options) *Notifier {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	// The schedule tests read exact waits; TestNotifierJitter covers the
	// jitter.
	n.retry.Rand = func() float64 { return 0 }
	t.Cleanup(n.Stop)
	return n
}

// autoLock makes an identity.Manager lock an identity automatically
// (five spam in the default window) with every event passed to n.
func autoLock(t *testing.T, o Options, clock *fakeClock, n func() *Notifier) *identity.Manager {
	t.Helper()
	// The locks live in bbolt whatever the outbox's backend: only the
	// outbox is under test.
	db := o.DB
	if db == nil {
		db = testDB(t)
	}
	m, err := identity.Open(db, identity.Options{Now: clock.Now, FlushInterval: -1, OnEvent: func(ev identity.Event) { n().OnIdentityEvent(ev) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for i := range 5 {
		o := identity.Observation{Domain: "out.example.net", User: "webhost1", Identity: "alice@customer.example",
			TxID: "01JTX00000000000000000000" + string(rune('0'+i)), Class: identity.ClassSpam, Recipients: 1}
		if _, err := m.Observe(context.Background(), o, identity.DefaultPolicy()); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func testWebhookAutoLockReceiverDownThenUp(t *testing.T, be testBackend) {
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	rcv.down.Store(true)
	reg := prometheus.NewRegistry()
	o := be.with(t, Options{URL: rcv.srv.URL + "/hook", Secret: testSecret, Now: clock.Now, Registerer: reg,
		RetryInitial: 30 * time.Second, RetryMax: 5 * time.Minute, MaxAge: time.Hour})
	n := newNotifier(t, o)
	autoLock(t, o, clock, func() *Notifier { return n })
	ctx := context.Background()

	next, err := n.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(30 * time.Second); !next.Equal(want) {
		t.Errorf("after a failure: next attempt %v, want %v", next, want)
	}
	if p, _ := n.Pending(); p != 1 || len(rcv.received()) != 0 {
		t.Fatalf("while down: pending %d, received %d; want 1, 0", p, len(rcv.received()))
	}
	// Not due yet: no attempt.
	clock.Advance(10 * time.Second)
	attempts := rcv.attemptCount()
	if _, err := n.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if rcv.attemptCount() != attempts {
		t.Errorf("attempted before the backoff passed")
	}
	rcv.down.Store(false)
	clock.Advance(25 * time.Second)
	if _, err := n.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Round(ctx); err != nil {
		t.Fatal(err)
	}
	got := rcv.received()
	if len(got) != 1 {
		t.Fatalf("got %d events, want exactly 1", len(got))
	}
	ev := got[0]
	if ev.Type != EventAutoLock || ev.Domain != "out.example.net" || ev.Identity != "alice@customer.example" || ev.User != "webhost1" ||
		len(ev.TxIDs) != 5 || ev.Lock == nil || ev.Lock.ID == "" || ev.Lock.Actor != "auto" || ev.Lock.Counter != "spam" ||
		ev.Lock.Threshold != 5 || ev.Lock.Expires.IsZero() || ev.ID == "" || !strings.Contains(ev.Summary, "locked automatically") {
		t.Errorf("got event %+v lock %+v", ev, ev.Lock)
	}
	if len(rcv.bad) != 0 {
		t.Errorf("receiver refused requests: %v", rcv.bad)
	}
	want := `
# HELP outguard_notify_outbox_depth Notifications (webhook requests and mails) waiting in the outbox.
# TYPE outguard_notify_outbox_depth gauge
outguard_notify_outbox_depth 0
# HELP outguard_notify_sent_total Notifications delivered, by channel.
# TYPE outguard_notify_sent_total counter
outguard_notify_sent_total{channel="mail"} 0
outguard_notify_sent_total{channel="webhook"} 1
# HELP outguard_notify_failures_total Notification delivery attempts that failed and will be retried, by channel.
# TYPE outguard_notify_failures_total counter
outguard_notify_failures_total{channel="mail"} 0
outguard_notify_failures_total{channel="webhook"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_notify_outbox_depth", "outguard_notify_sent_total", "outguard_notify_failures_total"); err != nil {
		t.Error(err)
	}
}

func testNotifierSurvivesRestart(t *testing.T, be testBackend) {
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	handle := be.fresh(t)
	o := Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now}
	be.use(t, handle, "node-a", &o)
	n1, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Notify(context.Background(), Event{Type: EventLock, Domain: "d", User: "u", Lock: &Lock{Actor: "root", Reason: "x"}}); err != nil {
		t.Fatal(err)
	}
	n1.Stop()
	if err := n1.Notify(context.Background(), Event{Type: EventLock}); !errors.Is(err, ErrStopped) {
		t.Errorf("Notify after Stop: got %v, want ErrStopped", err)
	}
	closeStore(o)

	o.DB, o.Postgres = nil, nil
	be.use(t, handle, "node-a", &o)
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	n2 := newNotifier(t, o)
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP outguard_notify_outbox_depth Notifications (webhook requests and mails) waiting in the outbox.\n# TYPE outguard_notify_outbox_depth gauge\noutguard_notify_outbox_depth 1\n"), "outguard_notify_outbox_depth"); err != nil {
		t.Error(err)
	}
	if _, err := n2.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rcv.received(); len(got) != 1 || got[0].User != "u" || !strings.Contains(got[0].Summary, "locked by root") {
		t.Errorf("after restart: got %+v", got)
	}
}

func testNotifierExpiry(t *testing.T, be testBackend) {
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	rcv.down.Store(true)
	reg := prometheus.NewRegistry()
	n := newNotifier(t, be.with(t, Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now, Registerer: reg,
		RetryInitial: time.Minute, RetryMax: 10 * time.Minute, MaxAge: time.Hour}))
	if err := n.Notify(context.Background(), Event{Type: EventUnlock, Domain: "d", User: "u"}); err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	for clock.Now().Sub(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) <= time.Hour {
		next, err := n.Round(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if next.IsZero() {
			break
		}
		waits = append(waits, next.Sub(clock.Now()))
		clock.Advance(next.Sub(clock.Now()))
	}
	if _, err := n.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantWaits := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute}
	for i, w := range wantWaits {
		if i >= len(waits) || waits[i] != w {
			t.Fatalf("backoff: got %v, want it to start %v", waits, wantWaits)
		}
	}
	if p, _ := n.Pending(); p != 0 {
		t.Errorf("pending after expiry: got %d, want 0", p)
	}
	want := `
# HELP outguard_notify_expired_total Notifications dropped undelivered after their maximum age, by channel.
# TYPE outguard_notify_expired_total counter
outguard_notify_expired_total{channel="mail"} 0
outguard_notify_expired_total{channel="webhook"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_notify_expired_total"); err != nil {
		t.Error(err)
	}
}

func testNotifierEventFilterAndLimits(t *testing.T, be testBackend) {
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	reg := prometheus.NewRegistry()
	n := newNotifier(t, be.with(t, Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now, Registerer: reg,
		Events: []EventType{EventAutoLock, EventOutboxExpired}, MaxPending: 2}))
	ctx := context.Background()
	for _, tc := range []struct {
		ev      Event
		wantErr error
		pending int
	}{
		{Event{Type: EventLock}, nil, 0},
		{Event{Type: EventAutoLock}, nil, 1},
		{Event{Type: EventOutboxExpired}, nil, 2},
		{Event{Type: EventAutoLock}, ErrFull, 2},
		{Event{}, ErrInvalid, 2},
	} {
		err := n.Notify(ctx, tc.ev)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%q: got %v, want %v", tc.ev.Type, err, tc.wantErr)
		}
		if p, _ := n.Pending(); p != tc.pending {
			t.Errorf("%q: got %d pending, want %d", tc.ev.Type, p, tc.pending)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP outguard_notify_dropped_total Events dropped because the notification outbox was full.\n# TYPE outguard_notify_dropped_total counter\noutguard_notify_dropped_total 1\n"), "outguard_notify_dropped_total"); err != nil {
		t.Error(err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	db := testDB(t)
	for name, o := range map[string]Options{
		"no db":             {URL: "https://h.example/x", Secret: testSecret},
		"bad scheme":        {DB: db, URL: "ftp://h.example/x", Secret: testSecret},
		"no host":           {DB: db, URL: "https:///x", Secret: testSecret},
		"no secret":         {DB: db, URL: "https://h.example/x"},
		"mail without from": {DB: db, SendMail: func(context.Context, string, []byte) error { return nil }, AbuseAddress: func(string, string) string { return "" }},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(o); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// fakeMail records mails.
type fakeMail struct {
	mu   sync.Mutex
	to   []string
	raw  [][]byte
	fail int
}

func (f *fakeMail) send(ctx context.Context, to string, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("relay down")
	}
	f.to = append(f.to, to)
	f.raw = append(f.raw, raw)
	return nil
}

func testMailOnAutoLock(t *testing.T, be testBackend) {
	clock := newClock()
	fm := &fakeMail{fail: 1}
	o := be.with(t, Options{Now: clock.Now, SendMail: fm.send,
		AbuseAddress: func(domain, user string) string {
			if domain == "out.example.net" && user == "webhost1" {
				return "abuse@out.example.net"
			}
			return ""
		},
		Mail: MailOptions{From: "outguard@mta.example.net", Hostname: "mta.example.net"}, RetryInitial: time.Second})
	n := newNotifier(t, o)
	m := autoLock(t, o, clock, func() *Notifier { return n })
	// A manual lock is not mailed.
	if _, err := m.Lock(context.Background(), identity.LockRequest{Target: identity.UserTarget("out.example.net", "webhost1"), Reason: "x", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := n.Round(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
	}
	if len(fm.raw) != 1 || fm.to[0] != "abuse@out.example.net" {
		t.Fatalf("got %d mails to %v, want 1 to abuse@out.example.net", len(fm.raw), fm.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(fm.raw[0])))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"Auto-Submitted": "auto-generated",
		"From":           "outguard@mta.example.net",
		"To":             "abuse@out.example.net",
		"Content-Type":   "text/plain; charset=utf-8",
	} {
		if got := msg.Header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	subj, _ := new(mimeDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if !strings.Contains(subj, "alice@customer.example") {
		t.Errorf("subject %q does not name the identity", subj)
	}
	body := string(fm.raw[0])
	for _, want := range []string{"01JTX000000000000000000000", "outguard unlock identity alice@customer.example --domain out.example.net"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func testStartDeliversInBackground(t *testing.T, be testBackend) {
	rcv := newReceiver(t, time.Now)
	rcv.down.Store(true)
	n := newNotifier(t, be.with(t, Options{URL: rcv.srv.URL, Secret: testSecret, RetryInitial: 20 * time.Millisecond, RetryMax: 20 * time.Millisecond}))
	n.Start()
	if err := n.Notify(context.Background(), Event{Type: EventWouldLock, Domain: "d", Identity: "i"}); err != nil {
		t.Fatal(err)
	}
	// The first attempt fails; let the receiver come back after it.
	deadline := time.After(10 * time.Second)
	for {
		if rcv.attemptCount() > 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("no attempt within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	rcv.down.Store(false)
	select {
	case ev := <-rcv.got:
		if ev.Type != EventWouldLock {
			t.Errorf("got %q", ev.Type)
		}
	case <-deadline:
		t.Fatal("not delivered within 10s")
	}
	// The receiver saw it before answering; wait for the outbox update.
	for {
		if p, _ := n.Pending(); p == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("still pending 10s after delivery")
		case <-time.After(5 * time.Millisecond):
		}
	}
	n.Stop()
	n.Stop()
}

func TestFromIdentity(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tgt := identity.IdentityTarget("out.example.net", "alice")
	lock := &identity.Lock{Target: tgt, Reason: "spam run", Actor: "root", Start: at, Expires: at.Add(time.Hour)}
	unlocked := *lock
	unlocked.Unlocked, unlocked.UnlockedBy, unlocked.UnlockReason = at.Add(time.Minute), "ops", "cleaned"
	ev := identity.Evidence{User: "webhost1", Counter: "virus", Count: 1, Threshold: 1, Window: 10 * time.Minute, TxIDs: []string{"tx1"}}
	for _, tc := range []struct {
		name string
		in   identity.Event
		want string
	}{
		{"lock", identity.Event{Type: identity.EventLock, Target: tgt, At: at, Lock: lock}, "identity alice (out.example.net) locked by root: spam run"},
		{"unlock", identity.Event{Type: identity.EventUnlock, Target: tgt, At: at, Lock: &unlocked}, "identity alice (out.example.net) unlocked by ops: cleaned"},
		{"expire", identity.Event{Type: identity.EventExpire, Target: tgt, At: at, Lock: lock}, "identity alice (out.example.net): temporary lock expired"},
		{"would-lock", identity.Event{Type: identity.EventWouldLock, Target: tgt, At: at, WouldLock: &identity.WouldLock{ID: 1, Target: tgt, At: at, Evidence: ev}},
			"identity alice (out.example.net) would have been locked (monitor mode): 1 virus within 10m0s (threshold 1)"},
		{"user lock", identity.Event{Type: identity.EventLock, Target: identity.UserTarget("out.example.net", "webhost1"), At: at,
			Lock: &identity.Lock{Target: identity.UserTarget("out.example.net", "webhost1"), Actor: "root", Reason: "r", Start: at}},
			"user webhost1 (out.example.net) locked by root: r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromIdentity(tc.in)
			if got.Summary != tc.want {
				t.Errorf("got summary %q, want %q", got.Summary, tc.want)
			}
			if got.Lock == nil || got.Lock.ID == "" || string(got.Type) != string(tc.in.Type) {
				t.Errorf("got %+v", got)
			}
		})
	}
	a, b := FromIdentity(identity.Event{Type: identity.EventLock, Target: tgt, Lock: lock}), FromIdentity(identity.Event{Type: identity.EventUnlock, Target: tgt, Lock: &unlocked})
	if a.Lock.ID != b.Lock.ID {
		t.Errorf("lock and unlock of one lock: ids %s and %s differ", a.Lock.ID, b.Lock.ID)
	}
	x := FromOutboxExpiry(arf.Entry{Report: arf.Report{ID: "01JREP", To: []string{"abuse@example.net"}, Created: at}, Attempts: 7, Expired: at.Add(5 * 24 * time.Hour)})
	if x.Type != EventOutboxExpired || x.Report.ID != "01JREP" || x.Summary != "ARF report 01JREP to abuse@example.net expired undelivered after 7 attempts" {
		t.Errorf("outbox expiry: got %+v", x)
	}
}

func testRoundStopsAtADeadReceiver(t *testing.T, be testBackend) {
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	rcv.down.Store(true)
	n := newNotifier(t, be.with(t, Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now, RetryInitial: time.Minute}))
	for _, id := range []string{"a", "b", "c"} {
		if err := n.Notify(context.Background(), Event{ID: id, Type: EventLock}); err != nil {
			t.Fatal(err)
		}
	}
	next, err := n.Round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rcv.attemptCount() != 1 || !next.Equal(clock.Now().Add(time.Minute)) {
		t.Errorf("dead receiver: got %d attempts, next %v; want 1 attempt, next in 1m", rcv.attemptCount(), next)
	}
	rcv.down.Store(false)
	clock.Advance(time.Minute)
	if _, err := n.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range rcv.received() {
		ids = append(ids, ev.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("after recovery: got %v, want a,b,c in order", ids)
	}
}

// testNotifierJitter checks that each failed delivery comes back between
// half and all of its backoff (1m, 2m, 4m, ... up to 10m), not always at
// the full backoff.
func testNotifierJitter(t *testing.T, be testBackend) {
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	rcv.down.Store(true)
	n := newNotifier(t, be.with(t, Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now,
		RetryInitial: time.Minute, RetryMax: 10 * time.Minute, MaxAge: 24 * time.Hour}))
	n.retry.Rand = nil // the real jitter
	if err := n.Notify(context.Background(), Event{Type: EventUnlock, Domain: "d", User: "u"}); err != nil {
		t.Fatal(err)
	}
	full := 0
	for i, backoff := range []time.Duration{1, 2, 4, 8, 10, 10, 10, 10} {
		backoff *= time.Minute
		next, err := n.Round(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		wait := next.Sub(clock.Now())
		if wait < backoff/2 || wait > backoff {
			t.Errorf("attempt %d: next in %v, want %v to %v", i+1, wait, backoff/2, backoff)
		}
		if wait == backoff {
			full++
		}
		clock.Advance(wait)
	}
	if full == 8 {
		t.Error("every retry waited its full backoff: no jitter")
	}
}
