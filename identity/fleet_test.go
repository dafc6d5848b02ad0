package identity

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// fleetNode opens a Manager named node on the shared database dsn with
// the real clock, its listener and, unless round is negative, its rounds.
func fleetNode(t *testing.T, dsn, node string, round time.Duration, reg prometheus.Registerer) *Manager {
	t.Helper()
	pool := pgtest.OpenPool(t, dsn, false)
	m, err := OpenPostgres(pool, node, Options{FlushInterval: -1, RoundInterval: round, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitFor polls cond every 5 ms until it holds or a generous deadline
// passes, and returns how long it took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s: not after 30s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestFleetLockPropagates(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	regB := prometheus.NewPedanticRegistry()
	a := fleetNode(t, dsn, "node-a", -1, nil)
	b := fleetNode(t, dsn, "node-b", -1, regB)
	ctx := context.Background()
	user := UserTarget(dom, "web7")
	// B knows the index is current once its listener is up.
	waitFor(t, "B's index fresh", func() bool { return b.indexFresh.Load() != 0 })

	if _, err := a.Lock(ctx, LockRequest{Target: user, Actor: "ops", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "lock on A seen by B", func() bool { _, ok := b.Lookup(user); return ok })
	t.Logf("lock on node A refused on node B after %v (LISTEN/NOTIFY)", took)

	// A second lock by B is refused: the record is shared.
	if _, err := b.Lock(ctx, LockRequest{Target: user, Actor: "ops2"}); err == nil {
		t.Error("B locked a target A had locked")
	}
	if _, err := b.Unlock(ctx, user, "ops2", "done"); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, "unlock on B seen by A", func() bool { _, ok := a.Lookup(user); return !ok })
	t.Logf("unlock on node B lifted on node A after %v", took)
	h, err := a.History(ctx, user)
	if err != nil || len(h) != 2 || h[0].Actor != "ops" || h[1].Actor != "ops2" {
		t.Errorf("history seen from A: %+v, %v; want the lock by ops and the unlock by ops2", h, err)
	}
	if age := promtest.ToFloat64(gaugeOf(t, regB, "outguard_lock_index_age_seconds")); age < 0 || age > 30 {
		t.Errorf("outguard_lock_index_age_seconds %v, want a small age", age)
	}
}

// A lock written to the table while a node was not listening (here: a
// change by hand, without a notification) reaches it by the resync.
func TestFleetResync(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.OpenPool(t, dsn, true)
	a := fleetNode(t, dsn, "node-a", -1, nil)
	ctx := context.Background()
	id := IdentityTarget(dom, "quiet")
	if _, err := a.Lock(ctx, LockRequest{Target: id, Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A's index fresh", func() bool { return a.indexFresh.Load() != 0 })
	// Settle it behind the nodes' back: no notification.
	if _, err := pool.Exec(ctx, "UPDATE identity_locks SET settled = true, record = jsonb_set(record, '{settled}', 'true')"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup(id); !ok {
		t.Fatal("the index changed without a notification or resync")
	}
	if err := a.resync(); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup(id); ok {
		t.Error("after a resync the index still holds a lock the table says is settled")
	}
}

// Spam of one identity spread over three nodes locks it once the fleet's
// total reaches the threshold, not three times the threshold.
func TestFleetWideThreshold(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	nodes := []*Manager{
		fleetNode(t, dsn, "node-a", -1, nil),
		fleetNode(t, dsn, "node-b", -1, nil),
		fleetNode(t, dsn, "node-c", -1, nil),
	}
	ctx := context.Background()
	p := DefaultPolicy() // 5 spam in 10 minutes
	target := IdentityTarget(dom, "spread")
	// Four spam, on three nodes: below the threshold.
	for i, n := range []int{0, 1, 2, 0} {
		if out := observe(t, nodes[n], spam("spread", fmt.Sprint("tx", i)), p); out.Locked != nil {
			t.Fatalf("spam %d locked below the fleet threshold", i)
		}
		if err := nodes[n].round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := n.round(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := n.Lookup(target); ok {
			t.Fatal("locked at 4 spam")
		}
	}
	// The fifth, on node B (one spam of its own before): the fleet's
	// total is 5.
	if out := observe(t, nodes[1], spam("spread", "tx5"), p); out.Locked != nil {
		t.Fatal("node B locked on its own count of 2")
	}
	if err := nodes[1].round(ctx); err != nil {
		t.Fatal(err)
	}
	l, ok := nodes[1].Lookup(target)
	if !ok {
		t.Fatal("5 spam over the fleet did not lock")
	}
	if !l.Automatic || l.Evidence == nil || l.Evidence.Count != 5 || l.Evidence.Threshold != 5 {
		t.Errorf("lock %+v evidence %+v: want an automatic lock on a fleet count of 5", l, l.Evidence)
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d sees the lock", i), func() bool { _, ok := n.Lookup(target); return ok })
	}
}

// A crossing resets the counter fleet-wide: after the lock ends, the
// other nodes' older counts do not lock again at once.
func TestFleetResetAfterCrossing(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	a := fleetNode(t, dsn, "node-a", -1, nil)
	b := fleetNode(t, dsn, "node-b", -1, nil)
	ctx := context.Background()
	p := DefaultPolicy()
	p.LockDuration = time.Second
	target := IdentityTarget(dom, "again")
	// B is listening: the reset reaches it by notification. (A reset
	// missed while not listening is TestFleetResyncAppliesMissedReset.)
	waitFor(t, "B's index fresh", func() bool { return b.indexFresh.Load() != 0 })
	for i := range 4 {
		observe(t, b, spam("again", fmt.Sprint("b", i)), p)
	}
	if err := b.round(ctx); err != nil {
		t.Fatal(err)
	}
	observe(t, a, spam("again", "a0"), p)
	if err := a.round(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup(target); !ok {
		t.Fatal("fleet count of 5 did not lock")
	}
	// The reset is notified before the lock, on the same channel order:
	// once B has seen the lock it has applied the reset. (Before that, a
	// spam on B would still cross on B's own older counts.)
	waitFor(t, "B sees the lock", func() bool { _, ok := b.Lookup(target); return ok })
	waitFor(t, "lock expires", func() bool { _, ok := a.Lookup(target); return !ok })
	waitFor(t, "lock expires on B", func() bool { _, ok := b.Lookup(target); return !ok })
	// B's four spam were counted in the crossing: one more on B must not
	// lock again.
	observe(t, b, spam("again", "b5"), p)
	if err := b.round(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if l, err := b.Get(ctx, target); err != nil || l.Start.IsZero() {
		t.Fatalf("Get: %+v %v", l, err)
	}
	if n, _ := b.AutoLockCount(ctx, target); n != 1 {
		t.Errorf("automatic locks ended: %d, want 1 (no second lock)", n)
	}
	if _, ok := b.Lookup(target); ok {
		t.Error("B locked again on counts from before the reset")
	}
}

// A reset made while a node was not listening reaches it by the resync
// that follows every reconnection: its older local counts do not lock.
func TestFleetResyncAppliesMissedReset(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.OpenPool(t, dsn, true)
	b := fleetNode(t, dsn, "node-b", -1, nil)
	ctx := context.Background()
	p := DefaultPolicy()
	target := IdentityTarget(dom, "missed")
	waitFor(t, "B's index fresh", func() bool { return b.indexFresh.Load() != 0 })
	for i := range 4 {
		observe(t, b, spam("missed", fmt.Sprint("b", i)), p)
	}
	if err := b.round(ctx); err != nil {
		t.Fatal(err)
	}
	// Another node crossed and reset the counters; B never got the
	// notification (written by hand, as a node would while B was away).
	if _, err := pool.Exec(ctx, `INSERT INTO identity_window_resets (domain, identity, counter, reset_at)
		SELECT $1, $2, c, $3 FROM unnest($4::int[]) AS u(c)`,
		dom, "missed", time.Now().UnixNano(), []int32{int32(CounterSpam)}); err != nil {
		t.Fatal(err)
	}
	if err := b.resync(); err != nil {
		t.Fatal(err)
	}
	if out := observe(t, b, spam("missed", "b5"), p); out.Locked != nil {
		t.Fatal("B locked on its local counts from before a reset it learnt by resync")
	}
	if _, ok := b.Lookup(target); ok {
		t.Error("B locked on counts from before the reset")
	}
	// The resync does not replay a reset twice: four more spam lock.
	for i := range 4 {
		observe(t, b, spam("missed", fmt.Sprint("c", i)), p)
	}
	if err := b.resync(); err != nil {
		t.Fatal(err)
	}
	if err := b.round(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Lookup(target); !ok {
		t.Error("5 spam after the reset did not lock")
	}
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

// When the listening session is cut, the node reconnects and reloads the
// whole index: a change it was not notified of reaches it then.
func TestFleetReconnectResyncs(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pool := pgtest.OpenPool(t, dsn, true)
	reg := prometheus.NewPedanticRegistry()
	a := fleetNode(t, dsn, "node-a", -1, nil)
	b := fleetNode(t, dsn, "node-b", -1, reg)
	ctx := context.Background()
	st := b.store.(*pgStore)
	waitFor(t, "B listening", func() bool { return st.listenPID.Load() != 0 })
	pid := st.listenPID.Load()

	id := IdentityTarget(dom, "behind-the-back")
	if _, err := a.Lock(ctx, LockRequest{Target: id, Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B sees the lock", func() bool { _, ok := b.Lookup(id); return ok })
	// Unlocked in the table without a notification, then B's session is
	// cut: only the resync on reconnection can tell B.
	if _, err := pool.Exec(ctx, "UPDATE identity_locks SET settled = true, record = jsonb_set(record, '{settled}', 'true')"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "B reloads after reconnecting", func() bool { _, ok := b.Lookup(id); return !ok })
	t.Logf("B reconnected and resynchronised %v after its listening session was cut", took)
	if n := promtest.ToFloat64(counterOf(t, reg, "outguard_lock_notify_errors_total")); n < 1 {
		t.Errorf("outguard_lock_notify_errors_total %v, want the interruption counted", n)
	}
	if p := st.listenPID.Load(); p == pid {
		t.Error("B still reports the terminated session")
	}
}

func counterOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "copy"})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

// Two nodes whose rounds run at the same instant may each miss the
// other's increments of that round (a batch's insert and select share one
// implicit transaction). Here node B's round wrote its two spam without
// seeing A's three; A's next round, with nothing new counted, asks again
// for the identity of its previous round and the fleet's 5 lock.
func TestFleetSimultaneousRounds(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	a := fleetNode(t, dsn, "node-a", -1, nil)
	b := newPgStore(pgtest.OpenPool(t, dsn, false), "node-b")
	ctx := context.Background()
	p := DefaultPolicy()
	target := IdentityTarget(dom, "twin")
	for i := range 3 {
		observe(t, a, spam("twin", fmt.Sprint("a", i)), p)
	}
	if err := a.round(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup(target); ok {
		t.Fatal("A locked on its own 3")
	}
	now := time.Now().UnixNano()
	win := p.Thresholds[CounterSpam].Window
	slot := now - now%slotWidth(win)
	if _, err := b.exchange(ctx, []fleetInc{{key: windowKey(dom, "twin"), counter: int(CounterSpam), slot: slot, n: 2, expires: slot + int64(win) + slotWidth(win)}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.round(ctx); err != nil {
		t.Fatal(err)
	}
	l, ok := a.Lookup(target)
	if !ok {
		t.Fatal("A's next round did not see B's 2: the fleet's 5 did not lock")
	}
	if l.Evidence == nil || l.Evidence.Count != 5 {
		t.Errorf("evidence %+v, want a fleet count of 5", l.Evidence)
	}
}

// BenchmarkFleetLockPropagation measures the time from Lock returning on
// node A to node B's in-memory check finding the lock (LISTEN/NOTIFY and
// one read of the record).
func BenchmarkFleetLockPropagation(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	pgtest.OpenPool(b, dsn, true)
	open := func(node string) *Manager {
		m, err := OpenPostgres(pgtest.OpenPool(b, dsn, false), node, Options{FlushInterval: -1, RoundInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		return m
	}
	na, nb := open("node-a"), open("node-b")
	for nb.indexFresh.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx := context.Background()
	var total time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		target := UserTarget(dom, fmt.Sprint("u", i))
		if _, err := na.Lock(ctx, LockRequest{Target: target, Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for {
			if _, ok := nb.Lookup(target); ok {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us-to-other-node/op")
}

// While the database refuses connections, lock checks go on from the
// last known index and its age grows; window increments wait, and reach
// the fleet's counts once it is back.
func TestFleetDatabaseOutage(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pgtest.OpenPool(t, dsn, true)
	regB := prometheus.NewPedanticRegistry()
	a := fleetNode(t, dsn, "node-a", -1, nil)
	b := fleetNode(t, dsn, "node-b", 50*time.Millisecond, regB)
	ctx := context.Background()
	user := UserTarget(dom, "locked-before")
	if _, err := a.Lock(ctx, LockRequest{Target: user, Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B sees the lock", func() bool { _, ok := b.Lookup(user); return ok })
	p := DefaultPolicy()
	for i := range 3 {
		observe(t, a, spam("outage", fmt.Sprint("a", i)), p)
	}
	if err := a.round(ctx); err != nil {
		t.Fatal(err)
	}

	// Cut the database off: no new connections, existing ones ended.
	server, err := pgx.Connect(ctx, pgtest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(ctx)
	cfg, _ := pgx.ParseConfig(dsn)
	if _, err := server.Exec(ctx, "ALTER DATABASE "+cfg.Database+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			server.Exec(ctx, "ALTER DATABASE "+cfg.Database+" ALLOW_CONNECTIONS true")
		}
	}
	defer restore()
	if _, err := server.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", cfg.Database); err != nil {
		t.Fatal(err)
	}
	age := func() float64 { return promtest.ToFloat64(gaugeOf(t, regB, "outguard_lock_index_age_seconds")) }
	waitFor(t, "the index's age grows past 2s", func() bool { return age() > 2 })
	if _, ok := b.Lookup(user); !ok {
		t.Error("during the outage B forgot a lock it knew")
	}
	// Two spam on B while the database is away: B counts them, its
	// rounds fail and keep them.
	for i := range 2 {
		if out := observe(t, b, spam("outage", fmt.Sprint("b", i)), p); out.Locked != nil {
			t.Fatal("B locked on its own 2")
		}
	}
	time.Sleep(200 * time.Millisecond) // a few failed rounds
	restore()
	took := waitFor(t, "B's kept increments and A's 3 lock the identity", func() bool {
		_, ok := b.Lookup(IdentityTarget(dom, "outage"))
		return ok
	})
	t.Logf("after the database came back, the fleet's 5 locked in %v", took)
	waitFor(t, "the index is fresh again", func() bool { return age() < 2 })
}
