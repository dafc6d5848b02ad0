package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// Session store limits of the conformance suite.
const (
	testIdle   = 10 * time.Minute
	testMaxAge = time.Hour
	testMax    = 3
)

// storePair returns two handles on one fresh session store: the same
// table for the in-memory store, two nodes for PostgreSQL.
type storePair func(t *testing.T) (a, b sessionStore)

// exerciseSessions is the conformance suite of a sessionStore: what one
// handle starts, the other sees, marks seen, ends.
func exerciseSessions(t *testing.T, pair storePair) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	n := 0
	newSess := func(t *testing.T, s sessionStore, name string, cred credential, at time.Time) *session {
		t.Helper()
		n++
		id, _ := randomToken(rand.Reader)
		x := &session{id: id, csrf: "csrf-" + name + string(rune('0'+n%10)), p: ops.Principal{Name: name, Domain: "a.example"},
			cred: cred, created: at, seen: at}
		if err := s.create(ctx, x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	live := func(t *testing.T, s sessionStore, x *session, at time.Time) bool {
		t.Helper()
		got, ok, err := s.get(ctx, x.id, at)
		if err != nil {
			t.Fatal(err)
		}
		if ok && (got.csrf != x.csrf || got.p != x.p || got.cred != x.cred || !got.created.Equal(x.created)) {
			t.Errorf("got session %+v, want %+v", got, *x)
		}
		return ok
	}
	cred := newCredential(true, "hash", "a.example")

	t.Run("seen on the other handle", func(t *testing.T) {
		a, b := pair(t)
		x := newSess(t, a, "alice", cred, t0)
		if !live(t, b, x, t0.Add(time.Minute)) {
			t.Fatal("a session started on one handle is not live on the other")
		}
		if _, ok, _ := b.get(ctx, x.id+"x", t0); ok {
			t.Error("another token gives the session")
		}
		if _, ok, _ := b.get(ctx, "", t0); ok {
			t.Error("an empty token gives a session")
		}
	})
	t.Run("idle expiry", func(t *testing.T) {
		a, b := pair(t)
		x := newSess(t, a, "alice", cred, t0)
		// Seen through b at +9m: live until +19m, whichever handle asks.
		if !live(t, b, x, t0.Add(9*time.Minute)) {
			t.Fatal("session ended before its idle time")
		}
		if !live(t, a, x, t0.Add(19*time.Minute)) {
			t.Fatal("a use on the other handle did not keep the session alive")
		}
		if live(t, b, x, t0.Add(29*time.Minute+time.Second)) {
			t.Error("session idle for longer than its idle time is live")
		}
	})
	t.Run("absolute expiry", func(t *testing.T) {
		a, b := pair(t)
		x := newSess(t, a, "alice", cred, t0)
		at := t0
		for i := range 6 {
			at = at.Add(9 * time.Minute)
			if !live(t, []sessionStore{a, b}[i%2], x, at) {
				t.Fatalf("session in use ended at %v", at.Sub(t0))
			}
		}
		if live(t, a, x, t0.Add(testMaxAge+time.Second)) {
			t.Error("session in use is live past its maximum age")
		}
	})
	t.Run("remove on the other handle", func(t *testing.T) {
		a, b := pair(t)
		x := newSess(t, a, "alice", cred, t0)
		y := newSess(t, a, "alice", cred, t0)
		if err := b.remove(ctx, x.id); err != nil {
			t.Fatal(err)
		}
		if live(t, a, x, t0.Add(time.Minute)) {
			t.Error("a session removed through one handle is live on the other")
		}
		if !live(t, a, y, t0.Add(time.Minute)) {
			t.Error("removing one session ended another")
		}
	})
	t.Run("flash", func(t *testing.T) {
		a, b := pair(t)
		x := newSess(t, a, "alice", cred, t0)
		if err := a.setFlash(ctx, x.id, "Locked.", true); err != nil {
			t.Fatal(err)
		}
		msg, isErr, err := b.takeFlash(ctx, x.id)
		if err != nil || msg != "Locked." || !isErr {
			t.Errorf("takeFlash: got %q %v %v, want the notice set on the other handle", msg, isErr, err)
		}
		if msg, _, _ := a.takeFlash(ctx, x.id); msg != "" {
			t.Errorf("the notice shows twice: %q", msg)
		}
	})
	t.Run("end stale credentials", func(t *testing.T) {
		a, b := pair(t)
		newCred := newCredential(true, "hash2", "a.example")
		old := newSess(t, a, "alice", cred, t0)
		cur := newSess(t, a, "alice", newCred, t0)
		tok := newSess(t, a, "alice", newCredential(false, "hash", "a.example"), t0)
		if err := b.endStale(ctx, "alice", true, newCred.sum); err != nil {
			t.Fatal(err)
		}
		if live(t, a, old, t0) || !live(t, a, cur, t0) || !live(t, a, tok, t0) {
			t.Error("ending stale sessions: want the old credential's ended, the new one's and the token's kept")
		}
		if err := b.endStale(ctx, "alice", true, ""); err != nil {
			t.Fatal(err)
		}
		if live(t, a, cur, t0) || !live(t, a, tok, t0) {
			t.Error("ending every session of a removed account: want the account's ended, the token's kept")
		}
	})
	t.Run("bound evicts the least recently seen", func(t *testing.T) {
		a, b := pair(t)
		var xs []*session
		for i := range testMax {
			xs = append(xs, newSess(t, []sessionStore{a, b}[i%2], "u", cred, t0.Add(time.Duration(i)*time.Second)))
		}
		// The first is used again: the second is now the least recently
		// seen.
		if !live(t, b, xs[0], t0.Add(10*time.Second)) {
			t.Fatal("session lost")
		}
		xs = append(xs, newSess(t, a, "u", cred, t0.Add(11*time.Second)))
		at := t0.Add(12 * time.Second)
		if live(t, b, xs[1], at) {
			t.Error("the least recently seen session survived the bound")
		}
		for _, i := range []int{0, 2, 3} {
			if !live(t, a, xs[i], at) {
				t.Errorf("session %d was evicted, want the least recently seen one only", i)
			}
		}
	})
}

func TestSessionsMemory(t *testing.T) {
	exerciseSessions(t, func(t *testing.T) (sessionStore, sessionStore) {
		s := newMemSessions(testIdle, testMaxAge, testMax)
		return s, s
	})
}

func TestSessionsPostgres(t *testing.T) {
	pgtest.ServerDSN(t)
	exerciseSessions(t, func(t *testing.T) (sessionStore, sessionStore) {
		dsn := pgtest.NewDatabase(t)
		a := newPgSessions(pgtest.OpenPool(t, dsn, true), "mx1", testIdle, testMaxAge, testMax)
		b := newPgSessions(pgtest.OpenPool(t, dsn, false), "mx2", testIdle, testMaxAge, testMax)
		return a, b
	})
}

// TestSessionsPostgresKeepNoToken: the table holds the hash of the
// session's token, and the token nowhere.
func TestSessionsPostgresKeepNoToken(t *testing.T) {
	pool := pgtest.Pool(t)
	s := newPgSessions(pool, "mx1", testIdle, testMaxAge, testMax)
	id, _ := randomToken(rand.Reader)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	x := &session{id: id, csrf: "c", p: ops.Principal{Name: "root"}, cred: newCredential(false, "h", "all"), created: now, seen: now}
	if err := s.create(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	var row string
	var hashed bool
	if err := pool.QueryRow(context.Background(), "SELECT s::text, s.token_hash = sha256(convert_to($1, 'UTF8')) FROM console_sessions s", id).Scan(&row, &hashed); err != nil {
		t.Fatal(err)
	}
	if !hashed {
		t.Error("the row's key is not the SHA-256 hash of the token")
	}
	if strings.Contains(row, id) {
		t.Errorf("the row holds the token: %s", row)
	}
}

// TestNewSessionExhaustedRandom: without random bytes there is no
// session.
func TestNewSessionExhaustedRandom(t *testing.T) {
	e := admintest.New(t, nil)
	c, err := New(Options{Ops: e.Ops, Rand: bytes.NewReader(make([]byte, 40))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.newSession(context.Background(), ops.Principal{Name: "root"}, credential{}); err == nil {
		t.Error("got a session from an exhausted random source, want an error")
	}
	if n := c.sessions.(*memSessions).len(); n != 0 {
		t.Errorf("%d sessions stored", n)
	}
}
