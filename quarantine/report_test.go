package quarantine

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// bruteReport counts recs the slow way, with the classification spelled
// out again independently of Record.classes.
func bruteReport(recs []*Record, q ReportQuery, now time.Time, hourly time.Duration) []ReportRow {
	to := q.To
	if to.IsZero() {
		to = now
	}
	from := q.From.Truncate(time.Hour)
	end := to.Truncate(time.Hour)
	if end.Before(to) {
		end = end.Add(time.Hour)
	}
	if q.GroupBy != GroupDomain {
		// Edges older than the hourly retention go out to whole days.
		oldest := now.Add(-hourly).Truncate(time.Hour)
		day := 24 * time.Hour
		if from.Before(oldest) {
			from = from.Truncate(day)
		}
		lastDay := end.Add(-time.Hour).Truncate(day)
		if !end.Equal(end.Truncate(day)) && maxTime(from, lastDay).Before(oldest) {
			end = lastDay.Add(day)
		}
	}
	in := func(r *Record) bool {
		switch q.Class {
		case ClassAll, 0:
			return true
		case ClassAccepted:
			return r.Status == StatusAccepted
		case ClassRejected:
			return r.Status == StatusQuarantined || r.Status == StatusRejected || r.Status == StatusReleased
		case ClassClean:
			return r.Verdict == VerdictClean
		case ClassSpam:
			return r.Verdict == VerdictSpam
		case ClassPhishing:
			return r.Verdict == VerdictPhishing
		case ClassVirus:
			return r.Verdict == VerdictVirus
		}
		panic("class")
	}
	counts := map[[2]string]int64{}
	for _, r := range recs {
		at, _ := IDTime(r.ID)
		if at.Before(from) || !at.Before(end) || !in(r) {
			continue
		}
		d := strings.ToLower(r.Domain)
		if q.Scope != "" && d != strings.ToLower(q.Scope) {
			continue
		}
		var k string
		switch q.GroupBy {
		case GroupDomain:
			k = d
		case GroupIdentity:
			k = strings.ToLower(r.Identity)
		case GroupUser:
			k = strings.ToLower(r.User)
		case GroupSender:
			k = strings.ToLower(r.Sender)
		}
		counts[[2]string{d, k}]++
	}
	var rows []ReportRow
	for k, n := range counts {
		rows = append(rows, ReportRow{Domain: k[0], Key: k[1], Count: n})
	}
	slices.SortFunc(rows, func(a, b ReportRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Key, b.Key))
	})
	limit := q.Limit
	if limit == 0 {
		limit = DefaultReportLimit
	}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	return rows
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestReportMatchesBruteForce(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		now := testBase.Add(10*24*time.Hour + 17*time.Minute)
		s, _ := newTestStore(t, Options{Now: func() time.Time { return now }, HourlyRetention: 50 * time.Hour})
		recs := searchData(t, s, 600, 11) // spans about 15 days
		first, _ := IDTime(recs[len(recs)-1].ID)
		last, _ := IDTime(recs[0].ID)
		span := last.Sub(first)
		rng := rand.New(rand.NewPCG(5, 5))
		groups := []GroupBy{GroupIdentity, GroupUser, GroupDomain, GroupSender}
		scopes := []string{"", "", "out.example.net", "HOSTING.example", "none.example"}
		for i := range 300 {
			from := first.Add(-2*time.Hour + time.Duration(rng.Int64N(int64(span))))
			to := from.Add(time.Duration(rng.Int64N(int64(span)))).Add(time.Minute)
			q := ReportQuery{
				GroupBy: groups[rng.IntN(len(groups))],
				Class:   Class(rng.IntN(int(classEnd))), // 0 means all
				From:    from,
				To:      to,
				Scope:   scopes[rng.IntN(len(scopes))],
				Limit:   []int{0, 3, 1000}[rng.IntN(3)],
			}
			if q.Class == ClassClean {
				q.GroupBy = GroupDomain // the only grouping that counts clean mail
			}
			if i == 0 {
				q.From, q.To = first.Add(-time.Hour), last.Add(time.Hour) // everything
			}
			if i%7 == 0 && q.From.Before(now) {
				q.To = time.Time{} // up to now
			}
			got, err := s.Report(q)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteReport(recs, q, now, 50*time.Hour)
			if !slices.Equal(got, want) {
				t.Fatalf("query %d %+v:\ngot  %v\nwant %v", i, q, got, want)
			}
			if i == 0 && len(got) == 0 {
				t.Fatal("report over everything is empty")
			}
		}
	})
}

func TestReportBadQuery(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{})
		cases := []struct {
			name string
			q    ReportQuery
		}{
			{"no group", ReportQuery{From: testBase}},
			{"bad class", ReportQuery{GroupBy: GroupUser, Class: 99, From: testBase}},
			{"no start", ReportQuery{GroupBy: GroupUser}},
			{"end before start", ReportQuery{GroupBy: GroupUser, From: testBase, To: testBase.Add(-time.Hour)}},
			{"huge limit", ReportQuery{GroupBy: GroupUser, From: testBase, Limit: MaxReportLimit + 1}},
			{"clean by identity", ReportQuery{GroupBy: GroupIdentity, Class: ClassClean, From: testBase}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.Report(tc.q); !errors.Is(err, ErrBadQuery) {
					t.Errorf("got %v, want ErrBadQuery", err)
				}
			})
		}
		for _, bad := range []string{"", "bogus"} {
			if _, err := ParseGroupBy(bad); !errors.Is(err, ErrBadQuery) {
				t.Errorf("ParseGroupBy(%q): got %v, want ErrBadQuery", bad, err)
			}
			if _, err := ParseClass(bad); !errors.Is(err, ErrBadQuery) {
				t.Errorf("ParseClass(%q): got %v, want ErrBadQuery", bad, err)
			}
		}
	})
}

func TestSeries(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		s, _ := newTestStore(t, Options{Now: func() time.Time { return testBase.Add(30 * 24 * time.Hour) }})
		recs := searchData(t, s, 300, 13)
		for _, tc := range []struct {
			name  string
			step  time.Duration
			scope string
		}{
			{"hourly", time.Hour, ""},
			{"daily", 24 * time.Hour, ""},
			{"daily scoped", 24 * time.Hour, "corp.example"},
			{"hourly scoped", time.Hour, "Hosting.Example"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				from := testBase.Add(-time.Hour)
				to := testBase.Add(10 * 24 * time.Hour)
				pts, err := s.Series(SeriesQuery{From: from, To: to, Step: tc.step, Scope: tc.scope})
				if err != nil {
					t.Fatal(err)
				}
				want := map[time.Time]SeriesPoint{}
				for _, r := range recs {
					at, _ := IDTime(r.ID)
					b := at.Truncate(tc.step)
					if b.Before(from.Truncate(tc.step)) || !b.Before(to) {
						continue
					}
					if tc.scope != "" && !strings.EqualFold(r.Domain, tc.scope) {
						continue
					}
					p := want[b]
					p.Start = b
					p.All++
					switch r.Status {
					case StatusAccepted:
						p.Accepted++
					case StatusQuarantined, StatusRejected, StatusReleased:
						p.Rejected++
					}
					switch r.Verdict {
					case VerdictClean:
						p.Clean++
					case VerdictSpam:
						p.Spam++
					case VerdictPhishing:
						p.Phishing++
					case VerdictVirus:
						p.Virus++
					}
					want[b] = p
				}
				total := int64(0)
				for i, p := range pts {
					if i > 0 && !p.Start.Equal(pts[i-1].Start.Add(tc.step)) {
						t.Fatalf("point %d starts at %v, want %v", i, p.Start, pts[i-1].Start.Add(tc.step))
					}
					w := want[p.Start]
					w.Start = p.Start
					if p != w {
						t.Errorf("at %v: got %+v, want %+v", p.Start, p, w)
					}
					total += p.All
				}
				if total == 0 {
					t.Error("series is empty")
				}
			})
		}
		if _, err := s.Series(SeriesQuery{From: testBase, Step: time.Minute}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("bad step: got %v, want ErrBadQuery", err)
		}
		if _, err := s.Series(SeriesQuery{From: testBase.Add(-3 * 365 * 24 * time.Hour), To: testBase}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("too many points: got %v, want ErrBadQuery", err)
		}
	})
}
