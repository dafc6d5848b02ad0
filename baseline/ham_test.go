package baseline

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestHamScenario runs six simulated weeks of legitimate traffic through a
// Detector with the default options: 300 ordinary identities with uneven
// days and an occasional larger mailing, a mailing list whose members
// grow, and a weekly newsletter whose list grows 3% a week. The only lock
// allowed is the newsletter's first issue, under warm-up (see
// docs/baseline.md, "The first occurrence of a burst").
func TestHamScenario(t *testing.T) {
	d := newDetector(t, Options{})
	rng := rand.New(rand.NewPCG(14, 2))
	type sender struct {
		key     string
		rate    float64
		domains []string
	}
	var people []sender
	for i := range 300 {
		s := sender{key: fmt.Sprintf("org%d.example/user%d", i/5, i), rate: 1 + 14*rng.Float64()}
		for j := range 5 + rng.IntN(35) {
			s.domains = append(s.domains, fmt.Sprintf("contact%d-%d.example", i, j))
		}
		people = append(people, s)
	}
	locks := map[Signal]int{}
	suspects := map[Signal]int{}
	var firstIssue []Verdict
	note := func(v Verdict, newsletterWeek int) {
		if !v.Escalated {
			return
		}
		if v.Level == Lock && newsletterWeek == 0 {
			firstIssue = append(firstIssue, v)
			return
		}
		if v.Level == Lock {
			locks[v.Signal]++
			t.Errorf("lock: %v", v)
		} else {
			suspects[v.Signal+map[bool]Signal{true: " (warm-up)", false: ""}[v.Warmup]]++
		}
	}
	members := 300
	subscribers := 2000.0
	messages := 0
	for day := range 42 {
		date := monday.AddDate(0, 0, day)
		weekend := date.Weekday() == time.Saturday || date.Weekday() == time.Sunday
		dayFactor := 0.3 + 1.4*rng.Float64() // quiet and busy days
		members += 2
		for h := 7; h < 20; h++ {
			hour := date.Add(time.Duration(h) * time.Hour)
			if !weekend && h >= 9 && h < 17 {
				for _, s := range people {
					n := int(s.rate * dayFactor * 2 * rng.Float64())
					if rng.IntN(200) == 0 { // an invitation or a round of replies
						n += int(3*s.rate) + 20
					}
					for i := range n {
						dom := s.domains[rng.IntN(len(s.domains))]
						if rng.IntN(20) == 0 {
							dom = fmt.Sprintf("first-contact%d.example", rng.Int())
						}
						note(d.Observe(s.key, hour.Add(time.Duration(i)*time.Second), 1+rng.IntN(3), []string{dom}), -1)
						messages++
					}
				}
			}
			// The mailing list: up to six posts an hour, each to every member
			// (members spread over a third as many domains).
			for range rng.IntN(7) {
				doms := make([]string, 0, members/3)
				for m := range members / 3 {
					doms = append(doms, fmt.Sprintf("member%d.example", m))
				}
				note(d.Observe("lists.example/club", hour.Add(time.Minute), members, doms), -1)
				messages++
			}
			if date.Weekday() == time.Monday && h == 10 {
				week := day / 7
				n := int(subscribers)
				for i := range n {
					note(d.Observe("news.example/weekly", hour.Add(time.Duration(i)*time.Second), 1,
						[]string{fmt.Sprintf("sub%d.example", i%(n/5))}), week)
				}
				messages += n
				subscribers *= 1.03
			}
		}
	}
	if len(firstIssue) != 1 || !firstIssue[0].Warmup {
		t.Errorf("newsletter's first issue: %v, want one lock under warm-up", firstIssue)
	}
	t.Logf("%d messages; locks %v; suspects %v; newsletter's first issue: %v", messages, locks, suspects, firstIssue)
}
