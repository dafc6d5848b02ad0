package notify

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// fleetNotifier opens the Notifier of node on the shared database dsn.
func fleetNotifier(t *testing.T, dsn, node string, o Options) *Notifier {
	t.Helper()
	pgBackend.use(t, dsn, node, &o)
	o.Logger = slog.New(slog.DiscardHandler)
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	n.retry.Rand = func() float64 { return 0 }
	t.Cleanup(n.Stop)
	return n
}

// TestFleetDeliversEachOnce runs the delivery rounds of two nodes at once
// on one shared outbox: every notification reaches the webhook exactly
// once, whichever node stored it.
func TestFleetDeliversEachOnce(t *testing.T) {
	dsn := pgBackend.fresh(t)
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	rcv.got = make(chan Event, 1000)
	o := Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now, MaxPending: 1000}
	nodes := []*Notifier{fleetNotifier(t, dsn, "node-a", o), fleetNotifier(t, dsn, "node-b", o)}
	const events = 300
	ctx := context.Background()
	for i := range events {
		if err := nodes[i%2].Notify(ctx, Event{ID: fmt.Sprintf("ev%03d", i), Type: EventLock, Domain: "d", User: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Rounds until the outbox is empty: the other node may still
			// hold leases when this one finds nothing left to claim.
			for range 10000 {
				if _, err := n.Round(ctx); err != nil {
					errs <- err
					return
				}
				if p, err := n.Pending(); err != nil || p == 0 {
					errs <- err
					return
				}
			}
			errs <- fmt.Errorf("outbox not empty after 10000 rounds")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	for _, ev := range rcv.received() {
		seen[ev.ID]++
	}
	for i := range events {
		id := fmt.Sprintf("ev%03d", i)
		if seen[id] != 1 {
			t.Errorf("%s delivered %d times, want exactly once", id, seen[id])
		}
	}
	if got := len(rcv.received()); got != events {
		t.Errorf("receiver got %d requests, want %d", got, events)
	}
}

// TestFleetLeaseTakeover: a node that leased an item and died holds it
// only until its lease ends; then another node delivers it, once, and the
// dead node's late answer changes nothing.
func TestFleetLeaseTakeover(t *testing.T) {
	dsn := pgBackend.fresh(t)
	clock := newClock()
	rcv := newReceiver(t, clock.Now)
	o := Options{URL: rcv.srv.URL, Secret: testSecret, Now: clock.Now, Lease: 5 * time.Minute}
	a, b := fleetNotifier(t, dsn, "node-a", o), fleetNotifier(t, dsn, "node-b", o)
	ctx := context.Background()
	if err := a.Notify(ctx, Event{ID: "ev1", Type: EventLock, Domain: "d", User: "u"}); err != nil {
		t.Fatal(err)
	}
	// Node a leases the item, as its round does before delivering, and
	// dies there.
	c, err := a.store.claim(ctx, 0, clock.Now(), a.opts.Lease, nil)
	if err != nil || c == nil || c.it.Event.ID != "ev1" {
		t.Fatalf("claim: got %+v, %v", c, err)
	}
	leaseEnd := clock.Now().Add(5 * time.Minute)

	clock.Advance(4 * time.Minute)
	next, err := b.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := rcv.attemptCount(); n != 0 {
		t.Fatalf("node b attempted an item node a holds: %d requests", n)
	}
	if !next.Equal(leaseEnd) {
		t.Errorf("node b's next round at %v, want the lease's end %v", next, leaseEnd)
	}

	clock.Advance(time.Minute)
	if _, err := b.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rcv.received(); len(got) != 1 || got[0].ID != "ev1" {
		t.Fatalf("after the lease ended: got %+v, want ev1 once", got)
	}
	if p, _ := b.Pending(); p != 0 {
		t.Errorf("pending after the takeover: %d, want 0", p)
	}
	// Node a comes back and records a failed attempt on its old lease:
	// the item, delivered meanwhile, does not come back.
	c.it.Attempts++
	c.it.NextAttempt = clock.Now()
	if err := a.store.release(ctx, c); err != nil {
		t.Fatal(err)
	}
	if p, _ := a.Pending(); p != 0 {
		t.Errorf("a stale lease brought an item back: pending %d", p)
	}
	if _, err := a.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(rcv.received()); got != 1 {
		t.Errorf("receiver got %d requests, want 1", got)
	}
}

// TestFleetStopEndsLease: a delivery interrupted by Stop ends its lease, so
// that another node attempts the item at once instead of after the
// lease.
func TestFleetStopEndsLease(t *testing.T) {
	dsn := pgBackend.fresh(t)
	clock := newClock()
	hang := make(chan struct{})
	entered := make(chan struct{}, 1)
	o := Options{Now: clock.Now, Mail: MailOptions{From: "outguard@mta.example.net"},
		AbuseAddress: func(string, string) string { return "abuse@example.net" }}
	oa := o
	oa.SendMail = func(ctx context.Context, to string, raw []byte) error {
		entered <- struct{}{}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hang:
			return nil
		}
	}
	a := fleetNotifier(t, dsn, "node-a", oa)
	var mu sync.Mutex
	var sent []string
	ob := o
	ob.SendMail = func(ctx context.Context, to string, raw []byte) error {
		mu.Lock()
		sent = append(sent, to)
		mu.Unlock()
		return nil
	}
	b := fleetNotifier(t, dsn, "node-b", ob)
	if err := a.Notify(context.Background(), Event{ID: "ev1", Type: EventAutoLock, Domain: "d", User: "u"}); err != nil {
		t.Fatal(err)
	}
	a.Start()
	<-entered
	a.Stop()
	close(hang)
	if _, err := b.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 {
		t.Errorf("node b sent %d mails after node a stopped mid-delivery, want 1 at once", len(sent))
	}
}

func TestNewPostgresNeedsNode(t *testing.T) {
	pool := pgtest.Pool(t)
	if _, err := New(Options{Postgres: pool}); err == nil {
		t.Error("New accepted Postgres without Node")
	}
	if _, err := New(Options{Postgres: pool, Node: "a", DB: testDB(t)}); err == nil {
		t.Error("New accepted both DB and Postgres")
	}
}
