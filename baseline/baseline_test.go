package baseline

import (
	"fmt"
	"testing"
	"time"
)

// monday is the start of the simulated weeks (2026-01-05 is a Monday).
var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func newDetector(t testing.TB, o Options) *Detector {
	t.Helper()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// hourResult sums up the verdicts of the messages of one hour.
type hourResult struct {
	max       Verdict   // the verdict with the highest level (the last one of that level)
	escalated []Verdict // verdicts with Escalated set, in order
}

// sendHour observes n messages of key spread over the hour starting at
// hour, each to rcpts recipients in the domains domain(i) returns.
func sendHour(d *Detector, key string, hour time.Time, n, rcpts int, domain func(i int) []string) hourResult {
	var r hourResult
	for i := range n {
		at := hour.Add(time.Duration(i) * (time.Hour / time.Duration(n)))
		v := d.Observe(key, at, rcpts, domain(i))
		if v.Level >= r.max.Level {
			r.max = v
		}
		if v.Escalated {
			r.escalated = append(r.escalated, v)
		}
	}
	return r
}

func oneDomain(d string) func(int) []string {
	ds := []string{d}
	return func(int) []string { return ds }
}

func fewDomains(ds ...string) func(int) []string {
	return func(i int) []string { return ds[i%len(ds) : i%len(ds)+1] }
}

// officeHours sends perHour messages in each hour from 09:00 to 16:00 on
// the weekdays of the given number of weeks from start, and fails the test
// on any verdict above None.
func officeHours(t *testing.T, d *Detector, key string, start time.Time, weeks, perHour int, domain func(int) []string) {
	t.Helper()
	for day := range weeks * 7 {
		date := start.AddDate(0, 0, day)
		if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for h := 9; h < 17; h++ {
			if r := sendHour(d, key, date.Add(time.Duration(h)*time.Hour), perHour, 1, domain); r.max.Level != None {
				t.Fatalf("%s at %s, ordinary traffic: got %v, want none", key, date.Add(time.Duration(h)*time.Hour), r.max)
			}
		}
	}
}

// TestWeeklyNewsletter runs a newsletter over six simulated weeks: 2000
// messages to 400 domains every Monday at 10:00 and three messages on
// weekday mornings. Its first burst comes under warm-up and locks; from the
// second week on the burst matches its own history and is not flagged; a
// tenfold burst in week six is a departure again.
func TestWeeklyNewsletter(t *testing.T) {
	d := newDetector(t, Options{})
	const key = "news.example/letter"
	subscribers := func(i int) []string { return []string{fmt.Sprintf("d%03d.example", i%400)} }
	office := fewDomains("partner.example", "printer.example")

	for week := range 6 {
		for day := range 7 {
			date := monday.AddDate(0, 0, week*7+day)
			if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
				continue
			}
			if r := sendHour(d, key, date.Add(9*time.Hour), 3, 1, office); r.max.Level != None {
				t.Fatalf("week %d %s 09:00: got %v, want none", week+1, date.Weekday(), r.max)
			}
			if date.Weekday() != time.Monday {
				continue
			}
			n := 2000
			if week == 5 {
				n = 20000
			}
			r := sendHour(d, key, date.Add(10*time.Hour), n, 1, subscribers)
			switch week {
			case 0:
				// First occurrence, under warm-up: the absolute limits apply.
				// 2000 messages to 400 domains cross the new-domain limits
				// (100, 300) before the message limits (200, 500).
				if r.max.Level != Lock || !r.max.Warmup {
					t.Fatalf("week 1 burst: got %v, want lock under warm-up", r.max)
				}
				if len(r.escalated) != 2 || r.escalated[0].Signal != SignalNewIdentityDomains || r.escalated[0].Value != 100 ||
					r.escalated[1].Level != Lock || r.escalated[1].Value != 300 {
					t.Fatalf("week 1 burst: escalations %v, want suspect at 100 new domains and lock at 300", r.escalated)
				}
				t.Logf("week 1 burst (warm-up): %v", r.escalated[1])
			case 5:
				if r.max.Level != Lock || r.max.Signal != SignalVolume {
					t.Fatalf("week 6 tenfold burst: got %v, want lock by %s", r.max, SignalVolume)
				}
				t.Logf("week 6 tenfold burst: %v", r.max)
			default:
				if r.max.Level != None {
					t.Fatalf("week %d burst: got %v, want none", week+1, r.max)
				}
				st, _ := d.Load(key)
				s := st.Stats()
				t.Logf("week %d burst not flagged: peak messages %.0f, peak new domains %.0f, new domains this hour %.0f, usual messages %.1f",
					week+1, s.PeakMessages, s.PeakNewDomains, s.NewDomains, s.UsualMessages)
			}
		}
	}
}

// TestOrdinaryIdentityBurst: an identity that sends 5 messages an hour in
// office hours for two weeks and then 200 in an hour is a suspect (40 times
// its usual, below the lock floor); one that sends 20 an hour is locked by
// a 20-fold burst and only suspected by a 19-fold one.
func TestOrdinaryIdentityBurst(t *testing.T) {
	domains := fewDomains("colleague.example", "client-a.example", "client-b.example")
	burstAt := monday.AddDate(0, 0, 14).Add(11 * time.Hour)
	cases := []struct {
		name        string
		usual       int
		burst       int
		wantLevel   Level
		wantSteps   []float64 // the values at which the level rose
		wantFactor  float64
		wantSuspect Threshold
	}{
		{"5 per hour, 200 in an hour", 5, 200, Suspect, []float64{100}, 40, Threshold{10, 3, 100}},
		{"20 per hour, 19-fold", 20, 380, Suspect, []float64{200}, 19, Threshold{10, 3, 100}},
		{"20 per hour, 20-fold", 20, 400, Lock, []float64{200, 400}, 20, Threshold{10, 3, 100}},
		{"20 per hour, 3-fold", 20, 60, None, nil, 3, Threshold{10, 3, 100}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDetector(t, Options{})
			key := "example.com/user"
			officeHours(t, d, key, monday, 2, c.usual, domains)
			r := sendHour(d, key, burstAt, c.burst, 1, domains)
			if r.max.Level != c.wantLevel {
				t.Fatalf("got %v, want level %v", r.max, c.wantLevel)
			}
			var steps []float64
			for _, v := range r.escalated {
				steps = append(steps, v.Value)
			}
			if fmt.Sprint(steps) != fmt.Sprint(c.wantSteps) {
				t.Errorf("escalations at %v, want %v", steps, c.wantSteps)
			}
			v := r.max
			if c.wantLevel != None && v.Signal != SignalVolume {
				t.Errorf("signal %q, want %q", v.Signal, SignalVolume)
			}
			if v.Warmup || v.Value != float64(c.burst) || v.Baseline != float64(c.usual) || v.Factor != c.wantFactor {
				t.Errorf("got value %g baseline %g factor %g warmup %v, want %d, %d, %g, false",
					v.Value, v.Baseline, v.Factor, v.Warmup, c.burst, c.usual, c.wantFactor)
			}
			if v.SuspectAt != c.wantSuspect || v.LockAt != (Threshold{20, 5, 300}) {
				t.Errorf("thresholds %+v %+v", v.SuspectAt, v.LockAt)
			}
			// The next hour starts afresh.
			if r := sendHour(d, key, burstAt.Add(time.Hour), c.usual, 1, domains); r.max.Level != None {
				t.Errorf("hour after the burst: got %v, want none", r.max)
			}
		})
	}
}

// TestNewDomainsBurst: an identity past warm-up that sends to the same few
// domains and then, in one hour, to 60 domains it never sent to is a
// suspect by the new-domains signal while its volume stays ordinary.
func TestNewDomainsBurst(t *testing.T) {
	d := newDetector(t, Options{})
	const key = "shop.example/sales"
	officeHours(t, d, key, monday, 2, 10, fewDomains("a.example", "b.example", "c.example"))
	r := sendHour(d, key, monday.AddDate(0, 0, 15).Add(10*time.Hour), 60, 1,
		func(i int) []string { return []string{fmt.Sprintf("fresh%d.example", i)} })
	v := r.max
	if v.Level != Suspect || v.Signal != SignalNewDomains || v.Value != 60 {
		t.Fatalf("got %v, want suspect by %s at 60", v, SignalNewDomains)
	}
	if len(r.escalated) != 1 || r.escalated[0].Value != 50 {
		t.Errorf("escalations %v, want one at 50 new domains", r.escalated)
	}
	p, _ := d.Load(key)
	if s := p.Stats(); s.NewDomains != 60 || s.DistinctDomains < 50 || s.DistinctDomains > 70 {
		t.Errorf("stats: new domains %g, distinct %g; want 60 and about 60", s.NewDomains, s.DistinctDomains)
	}
	// Domains already sent to are not new, in any case and with a trailing dot.
	before := p.Stats().NewDomains
	d.Observe(key, monday.AddDate(0, 0, 15).Add(10*time.Hour+59*time.Minute), 2, []string{"A.Example.", "fresh7.EXAMPLE"})
	p, _ = d.Load(key)
	if got := p.Stats().NewDomains; got != before {
		t.Errorf("new domains went from %g to %g on known domains", before, got)
	}
}

// TestWarmupLimits: a new identity is judged by the absolute limits.
func TestWarmupLimits(t *testing.T) {
	start := monday.Add(8 * time.Hour)
	cases := []struct {
		name       string
		msgs       int
		rcpts      int
		domains    func(int) []string
		wantLevel  Level
		wantSignal Signal
	}{
		{"199 messages", 199, 1, oneDomain("x.example"), None, ""},
		{"200 messages", 200, 1, oneDomain("x.example"), Suspect, SignalNewIdentityVolume},
		{"500 messages", 500, 1, oneDomain("x.example"), Lock, SignalNewIdentityVolume},
		{"one message to 1000 recipients", 1, 1000, oneDomain("x.example"), Suspect, SignalNewIdentityRecipients},
		{"ten messages to 250 recipients each", 10, 250, oneDomain("x.example"), Lock, SignalNewIdentityRecipients},
		{"100 messages to 100 domains", 100, 1, func(i int) []string { return []string{fmt.Sprintf("n%d.example", i)} }, Suspect, SignalNewIdentityDomains},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDetector(t, Options{})
			r := sendHour(d, "new.example/id", start, c.msgs, c.rcpts, c.domains)
			if r.max.Level != c.wantLevel || r.max.Signal != c.wantSignal {
				t.Fatalf("got %v, want %v by %q", r.max, c.wantLevel, c.wantSignal)
			}
			if !r.max.Warmup {
				t.Errorf("Warmup false for a new identity")
			}
		})
	}

	// Warm-up ends after 7 days (and WarmupActiveHours, default 1): an
	// identity with three active hours in ten days is judged by its
	// profile, unless WarmupActiveHours asks for more.
	for _, c := range []struct {
		activeHours int
		want        Verdict
	}{
		{0, Verdict{Level: Suspect, Signal: SignalVolume, Baseline: 2}},
		{5, Verdict{Level: Suspect, Signal: SignalNewIdentityVolume, Warmup: true}},
	} {
		d := newDetector(t, Options{WarmupActiveHours: c.activeHours})
		for day := range 3 {
			sendHour(d, "sparse.example/id", start.AddDate(0, 0, day), 2, 1, oneDomain("x.example"))
		}
		r := sendHour(d, "sparse.example/id", start.AddDate(0, 0, 10), 250, 1, oneDomain("x.example"))
		if v := r.max; v.Level != c.want.Level || v.Signal != c.want.Signal || v.Warmup != c.want.Warmup || v.Baseline != c.want.Baseline {
			t.Errorf("sparse identity, WarmupActiveHours %d: got %v, want %v by %s (warm-up %v)",
				c.activeHours, v, c.want.Level, c.want.Signal, c.want.Warmup)
		}
	}
}

// TestClockGoesBack: a time before the current hour counts in it.
func TestClockGoesBack(t *testing.T) {
	d := newDetector(t, Options{})
	d.Observe("k", monday.Add(5*time.Hour), 1, nil)
	d.Observe("k", monday.Add(3*time.Hour), 1, nil)
	p, _ := d.Load("k")
	if s := p.Stats(); s.Messages != 2 || !s.Hour.Equal(monday.Add(5*time.Hour)) {
		t.Errorf("got %g messages in hour %s, want 2 in %s", s.Messages, s.Hour, monday.Add(5*time.Hour))
	}
}

func TestProfileStatsLearn(t *testing.T) {
	d := newDetector(t, Options{})
	// Two hours: 4 messages with 3 recipients each to 2 domains (one new
	// per message at first), then 8 messages with 1 recipient to known ones.
	h := monday.Add(9 * time.Hour)
	sendHour(d, "k", h, 4, 3, func(i int) []string { return []string{"a.example", fmt.Sprintf("b%d.example", i%2)} })
	sendHour(d, "k", h.Add(time.Hour), 8, 1, oneDomain("a.example"))
	d.Observe("k", h.Add(5*time.Hour), 1, nil) // closes the second hour
	p, _ := d.Load("k")
	s := p.Stats()
	a := 1 - 1/1.0293022366434921 // 1 - 2^(-1/24)
	want := Stats{
		ActiveHours:          2,
		UsualMessages:        4 + a*(8-4),
		UsualRecipients:      12 + a*(8-12),
		UsualNewDomains:      3 + a*(0-3),
		UsualDistinctDomains: 3 + a*(1-3),
		RecipientsPerMessage: 3 + a*(1-3),
		NewDomainShare:       1 + a*(0-1),
		PeakMessages:         8 * 0.9985,
	}
	near := func(got, want float64) bool { return got > want*0.995-1e-6 && got < want*1.005+1e-6 }
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"ActiveHours", float64(s.ActiveHours), float64(want.ActiveHours)},
		{"UsualMessages", s.UsualMessages, want.UsualMessages},
		{"UsualRecipients", s.UsualRecipients, want.UsualRecipients},
		{"UsualNewDomains", s.UsualNewDomains, want.UsualNewDomains},
		{"UsualDistinctDomains", s.UsualDistinctDomains, want.UsualDistinctDomains},
		{"RecipientsPerMessage", s.RecipientsPerMessage, want.RecipientsPerMessage},
		{"NewDomainShare", s.NewDomainShare, want.NewDomainShare},
		{"PeakMessages", s.PeakMessages, want.PeakMessages},
		{"Messages", s.Messages, 1},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
}

// TestFirstBurstOfEstablishedIdentity: an identity past warm-up that starts
// a weekly newsletter is locked by its first burst, a departure from its
// history; once that burst is learned, the next weeks' bursts are not.
func TestFirstBurstOfEstablishedIdentity(t *testing.T) {
	d := newDetector(t, Options{})
	const key = "club.example/secretary"
	officeHours(t, d, key, monday, 3, 4, fewDomains("club.example", "town.example"))
	members := func(i int) []string { return []string{fmt.Sprintf("m%d.example", i%50)} }
	for week := 3; week < 7; week++ {
		r := sendHour(d, key, monday.AddDate(0, 0, week*7).Add(18*time.Hour), 1500, 1, members)
		want := None
		if week == 3 {
			want = Lock
		}
		if r.max.Level != want || r.max.Warmup {
			t.Fatalf("week %d: got %v, want %v", week+1, r.max, want)
		}
		if week == 3 && r.max.Signal != SignalVolume {
			t.Errorf("first burst locked by %s, want %s", r.max.Signal, SignalVolume)
		}
	}
}

// Example shows the numbers a caller writes into a lock's evidence.
func Example() {
	d, err := New(Options{})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	// Two weeks of 20 messages an hour in office hours...
	for day := range 14 {
		for h := range 8 {
			for m := range 20 {
				at := start.AddDate(0, 0, day).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
				d.Observe("example.com/alice", at, 1, []string{"partner.example"})
			}
		}
	}
	// ...then 400 in one hour. The peak of 20 has decayed a little
	// (half-life 28 days) since the last office hour.
	burst := start.AddDate(0, 0, 14).Add(2 * time.Hour)
	for i := range 400 {
		v := d.Observe("example.com/alice", burst.Add(time.Duration(i)*time.Second), 1, []string{"partner.example"})
		if v.Escalated {
			fmt.Println(v)
		}
	}
	// Output:
	// suspect volume_burst: 200 this hour, usual 20 (10x), peak 19.6 (10.2x); suspect at 10x/3x peak/100, lock at 20x/5x peak/300
	// lock volume_burst: 400 this hour, usual 20 (20x), peak 19.6 (20.4x); suspect at 10x/3x peak/100, lock at 20x/5x peak/300
}
