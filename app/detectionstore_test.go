package app

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/baseline"
	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// migratedPool opens a pool on a fresh, migrated database.
func migratedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: pgtest.NewDatabase(t), MaxConns: 8, NodeName: "mx-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pgdb.Migrate(ctx, pool, "mx-test"); err != nil {
		t.Fatal(err)
	}
	return pool
}

// mergeWith is a round's merge function on det.
func mergeWith(det *baseline.Detector) func(string, *baseline.Profile, *baseline.Delta) {
	return func(_ string, p *baseline.Profile, d *baseline.Delta) { det.Merge(p, d) }
}

// profileKeys are n identities over a few domains.
func profileKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("customer%d.example\x00user%d", i%7, i)
	}
	return keys
}

// TestPgMergeProfilesConcurrent: three nodes merge their rounds into the
// same profiles at the same time, in different orders of observation;
// every message of every node is in the shared profiles at the end (no
// round overwrote another's), and no round failed (the rows are locked in
// one order by all).
func TestPgMergeProfilesConcurrent(t *testing.T) {
	pool := migratedPool(t)
	keys := profileKeys(300)
	const rounds, perRound = 8, 2
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 3*rounds)
	for n := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &pgDetectionStore{pool: pool, node: fmt.Sprint("node-", n)}
			det, err := baseline.New(baseline.Options{Deltas: true})
			if err != nil {
				errs <- err
				return
			}
			for r := range rounds {
				for i := range keys {
					k := keys[(i*[]int{1, 7, 11}[n]+r)%len(keys)] // a permutation: 300 is prime to 7 and 11
					for range perRound {
						det.Observe(k, at, 2, []string{fmt.Sprintf("d%d.example", n)})
					}
				}
				deltas := map[string]*baseline.Delta{}
				det.Deltas(func(k string, d *baseline.Delta) { deltas[k] = d })
				shared, err := st.mergeProfiles(context.Background(), deltas, nil, mergeWith(det))
				if err != nil {
					errs <- fmt.Errorf("node %d round %d: %w", n, r, err)
					return
				}
				for k, p := range shared {
					det.Apply(k, p)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := float64(3 * rounds * perRound)
	for _, k := range keys {
		b, ok, err := (&pgDetectionStore{pool: pool}).profile(context.Background(), k)
		if err != nil || !ok {
			t.Fatalf("%q: %v %v", k, ok, err)
		}
		var p baseline.Profile
		if err := p.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if s := p.Stats(); s.Messages != want || s.Recipients != 2*want || s.NewDomains < 3 {
			t.Fatalf("%q: %v messages, %v recipients, %v new domains; want %v, %v and at least 3", k, s.Messages, s.Recipients, s.NewDomains, want, 2*want)
		}
	}
}

// BenchmarkPgMergeProfiles is the cost of one node's flush round on
// PostgreSQL: merging the deltas of n identities into their shared
// profiles (merge), against writing n whole profiles as the store did
// before (put). rows/s is the rate of one round.
func BenchmarkPgMergeProfiles(b *testing.B) {
	pool := migratedPool(b)
	st := &pgDetectionStore{pool: pool, node: "mx-bench"}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, n := range []int{100, 1000, 10000} {
		keys := profileKeys(n)
		det, err := baseline.New(baseline.Options{Deltas: true})
		if err != nil {
			b.Fatal(err)
		}
		observe := func(i int) {
			for j, k := range keys {
				det.Observe(k, at.Add(time.Duration(i)*time.Millisecond), 1, []string{fmt.Sprintf("r%d.example", (i+j)%50)})
			}
		}
		observe(0)
		b.Run(fmt.Sprintf("merge/%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				b.StopTimer()
				observe(i)
				i++
				deltas := make(map[string]*baseline.Delta, n)
				det.Deltas(func(k string, d *baseline.Delta) { deltas[k] = d })
				b.StartTimer()
				shared, err := st.mergeProfiles(context.Background(), deltas, nil, mergeWith(det))
				if err != nil {
					b.Fatal(err)
				}
				for k, p := range shared {
					det.Apply(k, p)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(fmt.Sprintf("put/%d", n), func(b *testing.B) {
			batch := make(map[string][]byte, n)
			for _, k := range keys {
				p, _ := det.Load(k)
				batch[k], _ = p.MarshalBinary()
			}
			for b.Loop() {
				if err := st.putProfiles(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
