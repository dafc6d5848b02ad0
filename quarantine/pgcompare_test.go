package quarantine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// compareSubjects hold LIKE's wildcards and escape character, and
// letters whose case folds outside ASCII.
var compareSubjects = []string{"Invoice overdue", "hello", "Your ACCOUNT", "Re: lunch", "50% OFF today", "50_ off today",
	`C:\Temp\Invoice.pdf`, "Fête de l'ÉTÉ: sale", "100%_sure"}

// compareRecords makes n varied records, one every step from start,
// oldest first: a few domains, identities, users and senders, every
// status and verdict.
func compareRecords(n int, start time.Time, step time.Duration) []*Record {
	rng := rand.New(rand.NewPCG(7, 11))
	domains := []string{"out.example.net", "Hosting.example", "corp.example"}
	recs := make([]*Record, n)
	for i := range recs {
		at := start.Add(time.Duration(i) * step)
		recs[i] = &Record{
			ID:         testID(at),
			Listener:   "smtp0",
			ClientIP:   netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(4))}),
			ClientPort: uint16(1024 + i%60000),
			User:       fmt.Sprintf("user%d", rng.IntN(5)),
			Domain:     domains[rng.IntN(len(domains))],
			Identity:   fmt.Sprintf("Ident%d@site.example", rng.IntN(25)),
			Sender:     fmt.Sprintf("s%d@sender%d.example", rng.IntN(9), rng.IntN(3)),
			Recipients: []Recipient{{Address: fmt.Sprintf("r%d@dest.example", rng.IntN(9)), Code: 250}},
			Subject:    compareSubjects[rng.IntN(len(compareSubjects))],
			MessageID:  fmt.Sprintf("<m%d@x>", i/3),
			Status:     Status(1 + rng.IntN(int(statusEnd)-1)),
			Verdict:    Verdict(rng.IntN(int(verdictEnd))),
			TraceToken: fmt.Sprintf("t%d", i),
		}
		if i%10 == 0 {
			recs[i].Identity = ""
		}
		if i%13 == 0 {
			recs[i].Sender = fmt.Sprintf("s_%d%%x@Sender%d.example", rng.IntN(9), rng.IntN(3))
			recs[i].Recipients = append(recs[i].Recipients, Recipient{Address: `odd\box_1@dest.example`, Code: 250})
		}
	}
	return recs
}

// TestPostgresReportsMatchBolt writes the same records, over seven
// weeks, to a bbolt store and a PostgreSQL store, and asks both the same
// reports (periods of hours to weeks, every grouping, class and scope),
// series and searches: the answers are equal. PostgreSQL sums whole weeks
// from its weekly counters (0102_quarantine_counts.sql), bbolt from days;
// after a sweep that passes the start of the log, weeks partly swept are
// summed from their days on both.
func TestPostgresReportsMatchBolt(t *testing.T) {
	pool := pgtest.Pool(t)
	start := time.Date(2026, 1, 7, 5, 0, 0, 0, time.UTC)
	recs := compareRecords(2500, start, 41*time.Minute) // 71 days
	last, _ := IDTime(recs[len(recs)-1].ID)
	now := last.Add(3 * time.Hour)
	clock := func() time.Time { return now }
	opts := Options{Now: clock, HourlyRetention: 50 * time.Hour, LogRetention: 100 * 24 * time.Hour}
	db, _ := openDB(t, true)
	bolt, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bolt.Stop)
	opts.Node = "node-a"
	pg := newPGStore(t, pool, opts)
	for _, s := range []*Store{bolt, pg} {
		for i, r := range recs {
			cp := *r
			if cp.Status == StatusQuarantined && i%2 == 0 {
				if err := s.Quarantine(context.Background(), &cp, []byte(sampleRaw)); err != nil {
					t.Fatal(err)
				}
			} else if err := s.Append(&cp); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, s)
	}
	first, _ := IDTime(recs[0].ID)
	span := last.Sub(first)
	groups := []GroupBy{GroupIdentity, GroupUser, GroupDomain, GroupSender}
	scopes := []string{"", "", "out.example.net", "HOSTING.example", "none.example"}
	reports := func(t *testing.T, seed uint64, n int) {
		t.Helper()
		rng := rand.New(rand.NewPCG(seed, 3))
		for i := range n {
			from := first.Add(-2*time.Hour + time.Duration(rng.Int64N(int64(span))))
			to := from.Add(time.Duration(rng.Int64N(int64(span)))).Add(time.Minute)
			if i%3 == 0 {
				to = from.Add(time.Duration(7+rng.IntN(30)) * 24 * time.Hour) // weeks
			}
			q := ReportQuery{
				GroupBy: groups[rng.IntN(len(groups))],
				Class:   Class(rng.IntN(int(classEnd))),
				From:    from,
				To:      to,
				Scope:   scopes[rng.IntN(len(scopes))],
				Limit:   []int{0, 5, 1000}[rng.IntN(3)],
			}
			if q.Class == ClassClean {
				q.GroupBy = GroupDomain
			}
			if i == 0 {
				q.From, q.To, q.Limit = first.Add(-time.Hour), now, 1000 // everything
			}
			want, err := bolt.Report(q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pg.Report(q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("report %d %+v:\npostgres %v\nbbolt    %v", i, q, got, want)
			}
			if i == 0 && len(got) == 0 {
				t.Fatal("the report over everything is empty")
			}
		}
	}
	t.Run("reports", func(t *testing.T) { reports(t, 1, 400) })
	t.Run("series", func(t *testing.T) {
		for _, q := range []SeriesQuery{
			{From: first, To: now, Step: 24 * time.Hour},
			{From: first, To: now, Step: 24 * time.Hour, Scope: "corp.example"},
			{From: last.Add(-80 * time.Hour), To: now, Step: time.Hour},
			{From: last.Add(-80 * time.Hour), To: now, Step: time.Hour, Scope: "Hosting.Example"},
		} {
			want, err := bolt.Series(q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pg.Series(q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("series %+v:\npostgres %v\nbbolt    %v", q, got, want)
			}
		}
	})
	t.Run("searches", func(t *testing.T) {
		mid := recs[len(recs)/2]
		for _, q := range []Query{
			{Identity: "ident3@site.example", Limit: 40},
			{Identity: "ident3@site.example", Statuses: []Status{StatusQuarantined}},
			{Sender: "s4@sender1", Limit: 30},
			{MessageID: mid.MessageID},
			{Statuses: []Status{StatusQuarantined, StatusDeferred}, Limit: 100},
			{Domain: "corp.example", Verdicts: []Verdict{VerdictVirus}, Limit: 1000},
			{Subject: "lunch", From: first.Add(20 * 24 * time.Hour), To: first.Add(27 * 24 * time.Hour), Limit: 1000},
			// "Contains" needles with LIKE's wildcards and escape
			// character, through the trigram index (three letters or
			// digits in a row) and the bounded scan (none).
			{Subject: "50% off", Limit: 40},
			{Subject: "50_ OFF", Limit: 40},
			{Subject: "%", Limit: 40},
			{Subject: "_", Limit: 40},
			{Subject: "0%_", Limit: 40},
			{Subject: `\`, Limit: 40},
			{Subject: `p\invoice`, Limit: 40},
			{Subject: `temp\`, Limit: 40},
			{Subject: "ÉTÉ: SALE", Limit: 40},
			{Subject: "été", Limit: 40},
			{Sender: "s_4%x@", Limit: 40},
			{Sender: "_4%", Limit: 40},
			{Sender: "s4", Limit: 40},
			{Sender: "@", Limit: 40, Statuses: []Status{StatusQuarantined}},
			{Recipient: `odd\box_`, Limit: 40},
			{Recipient: `\b`, Limit: 40},
			{Recipient: "r3", Limit: 40},
			{Recipient: "ox_1@dest", Identity: "ident3@site.example"},
			{Sender: "sender2", Subject: "re", Recipient: "dest", Limit: 25},
			{Sender: "nobody.example"},
		} {
			sameSearchPages(t, bolt, pg, q, q.Sender != "nobody.example", 5)
		}
	})
	// Retention passes the first weeks: their days go one by one, and
	// reports over them stay equal.
	now = first.Add(100*24*time.Hour + 17*24*time.Hour + 5*time.Hour)
	for _, s := range []*Store{bolt, pg} {
		if _, err := s.Sweep(now); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("reports after a sweep", func(t *testing.T) { reports(t, 2, 300) })
}

func ids(recs []*Record) string {
	var s string
	for _, r := range recs {
		s += r.ID + " "
	}
	return s
}

// sameSearchPages runs q on bbolt and on PostgreSQL page by page (up to
// maxPage) and fails t when a page's records, cursor or partial flag
// differ; some says the first page must not be empty.
func sameSearchPages(t *testing.T, bolt, pg *Store, q Query, some bool, maxPage int) {
	t.Helper()
	for page := 0; ; page++ {
		want, err := bolt.Search(q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pg.Search(q)
		if err != nil {
			t.Fatal(err)
		}
		if some && page == 0 && ids(want.Records) == "" {
			t.Errorf("search %+v: no records", q)
		}
		if ids(got.Records) != ids(want.Records) || got.NextCursor != want.NextCursor || got.Partial != want.Partial {
			t.Fatalf("search %+v page %d:\npostgres %s %q %v\nbbolt    %s %q %v", q, page,
				ids(got.Records), got.NextCursor, got.Partial, ids(want.Records), want.NextCursor, want.Partial)
		}
		if want.NextCursor == "" || page == maxPage {
			return
		}
		q.Cursor = want.NextCursor
	}
}
