package identity

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Many sessions of one identity cross the threshold together: exactly one
// lock, and no count lost.
func testConcurrentObserveOneIdentity(t *testing.T, be testBackend) {
	const goroutines, perG = 50, 40
	clock := newClock()
	var autoLocks atomic.Int64
	m, _ := testManager(t, be, clock, Options{OnEvent: func(e Event) {
		if e.Type == EventAutoLock {
			autoLocks.Add(1)
		}
	}})
	p := DefaultPolicy()
	p.Thresholds[CounterMessages] = Limit{Count: MaxVolumeThreshold, Window: time.Hour}
	p.Thresholds[CounterRecipients] = Limit{Count: MaxVolumeThreshold, Window: time.Hour}

	var (
		wg       sync.WaitGroup
		locked   atomic.Int64
		crossed  atomic.Int64
		start    = make(chan struct{})
		firstErr atomic.Value
	)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < perG; i++ {
				o := spam("hot", fmt.Sprintf("g%d-%d", g, i))
				o.Recipients = 2
				out, err := m.Observe(context.Background(), o, p)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if out.Locked != nil {
					locked.Add(1)
				}
				if out.Crossed != nil {
					crossed.Add(1)
				}
				m.CheckIdentity(dom, "hot")
			}
		}()
	}
	close(start)
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatal(err)
	}
	total := goroutines * perG
	if got := locked.Load(); got != 1 {
		t.Errorf("got %d locks, want exactly 1", got)
	}
	if got := autoLocks.Load(); got != 1 {
		t.Errorf("got %d auto-lock events, want 1", got)
	}
	// Every 5 spam cross once; all crossings but the one that locked find
	// the lock in force.
	if got, want := crossed.Load(), int64(total/5-1); got != want {
		t.Errorf("got %d crossings on the locked identity, want %d", got, want)
	}
	u, err := m.Usage(context.Background(), dom, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Counters[CounterMessages].Count; got != total {
		t.Errorf("messages counted: got %d, want %d", got, total)
	}
	if got := u.Counters[CounterRecipients].Count; got != 2*total {
		t.Errorf("recipients counted: got %d, want %d", got, 2*total)
	}
	if got := u.Counters[CounterSpam].Count; got != total%5 {
		t.Errorf("spam left in the window: got %d, want %d", got, total%5)
	}
	ls, _ := m.List(context.Background(), ListFilter{Kind: KindIdentity})
	if len(ls) != 1 || len(ls[0].Evidence.TxIDs) != 5 {
		t.Errorf("stored locks: got %+v, want one with 5 transactions", ls)
	}
}

// Many identities at once, with flushes running alongside: counts exact
// and state on disk after Close.
func testConcurrentObserveManyIdentitiesWithFlush(t *testing.T, be testBackend) {
	const identities, perID = 64, 25
	clock := newClock()
	db, path := testDB(t, be)
	m := openManager(t, db, clock, Options{Shards: 8})
	p := Policy{Auto: true, Thresholds: Thresholds{CounterMessages: {Count: 1000, Window: time.Hour}}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		for {
			select {
			case <-stop:
				return
			default:
				if err := m.Flush(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for id := 0; id < identities; id++ {
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perID; i++ {
					o := Observation{Domain: dom, Identity: fmt.Sprint("id", id), TxID: "t", Class: ClassClean}
					if _, err := m.Observe(context.Background(), o, p); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(stop)
	<-flushDone
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	closeStore(db)
	m2 := openManager(t, openDB(t, be, path), clock, Options{})
	for id := 0; id < identities; id++ {
		u, err := m2.Usage(context.Background(), dom, fmt.Sprint("id", id))
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Counters[CounterMessages].Count; got != 2*perID {
			t.Fatalf("identity %d after reopen: got %d messages, want %d", id, got, 2*perID)
		}
	}
}

// The background loop flushes windows and settles expiries on its own,
// with the real clock inside a synctest bubble.
func testFlushLoop(t *testing.T, be testBackend) {
	db, _ := testDB(t, be)
	synctest.Test(t, func(t *testing.T) {
		var events eventLog
		m, err := openWith(db, Options{FlushInterval: 5 * time.Second, RoundInterval: -1, OnEvent: events.add}, fleetOf(db))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx := context.Background()
		if _, err := m.Lock(ctx, LockRequest{Target: IdentityTarget(dom, "x"), Actor: "a", Duration: 7 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Observe(ctx, spam("y", "1"), DefaultPolicy()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if n := bucketKeys(t, db, bucketWindows); n != 1 {
			t.Errorf("after one interval: got %d window keys, want 1", n)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := events.types(); len(got) != 2 || got[1] != EventExpire {
			t.Errorf("events: got %v, want lock then expire", got)
		}
	})
}
