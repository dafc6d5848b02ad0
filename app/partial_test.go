package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/quarantine"
)

// breakOutbox makes every ARF report write fail, as a full disk or a
// damaged bucket would, until the returned function repairs it.
func breakOutbox(t *testing.T, e *env) (repair func()) {
	t.Helper()
	err := e.app.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("arf_outbox_raw")) })
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		err := e.app.db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte("arf_outbox_raw"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuarantineAndReportTogether: when the ARF report cannot be stored,
// the client gets 451 and nothing of the attempt is kept (no quarantined
// message, no report); the retry is quarantined once, with its report.
func TestQuarantineAndReportTogether(t *testing.T) {
	e := newEnv(t, "", "")
	repair := breakOutbox(t, e)
	msg := testMessage("spammer", "offer", gtube)
	err := e.send("shop@out.example.net", msg)
	if r := replyOf(err); r == nil || r.Code/100 != 4 {
		t.Fatalf("spam while reports cannot be stored: %v, want 4xx", err)
	}
	first := idOf(t, err)
	e.flush()
	rec, err := e.app.store.Get(first)
	if err != nil {
		t.Fatalf("no record of the deferred attempt %s: %v", first, err)
	}
	if rec.Status != quarantine.StatusDeferred || rec.Quarantine != nil {
		t.Errorf("record of the 451 attempt: status %s, quarantine %+v; want deferred and nothing quarantined", rec.Status, rec.Quarantine)
	}
	if _, err := e.app.store.Raw(first, quarantine.Actor{Name: "test"}); !errors.Is(err, quarantine.ErrNotQuarantined) {
		t.Errorf("content of the 451 attempt: err %v, want ErrNotQuarantined", err)
	}

	repair()
	err = e.send("shop@out.example.net", msg)
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("retry: %v, want 550", err)
	}
	second := idOf(t, err)
	if _, err := e.app.store.Raw(second, quarantine.Actor{Name: "test"}); err != nil {
		t.Errorf("retry %s not quarantined: %v", second, err)
	}
	// The outbox removes a report once the relay took it: wait for both.
	if !e.waitFor(10*time.Second, func() bool {
		pending, _ := e.app.outbox.Pending()
		return len(e.reports()) >= 1 && len(pending) == 0
	}) {
		t.Fatal("no ARF report for the retry, or it stays pending")
	}
	if _, err := e.app.outbox.Raw(first); err == nil {
		t.Errorf("the outbox holds a report of the 451 attempt %s", first)
	}
	pending, _ := e.app.outbox.Pending()
	if reps := e.reports(); len(reps) != 1 || len(pending) != 0 {
		t.Errorf("reports sent %d, pending %d; want exactly one, for %s", len(reps), len(pending), second)
	}
}

// TestTempfailNotCounted: a verdict answered with a 4xx is not counted
// toward automatic locking, however often the client retries; it counts
// once the message's fate is final.
func TestTempfailNotCounted(t *testing.T) {
	t.Run("spam whose quarantine failed", func(t *testing.T) {
		e := newEnv(t, "", "")
		repair := breakOutbox(t, e)
		msg := testMessage("retrier", "offer", gtube)
		for i := range 7 {
			err := e.send("shop@out.example.net", msg)
			if r := replyOf(err); r == nil || r.Code/100 != 4 {
				t.Fatalf("attempt %d: %v, want 4xx", i, err)
			}
		}
		if _, locked := e.app.ids.CheckIdentity("out.example.net", "retrier"); locked {
			t.Fatal("identity locked by spam that was only ever answered 451")
		}
		repair()
		if err := e.send("shop@out.example.net", msg); replyOf(err) == nil || replyOf(err).Code != 550 {
			t.Fatalf("final attempt: %v, want 550", err)
		}
		u, err := e.app.ids.Usage(context.Background(), "out.example.net", "retrier")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range u.Counters {
			if c.Counter == "spam" && c.Count != 1 {
				t.Errorf("spam counted %d times, want 1", c.Count)
			}
		}
	})
	t.Run("clean mail the next hop deferred", func(t *testing.T) {
		e := newEnv(t, "    thresholds: {messages: 3, messages_window: 10m}\n", "")
		e.nh.Lock()
		e.nh.DataErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		e.nh.Unlock()
		msg := testMessage("busy", "newsletter", "hello")
		for i := range 5 {
			err := e.send("shop@out.example.net", msg)
			if r := replyOf(err); r == nil || r.Code != 451 {
				t.Fatalf("attempt %d: %v, want the next hop's 451", i, err)
			}
		}
		if _, locked := e.app.ids.CheckIdentity("out.example.net", "busy"); locked {
			t.Fatal("identity locked for volume by mail that was never relayed")
		}
		e.nh.Lock()
		e.nh.DataErr = nil
		e.nh.Unlock()
		for i := range 3 {
			if err := e.send("shop@out.example.net", testMessage("busy", fmt.Sprintf("n%d", i), "hello")); err != nil {
				t.Fatalf("relayed %d: %v", i, err)
			}
		}
		if _, locked := e.app.ids.CheckIdentity("out.example.net", "busy"); !locked {
			t.Error("3 relayed messages did not reach the volume threshold of 3")
		}
	})
}
