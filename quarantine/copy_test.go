package quarantine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/storecopy"
)

// TestCopyToPostgres fills a bbolt store (relayed and quarantined mail,
// content that retention removed, one quarantined message still held),
// copies it with the store's kinds, and reads it back through a
// PostgreSQL store: the same records, the content, the expired marks and
// the same report counts.
func TestCopyToPostgres(t *testing.T) {
	const day = 24 * time.Hour
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	src, db := newTestStore(t, Options{LogRetention: 30 * day, QuarantineRetention: 2 * day, Now: clock})
	ctx := context.Background()
	var expired []string
	for i := range 6 {
		r := sampleRecord(t0.Add(time.Duration(i)*time.Hour), StatusAccepted, VerdictClean)
		r.Identity = fmt.Sprintf("web%d", i%2)
		if err := src.AppendWait(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		r := sampleRecord(t0.Add(time.Duration(i)*time.Minute+7*time.Hour), StatusQuarantined, VerdictSpam)
		if err := src.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
			t.Fatal(err)
		}
		expired = append(expired, r.ID)
	}
	now = t0.Add(3 * day)
	if res, err := src.Sweep(now); err != nil || res.Contents != 2 {
		t.Fatalf("sweep: %+v %v; want 2 contents removed", res, err)
	}
	held := sampleRecord(now.Add(-time.Hour), StatusQuarantined, VerdictPhishing)
	if err := src.Quarantine(ctx, held, []byte(sampleRaw)); err != nil {
		t.Fatal(err)
	}
	flush(t, src)
	want, _ := src.Search(Query{Limit: MaxLimit})
	wantReport, err := src.Report(ReportQuery{GroupBy: GroupIdentity, From: t0.Add(-day), To: now})
	if err != nil {
		t.Fatal(err)
	}

	pool := pgtest.Pool(t)
	kinds := []storecopy.Kind{CopyLog(), CopyContent()}
	rep, err := storecopy.Run(ctx, db, pool, kinds, storecopy.Options{Source: "node.db", Node: "mx1", Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Kinds {
		if c.Copied != int64(c.Total) || c.Total == 0 {
			t.Errorf("%s: %+v, want every record copied", c.Kind, c)
		}
	}
	if rep.Kinds[1].Total != 1 {
		t.Errorf("content: %d records, want the one retention kept", rep.Kinds[1].Total)
	}

	dst := newPGStore(t, pool, Options{LogRetention: 30 * day, QuarantineRetention: 2 * day, Now: clock})
	got, err := dst.Search(Query{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != len(want.Records) || len(got.Records) != 9 {
		t.Fatalf("postgres holds %d records, bbolt %d", len(got.Records), len(want.Records))
	}
	for i, r := range got.Records {
		w := want.Records[i]
		if r.ID != w.ID || r.Identity != w.Identity || r.Status != w.Status || r.Verdict != w.Verdict || r.Subject != w.Subject {
			t.Errorf("record %d: %s %q %v %v, want %s %q %v %v", i, r.ID, r.Identity, r.Status, r.Verdict, w.ID, w.Identity, w.Status, w.Verdict)
		}
		if r.Quarantine != nil && r.Quarantine.Expired != slices.Contains(expired, r.ID) {
			t.Errorf("record %s: expired %v", r.ID, r.Quarantine.Expired)
		}
	}
	var marked int
	pool.QueryRow(ctx, `SELECT count(*) FROM quarantine_log WHERE q_expired`).Scan(&marked)
	if marked != 2 {
		t.Errorf("%d records marked q_expired, want 2", marked)
	}
	if raw, err := dst.Raw(held.ID, Actor{Name: "test"}); err != nil || string(raw) != sampleRaw {
		t.Errorf("held message on postgres: %q, %v", raw, err)
	}
	if _, err := dst.Raw(expired[0], Actor{Name: "test"}); err == nil {
		t.Errorf("expired content readable on postgres")
	}
	gotReport, err := dst.Report(ReportQuery{GroupBy: GroupIdentity, From: t0.Add(-day), To: now})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotReport) != fmt.Sprint(wantReport) || len(gotReport) == 0 {
		t.Errorf("report on postgres %v, want %v", gotReport, wantReport)
	}
}
