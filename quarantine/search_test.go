package quarantine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// searchData writes n varied records and returns them, newest first.
func searchData(t testing.TB, s *Store, n int, seed uint64) []*Record {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	domains := []string{"out.example.net", "Hosting.example", "corp.example"}
	var recs []*Record
	ctx := context.Background()
	for i := range n {
		at := testBase.Add(time.Duration(i) * 37 * time.Minute)
		st := Status(1 + rng.IntN(int(statusEnd)-1))
		v := Verdict(rng.IntN(int(verdictEnd)))
		d := domains[rng.IntN(len(domains))]
		r := &Record{
			ID:         testID(at),
			Listener:   "smtp0",
			ClientIP:   netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(4))}),
			ClientPort: uint16(1024 + i),
			User:       fmt.Sprintf("user%d", rng.IntN(4)),
			Domain:     d,
			Identity:   fmt.Sprintf("Ident%d", rng.IntN(6)),
			Sender:     fmt.Sprintf("s%d@sender%d.example", rng.IntN(5), rng.IntN(3)),
			Recipients: []Recipient{{Address: fmt.Sprintf("r%d@dest.example", rng.IntN(9)), Code: 250}},
			Subject:    []string{"Invoice overdue", "hello", "Your ACCOUNT", "Re: lunch"}[rng.IntN(4)],
			MessageID:  fmt.Sprintf("<m%d@x>", i/2), // pairs share one
			Status:     st,
			Verdict:    v,
			TraceToken: fmt.Sprintf("t%d", i),
		}
		if i%10 == 0 {
			r.Identity = "" // no identity found
		}
		if i%9 == 0 {
			r.Partial = []string{"max_depth"}
		}
		if st == StatusQuarantined {
			if err := s.Quarantine(ctx, r, []byte(sampleRaw)); err != nil {
				t.Fatal(err)
			}
		} else if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
		cp := *r
		cp.Time, _ = IDTime(r.ID)
		recs = append(recs, &cp)
	}
	flush(t, s)
	slices.Reverse(recs)
	return recs
}

func TestSearch(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		recs := searchData(t, s, 400, 7)
		fold := strings.EqualFold
		has := func(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) }
		mid := testBase.Add(100 * 37 * time.Minute)
		cases := []struct {
			name  string
			q     Query
			match func(r *Record) bool
		}{
			{"everything", Query{}, func(r *Record) bool { return true }},
			{"status quarantined", Query{Statuses: []Status{StatusQuarantined}}, func(r *Record) bool { return r.Status == StatusQuarantined }},
			{"status rejected or deferred", Query{Statuses: []Status{StatusRejected, StatusDeferred}}, func(r *Record) bool { return r.Status == StatusRejected || r.Status == StatusDeferred }},
			{"verdict spam or virus", Query{Verdicts: []Verdict{VerdictSpam, VerdictVirus}}, func(r *Record) bool { return r.Verdict == VerdictSpam || r.Verdict == VerdictVirus }},
			{"user", Query{User: "USER2"}, func(r *Record) bool { return r.User == "user2" }},
			{"domain", Query{Domain: "hosting.example"}, func(r *Record) bool { return r.Domain == "Hosting.example" }},
			{"identity", Query{Identity: "ident3"}, func(r *Record) bool { return r.Identity == "Ident3" }},
			{"identity quarantined", Query{Identity: "Ident3", Statuses: []Status{StatusQuarantined}}, func(r *Record) bool { return r.Identity == "Ident3" && r.Status == StatusQuarantined }},
			{"sender contains", Query{Sender: "@SENDER1"}, func(r *Record) bool { return has(r.Sender, "@sender1") }},
			{"recipient contains", Query{Recipient: "r3@"}, func(r *Record) bool { return has(r.Recipients[0].Address, "r3@") }},
			{"subject contains", Query{Subject: "account"}, func(r *Record) bool { return has(r.Subject, "account") }},
			{"message-id exact", Query{MessageID: "m17@x"}, func(r *Record) bool { return r.MessageID == "<m17@x>" }},
			{"trace token", Query{TraceToken: "t33"}, func(r *Record) bool { return r.TraceToken == "t33" }},
			{"client ip", Query{ClientIP: netip.MustParseAddr("::ffff:192.0.2.1")}, func(r *Record) bool { return r.ClientIP == netip.MustParseAddr("192.0.2.1") }},
			{"time range", Query{From: mid, To: mid.Add(48 * time.Hour)}, func(r *Record) bool { return !r.Time.Before(mid) && r.Time.Before(mid.Add(48*time.Hour)) }},
			{"time range with status", Query{From: mid, To: mid.Add(72 * time.Hour), Statuses: []Status{StatusAccepted}}, func(r *Record) bool {
				return !r.Time.Before(mid) && r.Time.Before(mid.Add(72*time.Hour)) && r.Status == StatusAccepted
			}},
			{"scope", Query{Scope: "corp.example"}, func(r *Record) bool { return r.Domain == "corp.example" }},
			{"scope with status", Query{Scope: "corp.example", Statuses: []Status{StatusQuarantined}}, func(r *Record) bool { return r.Domain == "corp.example" && r.Status == StatusQuarantined }},
			{"scope with identity", Query{Scope: "corp.example", Identity: "ident1"}, func(r *Record) bool { return r.Domain == "corp.example" && r.Identity == "Ident1" }},
			{"scope with other domain filter", Query{Scope: "corp.example", Domain: "out.example.net"}, func(r *Record) bool { return false }},
			{"scope with same domain filter", Query{Scope: "corp.example", Domain: "CORP.example"}, func(r *Record) bool { return fold(r.Domain, "corp.example") }},
			{"scope with trace token of another domain", Query{Scope: "corp.example", Subject: "hello"}, func(r *Record) bool { return r.Domain == "corp.example" && has(r.Subject, "hello") }},
			{"everything combined", Query{Statuses: []Status{StatusQuarantined, StatusRejected}, Verdicts: []Verdict{VerdictSpam}, User: "user1", Domain: "out.example.net", Sender: "sender", Subject: "e"}, func(r *Record) bool {
				return (r.Status == StatusQuarantined || r.Status == StatusRejected) && r.Verdict == VerdictSpam && r.User == "user1" && r.Domain == "out.example.net" && has(r.Sender, "sender") && has(r.Subject, "e")
			}},
			{"partially scanned", Query{Partial: true}, func(r *Record) bool { return len(r.Partial) > 0 }},
			{"partially scanned with status", Query{Partial: true, Statuses: []Status{StatusAccepted}}, func(r *Record) bool { return len(r.Partial) > 0 && r.Status == StatusAccepted }},
			{"no match", Query{Identity: "nobody"}, func(r *Record) bool { return false }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var want []string
				for _, r := range recs {
					if tc.match(r) {
						want = append(want, r.ID)
					}
				}
				if tc.name != "no match" && !strings.HasPrefix(tc.name, "scope with other") && len(want) == 0 {
					t.Fatalf("test data has no match for %s", tc.name)
				}
				for _, limit := range []int{7, 1000} {
					q := tc.q
					q.Limit = limit
					var got []string
					pages := 0
					for {
						p, err := s.Search(q)
						if err != nil {
							t.Fatal(err)
						}
						pages++
						if len(p.Records) > limit {
							t.Fatalf("got %d records, want at most %d", len(p.Records), limit)
						}
						for _, r := range p.Records {
							got = append(got, r.ID)
						}
						if p.NextCursor == "" {
							break
						}
						if len(p.Records) == 0 {
							t.Fatalf("got an empty page with a cursor")
						}
						q.Cursor = p.NextCursor
						if pages > 500 {
							t.Fatal("pagination does not end")
						}
					}
					if !slices.Equal(got, want) {
						t.Errorf("limit %d: got %d ids, want %d:\ngot  %v\nwant %v", limit, len(got), len(want), got, want)
					}
					if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
						t.Errorf("limit %d: got %d pages, want %d", limit, pages, wantPages)
					}
				}
			})
		}
	})
}

// TestSearchMaxScan: a "contains" search over a log larger than the
// scan budget answers in partial pages that together hold every match.
// On PostgreSQL a needle with three letters or digits in a row is
// answered by a trigram index instead, in full pages; the matches are the
// same.
func TestSearchMaxScan(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{MaxScan: 50})
		recs := searchData(t, s, 300, 3)
		var want []string
		for _, r := range recs {
			if strings.Contains(r.Subject, "lunch") {
				want = append(want, r.ID)
			}
		}
		for _, needle := range []string{"lu", "LUNCH"} {
			q := Query{Subject: needle, Limit: 1000}
			var got []string
			partial := 0
			for {
				p, err := s.Search(q)
				if err != nil {
					t.Fatal(err)
				}
				if p.Partial {
					partial++
				}
				for _, r := range p.Records {
					got = append(got, r.ID)
				}
				if p.NextCursor == "" {
					break
				}
				q.Cursor = p.NextCursor
			}
			if !slices.Equal(got, want) {
				t.Errorf("%q: got %d ids, want %d", needle, len(got), len(want))
			}
			switch {
			case needle == "LUNCH" && onPostgres(t):
				if partial != 0 {
					t.Errorf("%q: got %d partial pages, want none (the trigram index answers)", needle, partial)
				}
			case partial < 5:
				t.Errorf("%q: got %d partial pages, want at least 5 (300 records, 50 per scan)", needle, partial)
			}
		}
	})
}

func TestSearchBadQuery(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		cases := []struct {
			name string
			q    Query
		}{
			{"negative limit", Query{Limit: -1}},
			{"huge limit", Query{Limit: MaxLimit + 1}},
			{"bad status", Query{Statuses: []Status{0}}},
			{"bad verdict", Query{Verdicts: []Verdict{42}}},
			{"reversed range", Query{From: testBase, To: testBase.Add(-time.Hour)}},
			{"garbage cursor", Query{Cursor: "!!!"}},
			{"foreign cursor", Query{Cursor: "aGVsbG8"}},
			{"cursor with bad id", Query{Cursor: encodeCursor("0000000000000000000000000U")}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.Search(tc.q); !errors.Is(err, ErrBadQuery) {
					t.Errorf("got %v, want ErrBadQuery", err)
				}
			})
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	f.Add(encodeCursor(testID(testBase)))
	f.Add("")
	f.Add("YzEu")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, c string) {
		id, err := parseCursor(c)
		if err != nil {
			return
		}
		if _, err := ParseID(id); err != nil {
			t.Errorf("parseCursor accepted %q giving invalid id %q", c, id)
		}
	})
}

// TestSearchUsesIndexes: with a scan budget far below the log's size,
// filtered searches still answer in full, because they walk an index
// rather than the log.
func TestSearchUsesIndexes(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{MaxScan: 120})
		recs := searchData(t, s, 400, 21)
		cases := []struct {
			name string
			q    Query
		}{
			{"message-id", Query{MessageID: recs[10].MessageID}},
			{"trace token", Query{TraceToken: recs[20].TraceToken}},
			{"identity", Query{Identity: "ident2"}},
			{"status", Query{Statuses: []Status{StatusDeferred}}},
			{"verdict", Query{Verdicts: []Verdict{VerdictVirus}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.q.Limit = MaxLimit
				p, err := s.Search(tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if p.Partial || len(p.Records) == 0 {
					t.Errorf("got %d records, partial %v; want a complete answer from the index", len(p.Records), p.Partial)
				}
			})
		}
		if onPostgres(t) {
			// The trigram indexes of the "contains" filters.
			for _, q := range []Query{{Subject: "no such subject"}, {Sender: "@SENDER2"}, {Recipient: "r3@dest"}} {
				q.Limit = MaxLimit
				p, err := s.Search(q)
				if err != nil || p.Partial || p.NextCursor != "" {
					t.Errorf("%+v: got %d records, partial %v, cursor %q, %v; want a complete answer from the index", q, len(p.Records), p.Partial, p.NextCursor, err)
				}
			}
		}
		// A needle too short for a trigram index: the bounded scan.
		p, err := s.Search(Query{Subject: "zq", Limit: MaxLimit})
		if err != nil || !p.Partial {
			t.Errorf("unindexed search: got partial %v, %v; want a partial page", p.Partial, err)
		}
	})
}
