package baseline

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestEviction: a full shard evicts its least recently observed profile and
// hands it to OnEvict; Load does not count as an observation.
func TestEviction(t *testing.T) {
	var evicted []string
	var evictedMsgs []float64
	d := newDetector(t, Options{MaxProfiles: 4, Shards: 1, OnEvict: func(key string, p Profile) {
		evicted = append(evicted, key)
		evictedMsgs = append(evictedMsgs, p.Stats().Messages)
	}})
	at := monday.Add(9 * time.Hour)
	for _, k := range []string{"a", "b", "c", "d"} {
		d.Observe(k, at, 1, nil)
	}
	d.Observe("a", at, 1, nil) // a is now the most recent; b the least
	d.Load("b")                // reading does not refresh b
	d.Observe("e", at, 1, nil)
	d.Observe("f", at, 1, nil)
	if want := []string{"b", "c"}; !slices.Equal(evicted, want) {
		t.Fatalf("evicted %v, want %v", evicted, want)
	}
	if !slices.Equal(evictedMsgs, []float64{1, 1}) {
		t.Errorf("evicted profiles counted %v messages, want [1 1]", evictedMsgs)
	}
	if n := d.Len(); n != 4 {
		t.Errorf("Len = %d, want 4", n)
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "e": true, "f": true} {
		if _, ok := d.Load(k); ok != want {
			t.Errorf("Load(%q) found %v, want %v", k, ok, want)
		}
	}
	if p, _ := d.Load("a"); p.Stats().Messages != 2 {
		t.Errorf("a counted %g messages, want 2", p.Stats().Messages)
	}

	// Forget frees a slot, which the next new key takes without eviction.
	if !d.Forget("d") || d.Forget("d") {
		t.Fatal("Forget(d) twice: want true then false")
	}
	d.Observe("g", at, 1, nil)
	if len(evicted) != 2 || d.Len() != 4 {
		t.Errorf("after Forget and a new key: evicted %v, Len %d; want no eviction and 4", evicted, d.Len())
	}
	d.Observe("h", at, 1, nil)
	if want := []string{"b", "c", "a"}; !slices.Equal(evicted, want) {
		t.Errorf("evicted %v, want %v", evicted, want)
	}
}

// TestEvictionBound: many keys over many shards never exceed MaxProfiles.
func TestEvictionBound(t *testing.T) {
	evictions := 0
	d := newDetector(t, Options{MaxProfiles: 1000, Shards: 8, OnEvict: func(string, Profile) { evictions++ }})
	for i := range 20000 {
		d.Observe(fmt.Sprintf("id%d", i), monday, 1, nil)
	}
	if n := d.Len(); n != 1000 {
		t.Errorf("Len = %d, want 1000", n)
	}
	if evictions+d.Len() != 20000 {
		t.Errorf("evictions %d + Len %d, want 20000", evictions, d.Len())
	}
	// The most recent key of all is still there.
	if _, ok := d.Load("id19999"); !ok {
		t.Error("the most recent key was evicted")
	}
}

// TestRestart: profiles written by Snapshot and read back with Restore give
// a new Detector the same verdicts as the one that made them.
func TestRestart(t *testing.T) {
	d1 := newDetector(t, Options{})
	stored := map[string][]byte{}
	save := func(d *Detector, dirtyOnly bool) int {
		n := 0
		if err := d.Snapshot(dirtyOnly, func(key string, p *Profile) error {
			b, err := p.MarshalBinary()
			stored[key] = b
			n++
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	officeHours(t, d1, "ex.com/a", monday, 2, 20, fewDomains("x.example", "y.example"))
	officeHours(t, d1, "ex.com/b", monday, 2, 5, oneDomain("z.example"))
	if n := save(d1, true); n != 2 {
		t.Fatalf("first snapshot handed %d profiles, want 2", n)
	}
	if n := save(d1, true); n != 0 {
		t.Fatalf("second snapshot handed %d profiles, want 0 (nothing changed)", n)
	}
	d1.Observe("ex.com/b", monday.AddDate(0, 0, 14).Add(9*time.Hour), 1, []string{"z.example"})
	if n := save(d1, true); n != 1 {
		t.Fatalf("snapshot after one message handed %d profiles, want 1", n)
	}

	d2 := newDetector(t, Options{})
	for k, b := range stored {
		var p Profile
		if err := p.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		d2.Restore(k, p)
	}
	if n := save(d2, true); n != 0 {
		t.Errorf("restored profiles are dirty: snapshot handed %d", n)
	}
	burst := monday.AddDate(0, 0, 15).Add(11 * time.Hour)
	for _, d := range []*Detector{d1, d2} {
		r := sendHour(d, "ex.com/a", burst, 400, 1, oneDomain("x.example"))
		if r.max.Level != Lock || r.max.Signal != SignalVolume || r.max.Baseline != 20 {
			t.Errorf("20-fold burst after restart: got %v, want lock against a baseline of 20", r.max)
		}
	}
	p1, _ := d1.Load("ex.com/a")
	p2, _ := d2.Load("ex.com/a")
	if p1 != p2 {
		t.Error("the restored detector's profile differs from the original after the same messages")
	}
}

// TestSnapshotError: profiles not handed over when fn fails stay dirty.
func TestSnapshotError(t *testing.T) {
	d := newDetector(t, Options{Shards: 1})
	for _, k := range []string{"a", "b", "c"} {
		d.Observe(k, monday, 1, nil)
	}
	boom := errors.New("disk full")
	var got []string
	err := d.Snapshot(true, func(key string, _ *Profile) error {
		if len(got) == 1 {
			return boom
		}
		got = append(got, key)
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Snapshot error %v, want %v", err, boom)
	}
	var again []string
	if err := d.Snapshot(true, func(key string, _ *Profile) error { again = append(again, key); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(again)
	if len(again) != 2 || slices.Contains(again, got[0]) {
		t.Errorf("after a failed snapshot that saved %v, the next one handed %v; want the two others", got, again)
	}
}

// TestConcurrent: messages observed from many goroutines, with snapshots and
// restores going on, are all counted (run with -race).
func TestConcurrent(t *testing.T) {
	d := newDetector(t, Options{Shards: 4})
	const workers, keys, perWorker = 8, 50, 2000
	at := monday.Add(10 * time.Hour)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				d.Observe(fmt.Sprintf("k%d", (w*perWorker+i)%keys), at, 2, []string{"a.example", "b.example"})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			_ = d.Snapshot(false, func(string, *Profile) error { return nil })
			d.Load("k1")
			d.Len()
		}
	}()
	wg.Wait()
	total := 0.0
	for k := range keys {
		p, ok := d.Load(fmt.Sprintf("k%d", k))
		if !ok {
			t.Fatalf("k%d missing", k)
		}
		total += p.Stats().Messages
	}
	if total != workers*perWorker {
		t.Errorf("counted %g messages, want %d", total, workers*perWorker)
	}
}

func TestOptionsValidation(t *testing.T) {
	cases := []struct {
		name string
		o    Options
	}{
		{"negative MaxProfiles", Options{MaxProfiles: -1}},
		{"lock below suspect", Options{VolumeFloor: Limits{Suspect: 100, Lock: 50}}},
		{"negative warm-up limit", Options{WarmupRecipients: Limits{Suspect: -1}}},
		{"factor below 1", Options{SuspectFactor: 0.5}},
		{"lock factor below suspect factor", Options{SuspectFactor: 30}},
		{"peak factor NaN", Options{PeakLockFactor: nan()}},
		{"peak half-life below an hour", Options{PeakHalfLife: time.Minute}},
		{"negative MinBaseline", Options{MinBaseline: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.o); !errors.Is(err, ErrOptions) {
				t.Errorf("New: got %v, want ErrOptions", err)
			}
		})
	}
	if _, err := New(Options{}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func nan() float64 { z := 0.0; return z / z }

// TestFetchAndEvict: with OnEvict writing to a store and Fetch reading from
// it, an identity evicted from a detector that holds only two profiles
// keeps its history and is judged against it.
func TestFetchAndEvict(t *testing.T) {
	store := map[string][]byte{}
	fetches := 0
	d := newDetector(t, Options{
		MaxProfiles: 2, Shards: 1,
		OnEvict: func(key string, p Profile) {
			b, err := p.MarshalBinary()
			if err != nil {
				t.Error(err)
			}
			store[key] = b
		},
		Fetch: func(key string) (Profile, bool) {
			fetches++
			var p Profile
			b, ok := store[key]
			if !ok {
				return p, false
			}
			if err := p.UnmarshalBinary(b); err != nil {
				t.Error(err)
			}
			return p, true
		},
	})
	keys := []string{"a", "b", "c"}
	for day := range 14 {
		for h := 9; h < 17; h++ {
			for _, k := range keys { // three identities through two places
				sendHour(d, k, monday.AddDate(0, 0, day).Add(time.Duration(h)*time.Hour), 20, 1, oneDomain(k+".example"))
			}
		}
	}
	if d.Len() != 2 || fetches == 0 || len(store) == 0 {
		t.Fatalf("Len %d, fetches %d, stored %d: want 2 in memory and the rest going through the store", d.Len(), fetches, len(store))
	}
	for _, k := range keys {
		r := sendHour(d, k, monday.AddDate(0, 0, 14).Add(11*time.Hour), 400, 1, oneDomain(k+".example"))
		if r.max.Level != Lock || r.max.Signal != SignalVolume || r.max.Baseline != 20 || r.max.Warmup {
			t.Errorf("%s: 20-fold burst: got %v, want lock against its usual 20", k, r.max)
		}
	}
}

// TestConcurrentFetchEvict: with far more identities than places, evicted
// profiles going to a store and coming back through Fetch from many
// goroutines at once, no message is lost (run with -race).
func TestConcurrentFetchEvict(t *testing.T) {
	var mu sync.Mutex
	store := map[string]Profile{}
	d := newDetector(t, Options{
		MaxProfiles: 16, Shards: 4,
		OnEvict: func(key string, p Profile) {
			mu.Lock()
			store[key] = p
			mu.Unlock()
		},
		Fetch: func(key string) (Profile, bool) {
			mu.Lock()
			defer mu.Unlock()
			p, ok := store[key]
			return p, ok
		},
	})
	const workers, keys, perWorker = 8, 64, 3000
	at := monday.Add(10 * time.Hour)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				d.Observe(fmt.Sprintf("k%d", (w*7+i*13)%keys), at, 1, nil)
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		p, ok := d.Load(key)
		if !ok {
			p = store[key]
		}
		total += p.Stats().Messages
	}
	if total != workers*perWorker {
		t.Errorf("counted %g messages, want %d", total, workers*perWorker)
	}
	if d.Len() > 16 {
		t.Errorf("Len %d, more than MaxProfiles 16", d.Len())
	}
}
