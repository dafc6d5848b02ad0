package quarantine

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"go.etcd.io/bbolt"
)

func countLog(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	n := 0
	err := db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketLog).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEveryOutcomeOneRecord(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		cases := []struct {
			name       string
			status     Status
			verdict    Verdict
			quarantine bool
		}{
			{"accepted clean", StatusAccepted, VerdictClean, false},
			{"accepted spam in monitor mode", StatusAccepted, VerdictSpam, false},
			{"quarantined spam", StatusQuarantined, VerdictSpam, true},
			{"quarantined phishing", StatusQuarantined, VerdictPhishing, true},
			{"quarantined virus", StatusQuarantined, VerdictVirus, true},
			{"rejected by a lock before scanning", StatusRejected, VerdictNone, false},
			{"deferred by a scanner error", StatusDeferred, VerdictNone, false},
			{"failed at the next hop", StatusFailed, VerdictClean, false},
		}
		s, _ := newTestStore(t, Options{})
		ctx := context.Background()
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rec := sampleRecord(testBase.Add(time.Duration(i)*time.Second), tc.status, tc.verdict)
				want := *rec
				if tc.quarantine {
					if err := s.Quarantine(ctx, rec, []byte(sampleRaw)); err != nil {
						t.Fatalf("Quarantine: %v", err)
					}
				} else {
					if err := s.Append(rec); err != nil {
						t.Fatalf("Append: %v", err)
					}
					flush(t, s)
				}
				got, err := s.Get(rec.ID)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if tc.quarantine {
					if got.Quarantine == nil || got.Quarantine.RawSize != int64(len(sampleRaw)) || !got.Quarantine.HasContent() {
						t.Errorf("got quarantine info %+v, want raw size %d with content", got.Quarantine, len(sampleRaw))
					}
					got.Quarantine = nil
				}
				want.Time = want.Time.UTC()
				if !reflect.DeepEqual(got, &want) {
					t.Errorf("got  %+v\nwant %+v", got, &want)
				}
				if n := countRecords(t, s); n != i+1 {
					t.Errorf("got %d records in the log, want %d", n, i+1)
				}
			})
		}
	})
}

func TestAppendRefusesBadRecords(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		good := sampleRecord(testBase, StatusAccepted, VerdictClean)
		cases := []struct {
			name string
			mod  func(r *Record)
		}{
			{"empty id", func(r *Record) { r.ID = "" }},
			{"short id", func(r *Record) { r.ID = r.ID[:20] }},
			{"id with U", func(r *Record) { r.ID = "U" + r.ID[1:] }},
			{"no status", func(r *Record) { r.Status = 0 }},
			{"unknown status", func(r *Record) { r.Status = 99 }},
			{"unknown verdict", func(r *Record) { r.Verdict = 99 }},
			{"quarantine info set", func(r *Record) { r.Quarantine = &QuarantineInfo{} }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := *good
				tc.mod(&r)
				if err := s.Append(&r); !errors.Is(err, ErrBadRecord) {
					t.Errorf("got %v, want ErrBadRecord", err)
				}
			})
		}
		t.Run("duplicate id", func(t *testing.T) {
			r := *good
			if err := s.AppendWait(context.Background(), &r); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendWait(context.Background(), &r); !errors.Is(err, ErrBadRecord) {
				t.Errorf("got %v, want ErrBadRecord", err)
			}
		})
		t.Run("accepted into quarantine", func(t *testing.T) {
			r := *sampleRecord(testBase, StatusAccepted, VerdictClean)
			if err := s.Quarantine(context.Background(), &r, []byte(sampleRaw)); !errors.Is(err, ErrBadRecord) {
				t.Errorf("got %v, want ErrBadRecord", err)
			}
		})
	})
}

func TestQuarantineDurableAcrossReopen(t *testing.T) {
	db, path := openDB(t, false)
	s, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
	raw := []byte(strings.Repeat(sampleRaw, 50))
	if err := s.Quarantine(context.Background(), rec, raw); err != nil {
		t.Fatal(err)
	}
	// Readable as soon as Quarantine returns, without a Flush.
	got, err := s.Raw(rec.ID, Actor{})
	if err != nil || string(got) != string(raw) {
		t.Fatalf("Raw after Quarantine: got %d bytes, %v; want %d bytes", len(got), err, len(raw))
	}
	s.Stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	s2, err := New(db2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	got, err = s2.Raw(rec.ID, Actor{})
	if err != nil || string(got) != string(raw) {
		t.Fatalf("Raw after reopen: got %d bytes, %v; want %d bytes", len(got), err, len(raw))
	}
	r, err := s2.Get(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Quarantine.StoredSize >= int64(len(raw)) {
		t.Errorf("got stored size %d, want less than raw %d (compressed)", r.Quarantine.StoredSize, len(raw))
	}
	if got, want := s2.qMessages.Load(), int64(1); got != want {
		t.Errorf("got %d quarantined messages counted after reopen, want %d", got, want)
	}
}

func TestStopFlushesQueue(t *testing.T) {
	db, _ := openDB(t, true)
	s, err := New(db, Options{QueueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		if err := s.Append(sampleRecord(testBase.Add(time.Duration(i)*time.Millisecond), StatusAccepted, VerdictClean)); err != nil {
			t.Fatal(err)
		}
	}
	s.Stop()
	s.Stop() // idempotent
	if got := countLog(t, db); got != n {
		t.Errorf("got %d records after Stop, want %d", got, n)
	}
	if err := s.Append(sampleRecord(testBase, StatusAccepted, VerdictClean)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Stop: got %v, want ErrClosed", err)
	}
	if err := s.Quarantine(context.Background(), sampleRecord(testBase, StatusQuarantined, VerdictSpam), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Quarantine after Stop: got %v, want ErrClosed", err)
	}
}

func TestLookups(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		older := sampleRecord(testBase, StatusAccepted, VerdictClean)
		newer := sampleRecord(testBase.Add(time.Minute), StatusAccepted, VerdictClean)
		newer.MessageID = older.MessageID // a resend: ByMessageID takes the latest
		for _, r := range []*Record{older, newer} {
			if err := s.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, s)
		cases := []struct {
			name    string
			get     func() (*Record, error)
			wantID  string
			wantErr error
		}{
			{"Get", func() (*Record, error) { return s.Get(older.ID) }, older.ID, nil},
			{"Get lower case", func() (*Record, error) { return s.Get(strings.ToLower(older.ID)) }, older.ID, nil},
			{"Get unknown", func() (*Record, error) { return s.Get(testID(testBase.Add(time.Hour))) }, "", ErrNotFound},
			{"Get malformed", func() (*Record, error) { return s.Get("nope") }, "", ErrNotFound},
			{"ByMessageID latest", func() (*Record, error) { return s.ByMessageID(older.MessageID) }, newer.ID, nil},
			{"ByMessageID without brackets", func() (*Record, error) { return s.ByMessageID(strings.Trim(older.MessageID, "<>")) }, newer.ID, nil},
			{"ByMessageID unknown", func() (*Record, error) { return s.ByMessageID("<none@x>") }, "", ErrNotFound},
			{"ByTraceToken", func() (*Record, error) { return s.ByTraceToken(older.TraceToken) }, older.ID, nil},
			{"ByTraceToken unknown", func() (*Record, error) { return s.ByTraceToken("tt-0") }, "", ErrNotFound},
			{"ByTraceToken empty", func() (*Record, error) { return s.ByTraceToken("") }, "", ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r, err := tc.get()
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Errorf("got %v, want %v", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.ID != tc.wantID {
					t.Errorf("got id %s, want %s", r.ID, tc.wantID)
				}
			})
		}
	})
}

func TestAddComplaint(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		rec := sampleRecord(testBase, StatusAccepted, VerdictClean)
		// Queued but not yet flushed: the complaint is ordered after it.
		if err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		t1, t2 := testBase.Add(time.Hour), testBase.Add(2*time.Hour)
		for _, at := range []time.Time{t2, t1} {
			if err := s.AddComplaint(ctx, rec.ID, Complaint{Time: at}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Complaints != 2 || !got.LastComplaint.Equal(t2) {
			t.Errorf("got %d complaints, last %v; want 2, last %v", got.Complaints, got.LastComplaint, t2)
		}
		if err := s.AddComplaint(ctx, testID(testBase.Add(time.Hour)), Complaint{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("complaint for an unknown id: got %v, want ErrNotFound", err)
		}
	})
}

func TestAppendBlocksWhenQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, _ := openDB(t, true)
		gate := make(chan struct{})
		reg := prometheus.NewRegistry()
		s, err := New(db, Options{QueueSize: 4, MaxBatch: 1, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		s.beforeRound = func() { <-gate } // read by the committer after the first Append
		at := time.Unix(1770000000, 0)
		// One record is taken by the committer, which then waits at the
		// gate; four fill the queue.
		for i := range 5 {
			if err := s.Append(sampleRecord(at.Add(time.Duration(i)*time.Second), StatusAccepted, VerdictClean)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		want := "# HELP outguard_store_queue_depth Log writes waiting for the group committer.\n# TYPE outguard_store_queue_depth gauge\noutguard_store_queue_depth 4\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_store_queue_depth"); err != nil {
			t.Error(err)
		}
		var returned atomic.Bool
		go func() {
			if err := s.Append(sampleRecord(at.Add(time.Minute), StatusAccepted, VerdictClean)); err != nil {
				t.Error(err)
			}
			returned.Store(true)
		}()
		synctest.Wait()
		if returned.Load() {
			t.Fatal("Append returned while the queue was full, want it to block")
		}
		close(gate)
		synctest.Wait()
		if !returned.Load() {
			t.Fatal("Append still blocked after the committer went on")
		}
		s.Stop()
		if got := countLog(t, db); got != 6 {
			t.Errorf("got %d records, want 6: none dropped", got)
		}
	})
}

func TestSetLearned(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		ctx := context.Background()
		rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
		if err := s.Quarantine(ctx, rec, []byte(sampleRaw)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetLearned(ctx, rec.ID, "ham"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(rec.ID)
		if err != nil || got.Learned != "ham" {
			t.Fatalf("learned: %+v, %v; want ham", got, err)
		}
		// The content is untouched by the change of the record.
		if raw, err := s.Raw(rec.ID, Actor{}); err != nil || string(raw) != sampleRaw {
			t.Errorf("raw after SetLearned: %q, %v", raw, err)
		}
		if err := s.SetLearned(ctx, rec.ID, "maybe"); !errors.Is(err, ErrBadQuery) {
			t.Errorf("label maybe: got %v, want ErrBadQuery", err)
		}
		if err := s.SetLearned(ctx, testID(testBase.Add(time.Hour)), "spam"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: got %v, want ErrNotFound", err)
		}
	})
}
