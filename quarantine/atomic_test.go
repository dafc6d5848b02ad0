package quarantine

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"
)

// TestQuarantineWithFailingAlso: when the caller's write in the same
// transaction fails, nothing of the quarantine is kept, and the other
// writes of the round are.
func TestQuarantineWithFailingAlso(t *testing.T) {
	s, db := newTestStore(t, Options{})
	at := time.Unix(1770000000, 0)
	boom := errors.New("report store failed")
	failing := sampleRecord(at, StatusQuarantined, VerdictSpam)
	other := sampleRecord(at.Add(time.Second), StatusAccepted, VerdictClean)
	if err := s.Append(other); err != nil {
		t.Fatal(err)
	}
	err := s.QuarantineWith(context.Background(), failing, []byte(sampleRaw), func(tx *bbolt.Tx) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the also error", err)
	}
	flush(t, s)
	if _, err := s.Get(failing.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("record of the failed quarantine: got %v, want ErrNotFound", err)
	}
	if n := s.qMessages.Load(); n != 0 {
		t.Errorf("quarantine counts %d messages, want 0", n)
	}
	if _, err := s.Get(other.ID); err != nil {
		t.Errorf("record queued with it: %v", err)
	}
	if err := s.Writable(); err != nil {
		t.Errorf("a failing also is not a disk failure: Writable = %v", err)
	}

	ok := sampleRecord(at.Add(2*time.Second), StatusQuarantined, VerdictSpam)
	err = s.QuarantineWith(context.Background(), ok, []byte(sampleRaw), func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("test.also"))
		if err != nil {
			return err
		}
		return b.Put([]byte(ok.ID), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Raw(ok.ID, Actor{}); err != nil {
		t.Errorf("quarantined: %v", err)
	}
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte("test.also")); b == nil || b.Get([]byte(ok.ID)) == nil {
			t.Error("the also write is missing")
		}
		return nil
	})
}

// TestAbandonedWriteNotWritten: a synced write whose caller gave up
// before the committer took it is never written, so the caller's error
// means "not kept".
func TestAbandonedWriteNotWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, _ := openDB(t, true)
		s, err := New(db, Options{MaxBatch: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		gate := make(chan struct{})
		s.beforeRound = func() { <-gate }
		at := time.Unix(1770000000, 0)
		// The committer takes this one and waits at the gate.
		if err := s.Append(sampleRecord(at, StatusAccepted, VerdictClean)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		rec := sampleRecord(at.Add(time.Second), StatusQuarantined, VerdictSpam)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Quarantine(ctx, rec, []byte(sampleRaw)) }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		close(gate)
		flush(t, s)
		if _, err := s.Get(rec.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("abandoned quarantine was written: %v", err)
		}
	})
}

// TestAppendCoalescedWritten: AppendCoalesced returns once its record is
// readable.
func TestAppendCoalescedWritten(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		rec := sampleRecord(time.Unix(1770000000, 0), StatusAccepted, VerdictClean)
		if err := s.AppendCoalesced(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(rec.ID); err != nil {
			t.Errorf("after AppendCoalesced: %v", err)
		}
	})
}
