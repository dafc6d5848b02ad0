package quarantine

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The tests here run in a synctest bubble: its clock moves only while
// every goroutine waits, so the time a call took is exactly the time the
// committer spent waiting on its timer (or in a test hook's Sleep).

// TestLoneCoalescedRecordCommitsAtOnce: with no other writer at work, the
// record of relayed mail does not wait for company that will not come
// (Options.CoalesceDelay is a cap, not a fixed price), whether it finds
// the committer idle or waiting for company for queued records nobody
// waits for.
func TestLoneCoalescedRecordCommitsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, _ := openDB(t, true)
		s, err := New(db, Options{CoalesceDelay: 25 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		at := time.Unix(1770000000, 0)
		ctx := context.Background()

		start := time.Now()
		if err := s.AppendCoalesced(ctx, sampleRecord(at, StatusAccepted, VerdictClean)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("a lone record waited %v for its commit, want no wait", waited)
		}

		// A record nobody waits for (refused mail) starts a round that
		// waits for company; the relayed mail's record ends that wait.
		if err := s.Append(sampleRecord(at.Add(time.Second), StatusRejected, VerdictSpam)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		start = time.Now()
		if err := s.AppendCoalesced(ctx, sampleRecord(at.Add(2*time.Second), StatusAccepted, VerdictClean)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the record joining a round of unwaited records waited %v, want no wait", waited)
		}
		if got := countLog(t, db); got != 3 {
			t.Errorf("got %d records, want 3", got)
		}
	})
}

// TestCoalescedRecordsShareRoundUnderLoad: once rounds carry several
// waiters (other writers at work), a round of relayed mail's records
// waits for company, so records arriving meanwhile share its commit; the
// wait never exceeds Options.CoalesceDelay however slow commits are.
func TestCoalescedRecordsShareRoundUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 10 * time.Millisecond
		const commit = time.Second // far longer than delay: the cap applies
		db, _ := openDB(t, true)
		s, err := New(db, Options{CoalesceDelay: delay})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		gate := make(chan struct{})
		var rounds atomic.Int32
		s.beforeRound = func() {
			if rounds.Add(1) == 1 {
				<-gate
			}
			time.Sleep(commit)
		}
		at := time.Unix(1770000000, 0)
		ctx := context.Background()
		appendAsync := func(i int) <-chan error {
			c := make(chan error, 1)
			go func() {
				c <- s.AppendCoalesced(ctx, sampleRecord(at.Add(time.Duration(i)*time.Second), StatusAccepted, VerdictClean))
			}()
			return c
		}

		// Round 1 (a Flush) holds the committer while two records
		// queue up; they make round 2 together.
		flushed := make(chan error, 1)
		go func() { flushed <- s.Flush(ctx) }()
		synctest.Wait()
		a, b := appendAsync(1), appendAsync(2)
		synctest.Wait()
		close(gate)
		for _, c := range []<-chan error{flushed, a, b} {
			if err := <-c; err != nil {
				t.Fatal(err)
			}
		}
		if got := rounds.Load(); got != 2 {
			t.Fatalf("%d rounds for a flush and two queued records, want 2", got)
		}

		// Round 3 starts with one record and waits for company: the
		// record arriving meanwhile joins it.
		start := time.Now()
		c := appendAsync(3)
		synctest.Wait()
		d := appendAsync(4)
		for _, c := range []<-chan error{c, d} {
			if err := <-c; err != nil {
				t.Fatal(err)
			}
		}
		if got := rounds.Load(); got != 3 {
			t.Errorf("%d rounds, want 3: the record arriving during the wait shares the round", got)
		}
		if waited := time.Since(start) - commit; waited != delay {
			t.Errorf("the round waited %v for company, want the cap %v", waited, delay)
		}
		if got := countLog(t, db); got != 4 {
			t.Errorf("got %d records, want 4", got)
		}
	})
}
