package identity

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testLockUnlock(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	var events eventLog
	m, _ := testManager(t, be, clock, Options{OnEvent: events.add})
	user := UserTarget("out.example.net", "web1")

	if _, err := m.Get(ctx, user); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before any lock: got %v, want ErrNotFound", err)
	}
	if _, err := m.Unlock(ctx, user, "admin", "x"); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("Unlock before any lock: got %v, want ErrNotLocked", err)
	}
	l, err := m.Lock(ctx, LockRequest{Target: user, Reason: "compromised", Actor: "admin"})
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if !l.Start.Equal(clock.Now()) || !l.Expires.IsZero() || l.Automatic {
		t.Errorf("got lock %+v, want a permanent manual lock starting now", l)
	}
	if got, ok := m.CheckUser("OUT.example.net", "WEB1"); !ok || got.Reason != "compromised" {
		t.Errorf("CheckUser in other case: got (%+v, %v), want the lock", got, ok)
	}
	if _, ok := m.CheckIdentity("out.example.net", "web1"); ok {
		t.Errorf("a user lock must not lock the identity of the same name")
	}
	if _, ok := m.CheckUser("other.example.net", "web1"); ok {
		t.Errorf("a lock in one domain must not apply in another")
	}
	cur, err := m.Lock(ctx, LockRequest{Target: user, Reason: "again", Actor: "other"})
	if !errors.Is(err, ErrAlreadyLocked) || cur.Reason != "compromised" {
		t.Errorf("second Lock: got (%+v, %v), want ErrAlreadyLocked and the first lock", cur, err)
	}
	clock.Advance(time.Minute)
	u, err := m.Unlock(ctx, user, "admin2", "cleaned up")
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if u.UnlockedBy != "admin2" || u.State(clock.Now()) != StateUnlocked {
		t.Errorf("got unlocked lock %+v, want unlocked by admin2", u)
	}
	if _, ok := m.CheckUser("out.example.net", "web1"); ok {
		t.Errorf("CheckUser after Unlock: still locked")
	}
	if _, err := m.Unlock(ctx, user, "admin", ""); !errors.Is(err, ErrNotLocked) {
		t.Errorf("second Unlock: got %v, want ErrNotLocked", err)
	}
	h, err := m.History(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h {
		got = append(got, string(e.Action)+" "+e.Actor+" "+e.Reason)
	}
	want := []string{"lock admin compromised", "unlock admin2 cleaned up"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history: got %q, want %q", got, want)
	}
	if got, want := events.types(), []EventType{EventLock, EventUnlock}; !reflect.DeepEqual(got, want) {
		t.Errorf("events: got %v, want %v", got, want)
	}
	// Locking again after an unlock works and keeps the history.
	if _, err := m.Lock(ctx, LockRequest{Target: user, Actor: "admin", Reason: "again"}); err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if h, _ := m.History(ctx, user); len(h) != 3 {
		t.Errorf("history after relock: got %d entries, want 3", len(h))
	}
}

func testLockInvalid(t *testing.T, be testBackend) {
	ctx := context.Background()
	m, _ := testManager(t, be, newClock(), Options{})
	tests := []struct {
		name string
		req  LockRequest
	}{
		{"bad kind", LockRequest{Target: Target{Kind: "group", Domain: "d", Name: "n"}, Actor: "a"}},
		{"no domain", LockRequest{Target: IdentityTarget("", "n"), Actor: "a"}},
		{"no name", LockRequest{Target: IdentityTarget("d", ""), Actor: "a"}},
		{"no actor", LockRequest{Target: IdentityTarget("d", "n")}},
		{"negative duration", LockRequest{Target: IdentityTarget("d", "n"), Actor: "a", Duration: -time.Second}},
		{"control character", LockRequest{Target: IdentityTarget("d", "a\x00b"), Actor: "a"}},
		{"name too long", LockRequest{Target: IdentityTarget("d", strings.Repeat("n", MaxNameLength+1)), Actor: "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Lock(ctx, tc.req); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func testLockExpiry(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	var events eventLog
	m, db := testManager(t, be, clock, Options{OnEvent: events.add})
	id := IdentityTarget("out.example.net", "alice")
	if _, err := m.Lock(ctx, LockRequest{Target: id, Actor: "admin", Reason: "cool down", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour - time.Second)
	if _, ok := m.CheckIdentity("out.example.net", "alice"); !ok {
		t.Errorf("one second before expiry: not locked")
	}
	clock.Advance(time.Second)
	// No flush, no restart: the lookup itself sees the expiry.
	if _, ok := m.CheckIdentity("out.example.net", "alice"); ok {
		t.Errorf("at expiry: still locked")
	}
	if _, err := m.Unlock(ctx, id, "admin", ""); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock after expiry: got %v, want ErrNotLocked", err)
	}
	// The failed Unlock still settled the expiry on disk.
	if r, err := db.getRecord(ctx, id.key()); err != nil || r == nil || !r.Settled || len(r.History) != 2 {
		t.Errorf("stored record after Unlock of an expired lock: got %+v (%v), want settled with 2 history entries", r, err)
	}
	l, err := m.Get(ctx, id)
	if err != nil || l.State(clock.Now()) != StateExpired {
		t.Errorf("Get: got (%+v, %v), want an expired lock", l, err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	h, _ := m.History(ctx, id)
	if len(h) != 2 || h[1].Action != ActionExpire || !h[1].At.Equal(l.Expires) {
		t.Errorf("history: got %+v, want lock then expire at %v", h, l.Expires)
	}
	if got, want := events.types(), []EventType{EventLock, EventExpire}; !reflect.DeepEqual(got, want) {
		t.Errorf("events: got %v, want %v", got, want)
	}
}

func testRelockAfterUnsweptExpiry(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	id := IdentityTarget("d", "bob")
	if _, err := m.Lock(ctx, LockRequest{Target: id, Actor: "admin", Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := m.Lock(ctx, LockRequest{Target: id, Actor: "admin", Reason: "second"}); err != nil {
		t.Fatalf("Lock after expiry: %v", err)
	}
	h, _ := m.History(ctx, id)
	var got []Action
	for _, e := range h {
		got = append(got, e.Action)
	}
	if want := []Action{ActionLock, ActionExpire, ActionLock}; !reflect.DeepEqual(got, want) {
		t.Errorf("history: got %v, want %v", got, want)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if l, ok := m.Lookup(id); !ok || l.Reason != "second" {
		t.Errorf("after sweep: got (%+v, %v), want the second lock in force", l, ok)
	}
}

func testList(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	m, _ := testManager(t, be, clock, Options{})
	must := func(_ Lock, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Lock(ctx, LockRequest{Target: UserTarget("a.example", "u1"), Actor: "x"}))
	must(m.Lock(ctx, LockRequest{Target: IdentityTarget("a.example", "i1"), Actor: "x", Duration: time.Minute}))
	must(m.Lock(ctx, LockRequest{Target: IdentityTarget("a.example", "i2"), Actor: "x"}))
	must(m.Lock(ctx, LockRequest{Target: IdentityTarget("b.example", "i3"), Actor: "x"}))
	must(m.Unlock(ctx, IdentityTarget("a.example", "i2"), "x", ""))
	clock.Advance(time.Hour)

	names := func(ls []Lock) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Name)
		}
		return out
	}
	tests := []struct {
		name string
		f    ListFilter
		want []string
	}{
		{"all", ListFilter{}, []string{"i1", "i2", "i3", "u1"}},
		{"identities", ListFilter{Kind: KindIdentity}, []string{"i1", "i2", "i3"}},
		{"users", ListFilter{Kind: KindUser}, []string{"u1"}},
		{"domain", ListFilter{Domain: "A.example"}, []string{"i1", "i2", "u1"}},
		{"kind and domain", ListFilter{Kind: KindIdentity, Domain: "a.example"}, []string{"i1", "i2"}},
		{"active", ListFilter{State: StateActive}, []string{"i3", "u1"}},
		{"expired", ListFilter{State: StateExpired}, []string{"i1"}},
		{"unlocked", ListFilter{State: StateUnlocked}, []string{"i2"}},
		{"limit", ListFilter{Limit: 2}, []string{"i1", "i2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := m.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(ls); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func testLocksSurviveReopen(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	db, path := testDB(t, be)
	m := openManager(t, db, clock, Options{})
	if _, err := m.Lock(ctx, LockRequest{Target: UserTarget("d", "perm"), Actor: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock(ctx, LockRequest{Target: IdentityTarget("d", "temp"), Actor: "a", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closeStore(db); err != nil {
		t.Fatal(err)
	}
	m2 := openManager(t, openDB(t, be, path), clock, Options{})
	if _, ok := m2.CheckUser("d", "perm"); !ok {
		t.Errorf("permanent user lock lost on reopen")
	}
	if _, ok := m2.CheckIdentity("d", "temp"); !ok {
		t.Errorf("temporary identity lock lost on reopen")
	}
	clock.Advance(time.Hour)
	if _, ok := m2.CheckIdentity("d", "temp"); ok {
		t.Errorf("temporary lock still applies after its expiry")
	}
}

func testClosed(t *testing.T, be testBackend) {
	ctx := context.Background()
	m, _ := testManager(t, be, newClock(), Options{})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Lock(ctx, LockRequest{Target: UserTarget("d", "u"), Actor: "a"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Lock after Close: got %v, want ErrClosed", err)
	}
	if _, err := m.Observe(ctx, Observation{Domain: "d", Identity: "i", Class: ClassSpam}, DefaultPolicy()); !errors.Is(err, ErrClosed) {
		t.Errorf("Observe after Close: got %v, want ErrClosed", err)
	}
}

func testLockMetrics(t *testing.T, be testBackend) {
	ctx := context.Background()
	clock := newClock()
	reg := prometheus.NewPedanticRegistry()
	m, _ := testManager(t, be, clock, Options{Registerer: reg})
	if _, err := m.Lock(ctx, LockRequest{Target: UserTarget("d", "u"), Actor: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock(ctx, LockRequest{Target: IdentityTarget("d", "i"), Actor: "a", Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	m.CheckUser("d", "u")
	m.CheckUser("d", "u")
	m.CheckUser("d", "nobody")
	m.CheckIdentity("d", "i")
	clock.Advance(time.Minute) // the identity lock expires: the gauge follows at once
	m.CheckIdentity("d", "i")
	want := `
# HELP outguard_lock_refusals_total Transactions refused because of a lock, by kind (user or identity).
# TYPE outguard_lock_refusals_total counter
outguard_lock_refusals_total{kind="identity"} 1
outguard_lock_refusals_total{kind="user"} 2
# HELP outguard_locks_active Locks in force, by kind (user or identity).
# TYPE outguard_locks_active gauge
outguard_locks_active{kind="identity"} 0
outguard_locks_active{kind="user"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_lock_refusals_total", "outguard_locks_active"); err != nil {
		t.Error(err)
	}
}

func testHistoryBounded(t *testing.T, be testBackend) {
	ctx := context.Background()
	m, _ := testManager(t, be, newClock(), Options{MaxHistory: 4})
	id := IdentityTarget("d", "flappy")
	for i := 0; i < 5; i++ {
		if _, err := m.Lock(ctx, LockRequest{Target: id, Actor: "a"}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Unlock(ctx, id, "a", ""); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := m.History(ctx, id)
	if len(h) != 4 || h[3].Action != ActionUnlock {
		t.Errorf("got %d entries ending %v, want the last 4", len(h), h[len(h)-1].Action)
	}
}
