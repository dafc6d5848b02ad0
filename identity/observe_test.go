package identity

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const dom = "out.example.net"

func spam(ident, tx string) Observation {
	return Observation{Domain: dom, User: "web1", Identity: ident, TxID: tx, Class: ClassSpam, Recipients: 1}
}

func observe(t *testing.T, m *Manager, o Observation, p Policy) Outcome {
	t.Helper()
	out, err := m.Observe(context.Background(), o, p)
	if err != nil {
		t.Fatalf("Observe(%+v): %v", o, err)
	}
	return out
}

func testAutoLockFiveSpamInTenMinutes(t *testing.T, be testBackend) {
	clock := newClock()
	reg := prometheus.NewPedanticRegistry()
	var events eventLog
	m, _ := testManager(t, be, clock, Options{Registerer: reg, OnEvent: events.add})
	p := DefaultPolicy()

	var txs []string
	for i := 1; i <= 5; i++ {
		tx := fmt.Sprintf("tx%d", i)
		txs = append(txs, tx)
		// Clean mail in between counts toward nothing that locks.
		if out := observe(t, m, Observation{Domain: dom, Identity: "alice", TxID: "c" + tx, Class: ClassClean, Recipients: 3}, p); out.Locked != nil {
			t.Fatalf("clean message locked: %+v", out.Locked)
		}
		if _, ok := m.CheckIdentity(dom, "alice"); ok {
			t.Fatalf("locked before the 5th spam (after %d)", i-1)
		}
		clock.Advance(2 * time.Minute)
		out := observe(t, m, spam("alice", tx), p)
		if i < 5 && out.Locked != nil {
			t.Fatalf("locked after %d spam", i)
		}
		if i == 5 {
			if out.Locked == nil {
				t.Fatalf("5 spam in 10 minutes did not lock")
			}
			l := out.Locked
			if l.Actor != ActorAuto || !l.Automatic || l.Kind != KindIdentity || l.Name != "alice" {
				t.Errorf("got lock %+v, want an automatic identity lock on alice", l)
			}
			if got, want := l.Evidence.TxIDs, txs; !reflect.DeepEqual(got, want) {
				t.Errorf("evidence tx ids: got %q, want %q", got, want)
			}
			if e := l.Evidence; e.Counter != "spam" || e.Count != 5 || e.Threshold != 5 || e.Window != 10*time.Minute || e.User != "web1" {
				t.Errorf("evidence: got %+v, want spam 5/5 in 10m by web1", e)
			}
			if want := clock.Now().Add(DefaultLockDuration); !l.Expires.Equal(want) {
				t.Errorf("expires: got %v, want %v", l.Expires, want)
			}
		}
	}
	// The 6th message is refused after DATA.
	if l, ok := m.CheckIdentity(dom, "ALICE"); !ok || l.Evidence == nil || len(l.Evidence.TxIDs) != 5 {
		t.Errorf("6th check: got (%+v, %v), want the lock with its evidence", l, ok)
	}
	if _, ok := m.CheckIdentity(dom, "bob"); ok {
		t.Errorf("another identity is locked")
	}
	// The expired temporary lock lets mail through again.
	clock.Advance(DefaultLockDuration)
	if _, ok := m.CheckIdentity(dom, "alice"); ok {
		t.Errorf("still locked after the lock duration")
	}
	if got, want := events.types(), []EventType{EventAutoLock}; !reflect.DeepEqual(got, want) {
		t.Errorf("events: got %v, want %v", got, want)
	}
	want := `
# HELP outguard_automatic_locks_total Identities locked automatically on crossing a threshold.
# TYPE outguard_automatic_locks_total counter
outguard_automatic_locks_total 1
# HELP outguard_lock_refusals_total Transactions refused because of a lock, by kind (user or identity).
# TYPE outguard_lock_refusals_total counter
outguard_lock_refusals_total{kind="identity"} 1
outguard_lock_refusals_total{kind="user"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_automatic_locks_total", "outguard_lock_refusals_total"); err != nil {
		t.Error(err)
	}
}

func testSlidingWindow(t *testing.T, be testBackend) {
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	p := DefaultPolicy()
	for i := 0; i < 4; i++ {
		observe(t, m, spam("carol", fmt.Sprint("old", i)), p)
	}
	clock.Advance(10 * time.Minute) // the four fall out of the window
	for i := 0; i < 4; i++ {
		if out := observe(t, m, spam("carol", fmt.Sprint("new", i)), p); out.Locked != nil {
			t.Fatalf("locked with spam outside the window: %+v", out.Locked.Evidence)
		}
		clock.Advance(time.Minute)
	}
	out := observe(t, m, spam("carol", "new4"), p)
	if out.Locked == nil {
		t.Fatal("5 spam within the window did not lock")
	}
	if got, want := out.Locked.Evidence.TxIDs, []string{"new0", "new1", "new2", "new3", "new4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("evidence: got %q, want %q", got, want)
	}
}

func testThresholdsPerCounter(t *testing.T, be testBackend) {
	lim := func(n int, w time.Duration) Limit { return Limit{Count: n, Window: w} }
	tests := []struct {
		name       string
		th         Thresholds
		obs        []Observation
		wantAt     int // index of the observation that locks, -1 none
		wantActor  string
		wantCount  string
		wantTxTail string
	}{
		{"phishing", Thresholds{CounterPhishing: lim(2, time.Minute)}, []Observation{
			{Identity: "i", TxID: "a", Class: ClassPhishing}, {Identity: "i", TxID: "b", Class: ClassPhishing}}, 1, ActorAuto, "phishing", "b"},
		{"virus", Thresholds{CounterVirus: lim(1, time.Minute)}, []Observation{
			{Identity: "i", TxID: "a", Class: ClassClean}, {Identity: "i", TxID: "v", Class: ClassVirus}}, 1, ActorAuto, "virus", "v"},
		{"complaints lock as feedback", Thresholds{CounterComplaints: lim(2, time.Hour)}, []Observation{
			{Identity: "i", TxID: "a", Complaint: true}, {Identity: "i", TxID: "b", Complaint: true}}, 1, ActorFeedback, "complaints", "b"},
		{"messages", Thresholds{CounterMessages: lim(3, time.Hour)}, []Observation{
			{Identity: "i", TxID: "a", Class: ClassClean}, {Identity: "i", TxID: "c", Complaint: true},
			{Identity: "i", TxID: "b", Class: ClassClean}, {Identity: "i", TxID: "d", Class: ClassSpam}}, 3, ActorAuto, "messages", "d"},
		{"recipients", Thresholds{CounterRecipients: lim(10, time.Hour)}, []Observation{
			{Identity: "i", TxID: "a", Class: ClassClean, Recipients: 6}, {Identity: "i", TxID: "b", Class: ClassClean, Recipients: 4}}, 1, ActorAuto, "recipients", "b"},
		{"all off", Thresholds{}, []Observation{
			{Identity: "i", TxID: "a", Class: ClassVirus}, {Identity: "i", TxID: "b", Class: ClassVirus}}, -1, "", "", ""},
		{"no identity is never counted", DefaultThresholds(), []Observation{
			{TxID: "a", Class: ClassVirus}, {TxID: "b", Class: ClassVirus}}, -1, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := testManager(t, be, newClock(), Options{})
			p := Policy{Auto: true, Thresholds: tc.th, LockDuration: time.Hour}
			for i, o := range tc.obs {
				o.Domain = dom
				out := observe(t, m, o, p)
				if (out.Locked != nil) != (i == tc.wantAt) {
					t.Fatalf("observation %d: got lock %v, want lock at %d", i, out.Locked, tc.wantAt)
				}
				if out.Locked != nil {
					ev := out.Locked.Evidence
					if out.Locked.Actor != tc.wantActor || ev.Counter != tc.wantCount || ev.TxIDs[len(ev.TxIDs)-1] != tc.wantTxTail {
						t.Errorf("got actor %q counter %q tx %q, want %q %q ...%q", out.Locked.Actor, ev.Counter, ev.TxIDs, tc.wantActor, tc.wantCount, tc.wantTxTail)
					}
				}
			}
		})
	}
}

func testObserveOff(t *testing.T, be testBackend) {
	m, db := testManager(t, be, newClock(), Options{})
	p := Policy{Thresholds: DefaultThresholds()} // neither Auto nor Monitor
	for i := 0; i < 10; i++ {
		if out := observe(t, m, spam("dave", fmt.Sprint(i)), p); out != (Outcome{}) {
			t.Fatalf("got %+v, want nothing", out)
		}
	}
	if _, err := m.Usage(context.Background(), dom, "dave"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Usage: got %v, want ErrNotFound (nothing counted)", err)
	}
	_ = db
}

func testObserveInvalid(t *testing.T, be testBackend) {
	m, _ := testManager(t, be, newClock(), Options{})
	tests := []struct {
		name string
		o    Observation
	}{
		{"unknown class", Observation{Domain: dom, Identity: "i", Class: "ham"}},
		{"neither message nor complaint", Observation{Domain: dom, Identity: "i"}},
		{"negative recipients", Observation{Domain: dom, Identity: "i", Class: ClassClean, Recipients: -1}},
		{"identity without domain", Observation{Identity: "i", Class: ClassClean}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Observe(context.Background(), tc.o, DefaultPolicy()); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// lockCycle sends spam until alice is locked and returns the lock.
func lockCycle(t *testing.T, m *Manager, p Policy, cycle int) *Lock {
	t.Helper()
	for i := 0; i < p.Thresholds[CounterSpam].Count; i++ {
		out := observe(t, m, spam("alice", fmt.Sprintf("c%d-%d", cycle, i)), p)
		if out.Locked != nil {
			return out.Locked
		}
	}
	t.Fatalf("cycle %d: no lock", cycle)
	return nil
}

func testEscalation(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	p := DefaultPolicy()
	p.EscalateAfter = 3
	target := IdentityTarget(dom, "alice")
	for cycle := 1; cycle <= p.EscalateAfter; cycle++ {
		l := lockCycle(t, m, p, cycle)
		if l.Expires.IsZero() || l.Escalated {
			t.Fatalf("automatic lock %d: got permanent, want temporary", cycle)
		}
		if cycle == 2 {
			// An admin unlock of an automatic lock counts too.
			if _, err := m.Unlock(ctx, target, "admin", "customer says sorry"); err != nil {
				t.Fatal(err)
			}
		} else {
			clock.Advance(p.LockDuration) // expires; counted without a sweep
		}
	}
	if n, err := m.AutoLockCount(ctx, target); err != nil || n != 3 {
		t.Errorf("AutoLockCount: got (%d, %v), want 3", n, err)
	}
	l := lockCycle(t, m, p, 4)
	if !l.Expires.IsZero() || !l.Escalated {
		t.Fatalf("automatic lock %d: got %+v, want permanent and escalated", p.EscalateAfter+1, l)
	}
	clock.Advance(365 * 24 * time.Hour)
	if _, ok := m.CheckIdentity(dom, "alice"); !ok {
		t.Errorf("escalated lock expired")
	}
	// Manual locks are never escalated and do not count.
	bob := IdentityTarget(dom, "bob")
	for i := 0; i < 5; i++ {
		if _, err := m.Lock(ctx, LockRequest{Target: bob, Actor: "admin", Duration: time.Minute}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	if n, _ := m.AutoLockCount(ctx, bob); n != 0 {
		t.Errorf("manual locks counted toward escalation: %d", n)
	}
}

func testPermanentAutoLock(t *testing.T, be testBackend) {
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	p := DefaultPolicy()
	p.LockDuration = 0
	l := lockCycle(t, m, p, 1)
	if !l.Expires.IsZero() || l.Escalated {
		t.Errorf("got %+v, want permanent, not escalated", l)
	}
}

func testAlreadyLockedIsNotRelocked(t *testing.T, be testBackend) {
	ctx := context.Background()
	m, _ := testManager(t, be, newClock(), Options{})
	if _, err := m.Lock(ctx, LockRequest{Target: IdentityTarget(dom, "alice"), Actor: "admin", Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	var out Outcome
	for i := 0; i < 5; i++ {
		out = observe(t, m, spam("alice", fmt.Sprint(i)), DefaultPolicy())
	}
	if out.Locked != nil || out.Crossed == nil || len(out.Crossed.TxIDs) != 5 {
		t.Errorf("got %+v, want no new lock and the crossing's evidence", out)
	}
	if l, _ := m.Lookup(IdentityTarget(dom, "alice")); l.Reason != "manual" {
		t.Errorf("lock replaced: %+v", l)
	}
}

func testMonitorMode(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	reg := prometheus.NewPedanticRegistry()
	var events eventLog
	m, _ := testManager(t, be, clock, Options{Registerer: reg, OnEvent: events.add})
	p := DefaultPolicy()
	p.Monitor = true
	var wl *WouldLock
	for i := 0; i < 12; i++ {
		out := observe(t, m, spam("mallory", fmt.Sprint("tx", i)), p)
		if out.Locked != nil {
			t.Fatalf("monitor mode locked")
		}
		if out.WouldLock != nil && wl == nil {
			wl = out.WouldLock
			if i != 4 {
				t.Errorf("would-lock at spam %d, want at the 5th", i+1)
			}
		}
		clock.Advance(time.Second)
	}
	if wl == nil {
		t.Fatal("no would-lock recorded")
	}
	if got, want := wl.Evidence.TxIDs, []string{"tx0", "tx1", "tx2", "tx3", "tx4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("evidence: got %q, want %q", got, want)
	}
	if _, ok := m.CheckIdentity(dom, "mallory"); ok {
		t.Errorf("monitor mode: identity locked")
	}
	list, err := m.WouldLocks(ctx, WouldLockFilter{Domain: dom, Identity: "Mallory"})
	if err != nil {
		t.Fatal(err)
	}
	// 12 spam: crossings at the 5th and the 10th.
	if len(list) != 2 || list[0].Evidence.TxIDs[0] != "tx5" || list[1].ID != wl.ID {
		t.Errorf("WouldLocks: got %+v, want 2, newest first", list)
	}
	if list, _ := m.WouldLocks(ctx, WouldLockFilter{Identity: "other"}); len(list) != 0 {
		t.Errorf("filter by identity: got %d, want 0", len(list))
	}
	if list, _ := m.WouldLocks(ctx, WouldLockFilter{Limit: 1}); len(list) != 1 {
		t.Errorf("limit: got %d, want 1", len(list))
	}
	if got, want := events.types(), []EventType{EventWouldLock, EventWouldLock}; !reflect.DeepEqual(got, want) {
		t.Errorf("events: got %v, want %v", got, want)
	}
	want := `
# HELP outguard_automatic_locks_total Identities locked automatically on crossing a threshold.
# TYPE outguard_automatic_locks_total counter
outguard_automatic_locks_total 0
# HELP outguard_would_have_locked_total Threshold crossings recorded in monitor mode instead of a lock.
# TYPE outguard_would_have_locked_total counter
outguard_would_have_locked_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_automatic_locks_total", "outguard_would_have_locked_total"); err != nil {
		t.Error(err)
	}
}

func testWouldLocksBounded(t *testing.T, be testBackend) {
	ctx := context.Background()
	m, _ := testManager(t, be, newClock(), Options{MaxWouldLocks: 2})
	p := Policy{Monitor: true, Thresholds: Thresholds{CounterVirus: {Count: 1, Window: time.Minute}}}
	for i := 0; i < 5; i++ {
		observe(t, m, Observation{Domain: dom, Identity: "v", TxID: fmt.Sprint(i), Class: ClassVirus}, p)
	}
	list, err := m.WouldLocks(ctx, WouldLockFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Evidence.TxIDs[0] != "4" || list[1].Evidence.TxIDs[0] != "3" {
		t.Errorf("got %+v, want the 2 newest", list)
	}
}

func testUsage(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	p := DefaultPolicy()
	p.Thresholds[CounterMessages] = Limit{Count: 100, Window: time.Hour}
	observe(t, m, spam("erin", "1"), p)
	observe(t, m, spam("erin", "2"), p)
	observe(t, m, Observation{Domain: dom, User: "web2", Identity: "erin", TxID: "3", Class: ClassClean, Recipients: 4}, p)
	u, err := m.Usage(ctx, dom, "ERIN")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for _, c := range u.Counters {
		got[c.Counter] = [2]int{c.Count, c.Threshold}
	}
	want := map[string][2]int{"spam": {2, 5}, "phishing": {0, 2}, "virus": {0, 1}, "complaints": {0, 3}, "messages": {3, 100}, "recipients": {0, 0}, "suspect": {0, 10},
		"refused": {0, 20}, "refused_policy": {0, 0}, "refused_unknown": {0, 0}, "refused_other": {0, 0}, "refused_after_data": {0, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if u.User != "web2" || u.Identity != "erin" || u.Lock != nil {
		t.Errorf("got user %q identity %q lock %v", u.User, u.Identity, u.Lock)
	}
	clock.Advance(10 * time.Minute)
	u, _ = m.Usage(ctx, dom, "erin")
	if u.Counters[CounterSpam].Count != 0 || u.Counters[CounterMessages].Count != 3 {
		t.Errorf("after 10 minutes: got spam %d messages %d, want 0 and 3", u.Counters[CounterSpam].Count, u.Counters[CounterMessages].Count)
	}
}

func testWindowsWriteBehindAndReopen(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	db, path := testDB(t, be)
	m := openManager(t, db, clock, Options{})
	p := DefaultPolicy()
	for i := 0; i < 4; i++ {
		observe(t, m, spam("frank", fmt.Sprint("tx", i)), p)
	}
	if n := bucketKeys(t, db, bucketWindows); n != 0 {
		t.Errorf("window written per message: %d keys before the flush, want 0", n)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := bucketKeys(t, db, bucketWindows); n != 1 {
		t.Errorf("after Flush: got %d window keys, want 1", n)
	}
	observe(t, m, Observation{Domain: dom, Identity: "gina", TxID: "g", Class: ClassClean}, p)
	// Close flushes the rest.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	closeStore(db)

	clock.Advance(time.Minute)
	db2 := openDB(t, be, path)
	m2 := openManager(t, db2, clock, Options{})
	u, err := m2.Usage(ctx, dom, "frank")
	if err != nil || u.Counters[CounterSpam].Count != 4 {
		t.Fatalf("Usage after reopen: got (%+v, %v), want 4 spam", u, err)
	}
	out := observe(t, m2, spam("frank", "tx4"), p)
	if out.Locked == nil {
		t.Fatal("5th spam after reopen did not lock: window counts lost")
	}
	if got, want := out.Locked.Evidence.TxIDs, []string{"tx0", "tx1", "tx2", "tx3", "tx4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("evidence: got %q, want %q", got, want)
	}
	// Idle windows are forgotten, in memory and on disk.
	clock.Advance(time.Hour)
	if err := m2.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := bucketKeys(t, db2, bucketWindows); n != 0 {
		t.Errorf("idle windows kept: %d keys", n)
	}
	if _, err := m2.Usage(ctx, dom, "gina"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Usage of a forgotten identity: got %v, want ErrNotFound", err)
	}
}

func testReopenDropsStaleWindows(t *testing.T, be testBackend) {
	clock := newClock()
	db, path := testDB(t, be)
	m := openManager(t, db, clock, Options{})
	observe(t, m, spam("old", "1"), DefaultPolicy())
	m.Close()
	closeStore(db)
	clock.Advance(time.Hour)
	db2 := openDB(t, be, path)
	openManager(t, db2, clock, Options{})
	if n := bucketKeys(t, db2, bucketWindows); n != 0 {
		t.Errorf("stale window kept at Open: %d keys", n)
	}
}

// TestRefusals checks the next hop's refusals: a list-washing run (many
// recipients refused 5.1.1) locks once both the count and the share are
// reached, with the classes and the share in the evidence; a sender whose
// few refusals are a small share of a big mailing does not lock; messages
// refused after DATA lock on their own counter.
func testRefusals(t *testing.T, be testBackend) {
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	p := DefaultPolicy()
	send := func(id, tx string, accepted, unknown, policy int) Outcome {
		t.Helper()
		var r Refusals
		r.Add(1, unknown)
		r.Add(7, policy)
		return observe(t, m, Observation{Domain: dom, User: "web", Identity: id, TxID: tx, Class: ClassClean, Recipients: accepted, Refused: r}, p)
	}
	// A big newsletter: 2,000 tried, 25 unknown (1.25%): never locks.
	for i := range 20 {
		if out := send("news", fmt.Sprint("n", i), 99, 1, 0); out.Locked != nil {
			t.Fatalf("newsletter locked at message %d: %+v", i, out.Locked.Evidence)
		}
	}
	// List washing: 5 tried per message, 3 unknown. Locked when 20
	// refusals are reached (the share, 60%, is above 30% all along).
	var locked *Lock
	for i := range 10 {
		out := send("washer", fmt.Sprint("w", i), 2, 3, 0)
		if out.Locked != nil {
			locked = out.Locked
			if i != 6 {
				t.Errorf("locked at message %d, want the 7th (21 refused)", i+1)
			}
			break
		}
	}
	if locked == nil {
		t.Fatal("list washing did not lock")
	}
	ev := locked.Evidence
	if ev.Counter != "refused" || ev.Count != 21 || ev.Threshold != 20 || ev.Counts["refused_unknown"] != 21 || ev.Counts["tried"] != 35 {
		t.Errorf("evidence %+v", ev)
	}
	// Enough refusals but under 30%: 40 refused of 200 tried (20%).
	for i := range 4 {
		if out := send("mixed", fmt.Sprint("m", i), 40, 5, 5); out.Locked != nil {
			t.Fatalf("20%% refused locked: %+v", out.Locked.Evidence)
		}
	}
	// Three messages refused after DATA (5.7.1, as spam).
	for i := range 3 {
		r := Refusals{AfterData: true, AfterDataRecipients: 1}
		r.Add(7, 1)
		out := observe(t, m, Observation{Domain: dom, User: "web", Identity: "spammer", TxID: fmt.Sprint("s", i), Class: ClassClean, Recipients: 1, Refused: r}, p)
		if (out.Locked != nil) != (i == 2) {
			t.Fatalf("message %d refused after DATA: locked %v", i+1, out.Locked != nil)
		}
		if out.Locked != nil && (out.Locked.Evidence.Counter != "refused_after_data" || len(out.Locked.Evidence.TxIDs) != 3) {
			t.Errorf("evidence %+v", out.Locked.Evidence)
		}
	}
}

// TestUsageOfLockedIdentity: once an identity's windows are forgotten
// (it sends nothing that is counted while locked), Usage still answers,
// with its lock and the counts that led to it.
func testUsageOfLockedIdentity(t *testing.T, be testBackend) {
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	p := DefaultPolicy()
	var locked bool
	for i := range 5 {
		out := observe(t, m, spam("frank", fmt.Sprint(i)), p)
		locked = locked || out.Locked != nil
	}
	if !locked {
		t.Fatal("5 spam did not lock")
	}
	clock.Advance(30 * time.Minute) // past every window, within the 1h lock
	m.tick()
	key := windowKey(dom, "frank")
	sh := m.shardOf(key)
	sh.mu.Lock()
	_, kept := sh.windows[key]
	sh.mu.Unlock()
	if kept {
		t.Fatal("the idle window was not forgotten; the test would prove nothing")
	}
	u, err := m.Usage(context.Background(), dom, "frank")
	if err != nil {
		t.Fatalf("Usage of a locked identity: %v", err)
	}
	if u.Lock == nil || u.Lock.Evidence == nil || u.Lock.Evidence.Counts["spam"] != 5 {
		t.Errorf("usage %+v, want the lock with its evidence", u)
	}
}
