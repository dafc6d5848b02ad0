package quarantine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

func TestLookupKeys(t *testing.T) {
	// A column of addresses: every value has "cust0", "@site" and
	// ".example"; one in ten "t0N", "0N8" and "siteN".
	sample := &colSample{}
	for i := range 100 {
		sample.vals = append(sample.vals, fmt.Sprintf("cust0%d8%d7@site%d3.example", i%10, i/10, i%10))
		sample.weights = append(sample.weights, 0.01)
	}
	cases := []struct {
		needle string
		want   []string
	}{
		// The six rarest trigrams, not those of "cust", "site" or
		// "example" (in every value); "t05" is in one in ten, "051",
		// "512", "123", "234" and "e44" in none.
		{"cust051234@site44.example", []string{"t051234", "e44"}},
		{"example", nil},       // every trigram common: the whole needle
		{"@site.example", nil}, // likewise
		{"ab", nil},            // no trigram
		{"zzz.example", []string{"zzz"}},
		{"x-yz0", []string{"yz0"}},
		{"qrs_tuvw", []string{"qrs", "tuvw"}},
		{"a1b2c3d4e5f6g7h8", []string{"a1b2c3d4"}}, // the first six of equally rare ones
	}
	for _, c := range cases {
		if got := lookupKeys(c.needle, sample); !slices.Equal(got, c.want) {
			t.Errorf("lookupKeys(%q) = %q, want %q", c.needle, got, c.want)
		}
	}
	if got := lookupKeys("cust051234@site44.example", nil); got != nil {
		t.Errorf("without a sample: %q, want nil (the whole needle)", got)
	}
}

// TestPostgresTrigramKeyMatchesBolt: once the planner's statistics say
// which trigrams are common, a "contains" search asks the index for a
// rare part of the text only (indexKey) and checks the whole text on the
// rows found: the answers stay those of bbolt, page by page.
func TestPostgresTrigramKeyMatchesBolt(t *testing.T) {
	pool := pgtest.Pool(t)
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	recs := compareRecords(3000, start, 7*time.Minute)
	now := start.Add(3001 * 7 * time.Minute)
	opts := Options{Now: func() time.Time { return now }, Node: "node-a"}
	db, _ := openDB(t, true)
	bolt, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bolt.Stop)
	pg := newPGStore(t, pool, opts)
	for i, r := range recs {
		// Many senders and subjects, each in a few records, with parts
		// every record shares.
		r.Sender = fmt.Sprintf("News%04d@Host%02d.example", i%700, i%40)
		r.Subject = fmt.Sprintf("Order #%d_%d%% shipped", i%500, i%7)
		r.Recipients[0].Address = fmt.Sprintf("rcpt%03d@mail.example", i%300)
		for _, s := range []*Store{bolt, pg} {
			cp := *r
			if err := s.Append(&cp); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush(t, bolt)
	flush(t, pg)
	if _, err := pool.Exec(context.Background(), `ANALYZE quarantine_log`); err != nil {
		t.Fatal(err)
	}
	b := pg.be.(*pgBackend)
	// Days created ahead have no statistics: the sample comes from the
	// newest days that have some.
	last := dayNumber(now)
	if err := b.ensureDays(context.Background(), []int64{last + 3, last + 4, last + 5, last + 6, last + 7, last + 8}); err != nil {
		t.Fatal(err)
	}
	keyed := 0
	for _, q := range []Query{
		{Sender: "NEWS0123@host03.example", Limit: 2},
		{Sender: "news0123@", Limit: 3},
		{Sender: "@host07.", Limit: 20},
		{Sender: "0123@host03", Limit: 2},
		{Sender: "example", Limit: 50},
		{Subject: "order #123_", Limit: 2},
		{Subject: "#123_4%", Limit: 2},
		{Subject: "_4% shipped", Limit: 30},
		{Recipient: "rcpt042@mail", Limit: 3},
		{Recipient: "rcpt042@mail", Sender: "news0042", Limit: 3},
		{Sender: "news0999@host01.example"},
	} {
		for _, n := range []struct{ col, needle string }{{"sender", q.Sender}, {"subject", q.Subject}, {"rcpts", q.Recipient}} {
			needle := strings.ToLower(n.needle)
			if k := lookupKeys(needle, b.sample(context.Background(), n.col)); needle != "" && k != nil && !slices.Equal(k, []string{needle}) {
				keyed++
			}
		}
		sameSearchPages(t, bolt, pg, q, q.Sender != "news0999@host01.example", 20)
	}
	if keyed < 6 {
		t.Errorf("%d needles were looked up by a part of them, want at least 6: the test does not test indexKey", keyed)
	}
}
