package quarantine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReleaseDeliversOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		raw := []byte(sampleRaw + strings.Repeat("more text\r\n", 100))
		t.Run("twice in a row", func(t *testing.T) {
			fd := &fakeDeliver{}
			now := testBase.Add(time.Hour)
			s, _ := newTestStore(t, Options{Deliver: fd.Deliver, Now: func() time.Time { return now }})
			rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
			if err := s.Quarantine(ctx, rec, raw); err != nil {
				t.Fatal(err)
			}
			res, err := s.Release(ctx, rec.ID, Actor{Name: "ops"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Already || res.By != "ops" || !res.At.Equal(now) {
				t.Errorf("first release: got %+v, want by ops at %v, not already", res, now)
			}
			res2, err := s.Release(ctx, rec.ID, Actor{Name: "someone else"})
			if err != nil {
				t.Fatal(err)
			}
			if !res2.Already || res2.By != "ops" {
				t.Errorf("second release: got %+v, want already released by ops", res2)
			}
			if got := fd.count(); got != 1 {
				t.Errorf("got %d deliveries, want 1", got)
			}
			if string(fd.raw) != string(raw) {
				t.Errorf("delivered content differs from the original (%d vs %d bytes)", len(fd.raw), len(raw))
			}
			if fd.from != rec.Sender || !slices.Equal(fd.rcpts, []string{"bob@example.org"}) {
				t.Errorf("got envelope %q %q, want %q [bob@example.org] (refused recipient skipped)", fd.from, fd.rcpts, rec.Sender)
			}
			got, _ := s.Get(rec.ID)
			if !got.Quarantine.Released() || got.Quarantine.ReleasedBy != "ops" {
				t.Errorf("got record quarantine %+v, want released by ops", got.Quarantine)
			}
		})
		t.Run("concurrently", func(t *testing.T) {
			fd := &fakeDeliver{gate: make(chan struct{})}
			s, _ := newTestStore(t, Options{Deliver: fd.Deliver})
			rec := sampleRecord(testBase, StatusQuarantined, VerdictPhishing)
			if err := s.Quarantine(ctx, rec, raw); err != nil {
				t.Fatal(err)
			}
			const n = 8
			var wg sync.WaitGroup
			results := make([]ReleaseResult, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { results[i], errs[i] = s.Release(ctx, rec.ID, Actor{Name: "ops"}) })
			}
			close(fd.gate)
			wg.Wait()
			fresh := 0
			for i := range n {
				if errs[i] != nil {
					t.Errorf("release %d: %v", i, errs[i])
				}
				if !results[i].Already {
					fresh++
				}
			}
			if got := fd.count(); got != 1 || fresh != 1 {
				t.Errorf("got %d deliveries and %d first releases, want 1 and 1", got, fresh)
			}
			if string(fd.raw) != string(raw) {
				t.Errorf("delivered content differs from the original")
			}
		})
		t.Run("failed delivery can be retried", func(t *testing.T) {
			fd := &fakeDeliver{Err: errors.New("451 try later")}
			s, _ := newTestStore(t, Options{Deliver: fd.Deliver})
			rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
			if err := s.Quarantine(ctx, rec, raw); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Release(ctx, rec.ID, Actor{Name: "ops"}); !errors.Is(err, ErrDeliver) {
				t.Fatalf("got %v, want ErrDeliver", err)
			}
			if got, _ := s.Get(rec.ID); got.Quarantine.Released() {
				t.Errorf("got released after a failed delivery, want not released")
			}
			fd.mu.Lock()
			fd.Err = nil
			fd.mu.Unlock()
			if res, err := s.Release(ctx, rec.ID, Actor{Name: "ops"}); err != nil || res.Already {
				t.Errorf("retry: got %+v, %v; want a fresh release", res, err)
			}
			if got := fd.count(); got != 1 {
				t.Errorf("got %d deliveries, want 1", got)
			}
		})
	})
}

func TestQuarantineOperationErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		fd := &fakeDeliver{}
		s, _ := newTestStore(t, Options{Deliver: fd.Deliver})
		q := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
		acc := sampleRecord(testBase.Add(time.Second), StatusAccepted, VerdictClean)
		del := sampleRecord(testBase.Add(2*time.Second), StatusQuarantined, VerdictVirus)
		for _, r := range []*Record{q, del} {
			if err := s.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendWait(ctx, acc); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, del.ID, Actor{Name: "ops"}); err != nil {
			t.Fatal(err)
		}
		other := Actor{Name: "scoped", Domain: "other.example"}
		unknown := testID(testBase.Add(time.Hour))
		cases := []struct {
			name string
			call func() error
			want error
		}{
			{"raw of unknown id", func() error { _, err := s.Raw(unknown, Actor{}); return err }, ErrNotFound},
			{"raw of malformed id", func() error { _, err := s.Raw("../etc/passwd", Actor{}); return err }, ErrNotFound},
			{"raw of accepted", func() error { _, err := s.Raw(acc.ID, Actor{}); return err }, ErrNotQuarantined},
			{"raw of deleted", func() error { _, err := s.Raw(del.ID, Actor{}); return err }, ErrGone},
			{"raw out of scope", func() error { _, err := s.Raw(q.ID, other); return err }, ErrNotFound},
			{"show out of scope", func() error { _, err := s.Show(q.ID, other); return err }, ErrNotFound},
			{"release out of scope", func() error { _, err := s.Release(ctx, q.ID, other); return err }, ErrNotFound},
			{"delete out of scope", func() error { return s.Delete(ctx, q.ID, other) }, ErrNotFound},
			{"release deleted", func() error { _, err := s.Release(ctx, del.ID, Actor{}); return err }, ErrGone},
			{"delete twice", func() error { return s.Delete(ctx, del.ID, Actor{}) }, ErrGone},
			{"delete accepted", func() error { return s.Delete(ctx, acc.ID, Actor{}) }, ErrNotQuarantined},
			{"delete unknown", func() error { return s.Delete(ctx, unknown, Actor{}) }, ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.call(); !errors.Is(err, tc.want) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
			})
		}
		if fd.count() != 0 {
			t.Errorf("got %d deliveries, want 0", fd.count())
		}
		got, _ := s.Get(del.ID)
		if got.Quarantine.DeletedBy != "ops" || got.Quarantine.DeletedAt.IsZero() {
			t.Errorf("got %+v, want deleted by ops", got.Quarantine)
		}
		scoped := Actor{Name: "scoped", Domain: "OUT.example.net"}
		if _, err := s.Raw(q.ID, scoped); err != nil {
			t.Errorf("raw in scope (domain case differs): %v", err)
		}
		if _, err := New(nil, Options{}); err == nil {
			t.Errorf("New(nil): got nil error")
		}
		s2, _ := newTestStore(t, Options{})
		if _, err := s2.Release(ctx, q.ID, Actor{}); !errors.Is(err, ErrNoDeliver) {
			t.Errorf("release without Deliver: got %v, want ErrNoDeliver", err)
		}
	})
}

func TestQuarantineMetrics(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		s, _ := newTestStore(t, Options{Registerer: reg})
		var recs []*Record
		for i := range 3 {
			r := sampleRecord(testBase.Add(time.Duration(i)*time.Second), StatusQuarantined, VerdictSpam)
			if err := s.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		if err := s.AppendWait(ctx, sampleRecord(testBase, StatusAccepted, VerdictClean)); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, recs[0].ID, Actor{}); err != nil {
			t.Fatal(err)
		}
		r, _ := s.Get(recs[1].ID)
		stored := 2 * r.Quarantine.StoredSize
		want := `
# HELP outguard_quarantine_bytes Stored (compressed) size of the quarantined messages.
# TYPE outguard_quarantine_bytes gauge
outguard_quarantine_bytes ` + strconv.FormatInt(stored, 10) + `
# HELP outguard_quarantine_messages Quarantined messages whose content is stored.
# TYPE outguard_quarantine_messages gauge
outguard_quarantine_messages 2
# HELP outguard_store_queue_depth Log writes waiting for the group committer.
# TYPE outguard_store_queue_depth gauge
outguard_store_queue_depth 0
# HELP outguard_store_records_total Message log records written, by transaction status.
# TYPE outguard_store_records_total counter
outguard_store_records_total{status="accepted"} 1
outguard_store_records_total{status="deferred"} 0
outguard_store_records_total{status="failed"} 0
outguard_store_records_total{status="quarantined"} 3
outguard_store_records_total{status="rejected"} 0
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
			"outguard_quarantine_bytes", "outguard_quarantine_messages", "outguard_store_queue_depth", "outguard_store_records_total"); err != nil {
			t.Error(err)
		}
		if n := testutil.CollectAndCount(reg, "outguard_store_commit_duration_seconds"); n != 1 {
			t.Errorf("got %d commit duration series, want 1", n)
		}
	})
}

// TestReleaseSetsStatus checks that a release makes the record released
// in the log and in every index (a search by status, and one by identity
// filtered by status), prepends ReleaseTrace's field to the delivered
// copy, and tells Deliver which message it releases.
func TestReleaseSetsStatus(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		fd := &fakeDeliver{}
		var releasing string
		deliver := func(ctx context.Context, from string, rcpts []string, raw []byte) error {
			releasing = Releasing(ctx)
			return fd.Deliver(ctx, from, rcpts, raw)
		}
		s, _ := newTestStore(t, Options{Deliver: deliver, ReleaseTrace: func(r *Record, at time.Time) string {
			return "Received: by test id " + r.ID + "\r\n"
		}})
		rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
		other := sampleRecord(testBase.Add(time.Minute), StatusQuarantined, VerdictSpam)
		for _, r := range []*Record{rec, other} {
			if err := s.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Release(ctx, rec.ID, Actor{Name: "ops"}); err != nil {
			t.Fatal(err)
		}
		if releasing != rec.ID || string(fd.raw) != "Received: by test id "+rec.ID+"\r\n"+sampleRaw {
			t.Errorf("Deliver saw id %q and %q", releasing, fd.raw)
		}
		if got, _ := s.Get(rec.ID); got.Status != StatusReleased || got.Status.String() != "released" {
			t.Errorf("status %v, want released", got.Status)
		}
		ids := func(q Query) []string {
			t.Helper()
			p, err := s.Search(q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range p.Records {
				out = append(out, r.ID)
			}
			return out
		}
		if got := ids(Query{Statuses: []Status{StatusReleased}}); !slices.Equal(got, []string{rec.ID}) {
			t.Errorf("released: %v, want %s", got, rec.ID)
		}
		if got := ids(Query{Statuses: []Status{StatusQuarantined}}); !slices.Equal(got, []string{other.ID}) {
			t.Errorf("quarantined: %v, want only %s", got, other.ID)
		}
		if got := ids(Query{Identity: rec.Identity, Statuses: []Status{StatusQuarantined}}); slices.Contains(got, rec.ID) {
			t.Errorf("identity and quarantined: %v still lists the released message", got)
		}
		if got := ids(Query{Identity: rec.Identity, Statuses: []Status{StatusReleased}}); !slices.Equal(got, []string{rec.ID}) {
			t.Errorf("identity and released: %v, want %s", got, rec.ID)
		}
		if st, err := ParseStatus("released"); err != nil || st != StatusReleased {
			t.Errorf("ParseStatus(released) = %v, %v", st, err)
		}
	})
}
