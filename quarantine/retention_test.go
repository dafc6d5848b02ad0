package quarantine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/bbolt"
)

func bucketKeys(t *testing.T, db *bbolt.DB, name []byte) []string {
	t.Helper()
	var keys []string
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// logIDs lists the ids in the log, oldest first.
func logIDs(t *testing.T, db *bbolt.DB) []string {
	t.Helper()
	var ids []string
	for _, k := range bucketKeys(t, db, bucketLog) {
		ids = append(ids, keyID([]byte(k)))
	}
	return ids
}

func rollupEnd(k string) time.Time {
	b := int64(binary.BigEndian.Uint32([]byte(k[1:5])))
	if k[0] == granHour || k[0] == granKeyHour {
		return time.Unix((b+1)*3600, 0)
	}
	return time.Unix((b+1)*86400, 0)
}

func TestSweepRemovesWhatIsDueAndNothingElse(t *testing.T) {
	day := 24 * time.Hour
	now := time.Date(2026, 4, 10, 10, 30, 0, 0, time.UTC)
	ctx := context.Background()
	cases := []struct {
		name        string
		age         time.Duration
		quarantined bool
		wantRecord  bool
		wantContent bool
	}{
		{"60 days old", 60 * day, false, false, false},
		{"31 days old, quarantined", 31 * day, true, false, false},
		{"a millisecond past the log retention", 30*day + time.Millisecond, false, false, false},
		{"exactly at the log retention", 30 * day, false, true, false},
		{"29 days old", 29 * day, false, true, false},
		{"20 days old, quarantined", 20 * day, true, true, false},
		{"a millisecond past the quarantine retention", 14*day + time.Millisecond, true, true, false},
		{"exactly at the quarantine retention", 14 * day, true, true, true},
		{"13 days old, quarantined", 13 * day, true, true, true},
		{"an hour old, quarantined", time.Hour, true, true, true},
		{"an hour old", time.Hour + time.Second, false, true, false},
	}
	s, db := newTestStore(t, Options{LogRetention: 30 * day, QuarantineRetention: 14 * day, Now: func() time.Time { return now }})
	ids := make([]string, len(cases))
	for i, tc := range cases {
		st := StatusAccepted
		if tc.quarantined {
			st = StatusQuarantined
		}
		r := sampleRecord(now.Add(-tc.age), st, VerdictSpam)
		ids[i] = r.ID
		var err error
		if tc.quarantined {
			err = s.Quarantine(ctx, r, []byte(sampleRaw))
		} else {
			err = s.AppendWait(ctx, r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rollupsBefore := bucketKeys(t, db, bucketRollup)

	res, err := s.Sweep(now)
	if err != nil {
		t.Fatal(err)
	}
	wantContents := 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Get(ids[i])
			if tc.wantRecord != (err == nil) {
				t.Fatalf("got record err %v, want record kept %v", err, tc.wantRecord)
			}
			if !tc.wantRecord {
				return
			}
			_, err = s.Raw(ids[i], Actor{})
			switch {
			case tc.wantContent && err != nil:
				t.Errorf("got Raw error %v, want the content", err)
			case !tc.wantContent && tc.quarantined && !errors.Is(err, ErrGone):
				t.Errorf("got Raw error %v, want ErrGone", err)
			case !tc.wantContent && tc.quarantined && !r.Quarantine.Expired:
				t.Errorf("got %+v, want marked expired", r.Quarantine)
			}
		})
		if tc.quarantined && !tc.wantContent {
			wantContents++
		}
	}
	if res.Records != 3 || res.Contents != wantContents {
		t.Errorf("got %+v, want 3 records and %d contents removed", res, wantContents)
	}
	if got, want := s.qMessages.Load(), int64(3); got != want {
		t.Errorf("got %d quarantined messages counted, want %d", got, want)
	}

	// The index holds exactly the keys of the remaining records.
	var wantIdx []string
	for _, id := range logIDs(t, db) {
		r, err := s.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range indexKeys(r) {
			wantIdx = append(wantIdx, string(k))
		}
	}
	slices.Sort(wantIdx)
	if got := bucketKeys(t, db, bucketIndex); !slices.Equal(got, wantIdx) {
		t.Errorf("got %d index keys, want %d", len(got), len(wantIdx))
	}

	// Rollup buckets: exactly those that end at or before the cutoff went.
	cut, keyCut := now.Add(-30*day), now.Add(-DefaultHourlyRetention)
	var wantRollups []string
	for _, k := range rollupsBefore {
		if k[0] == granKeyHour && rollupEnd(k).After(keyCut) || k[0] != granKeyHour && rollupEnd(k).After(cut) {
			wantRollups = append(wantRollups, k)
		}
	}
	gotRollups := bucketKeys(t, db, bucketRollup)
	if !slices.Equal(gotRollups, wantRollups) {
		t.Errorf("got %d rollup keys, want %d", len(gotRollups), len(wantRollups))
	}
	if len(wantRollups) == len(rollupsBefore) || res.Rollups != len(rollupsBefore)-len(wantRollups) {
		t.Errorf("got %d rollups removed of %d, want %d", res.Rollups, len(rollupsBefore), len(rollupsBefore)-len(wantRollups))
	}

	// A second sweep at the same time removes nothing.
	res, err = s.Sweep(now)
	if err != nil || res != (SweepResult{}) {
		t.Errorf("second sweep: got %+v, %v; want nothing removed", res, err)
	}
}

func TestSweepLargeBacklogInChunks(t *testing.T) {
	s, db := newTestStore(t, Options{LogRetention: time.Hour, QuarantineRetention: time.Hour})
	n := sweepChunk*2 + 17
	for i := range n {
		if err := s.Append(sampleRecord(testBase.Add(time.Duration(i)*time.Millisecond), StatusAccepted, VerdictClean)); err != nil {
			t.Fatal(err)
		}
	}
	keep := sampleRecord(testBase.Add(2*time.Hour), StatusAccepted, VerdictClean)
	if err := s.AppendWait(context.Background(), keep); err != nil {
		t.Fatal(err)
	}
	res, err := s.Sweep(testBase.Add(time.Hour + time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != n {
		t.Errorf("got %d records removed, want %d", res.Records, n)
	}
	if got := logIDs(t, db); !slices.Equal(got, []string{keep.ID}) {
		t.Errorf("got log %v, want only %s", got, keep.ID)
	}
	for _, k := range bucketKeys(t, db, bucketIndex) {
		if !bytes.HasSuffix([]byte(k), idKey(keep.ID)) {
			t.Fatalf("index key %q of a swept record remains", k)
		}
	}
}

func TestSweeperRunsOnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // the bubble's fake clock
		s, db := newTestStore(t, Options{SweepInterval: time.Hour, LogRetention: 2 * time.Hour})
		old := sampleRecord(start.Add(-30*time.Minute), StatusAccepted, VerdictClean)
		if err := s.AppendWait(context.Background(), old); err != nil {
			t.Fatal(err)
		}
		s.Start()
		s.Start() // no second sweeper
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		if got := len(bucketKeys(t, db, bucketLog)); got != 1 {
			t.Fatalf("after one interval: got %d records, want 1 (not yet due)", got)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := len(bucketKeys(t, db, bucketLog)); got != 0 {
			t.Fatalf("after two intervals: got %d records, want 0", got)
		}
		s.Stop()
	})
}
