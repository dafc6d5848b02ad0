package content

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// storeBackends make a fresh Store and reopen it (a restart: a new handle
// on the same database).
var storeBackends = []struct {
	name string
	open func(t *testing.T) (first Store, reopen func() Store)
}{
	{"bbolt", func(t *testing.T) (Store, func() Store) {
		path := filepath.Join(t.TempDir(), "outguard.db")
		var db *bolt.DB
		open := func() Store {
			if db != nil {
				db.Close()
			}
			var err error
			db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return BoltStore{DB: db}
		}
		t.Cleanup(func() { db.Close() })
		return open(), open
	}},
	{"postgres", func(t *testing.T) (Store, func() Store) {
		dsn := pgtest.NewDatabase(t)
		pgtest.OpenPool(t, dsn, true)
		open := func() Store { return PgStore{Pool: pgtest.OpenPool(t, dsn, false), Node: "node-a"} }
		return open(), open
	}},
}

// TestStoreConformance: on either backend (the postgres leg skips without
// a test server, see internal/pgdb/pgtest) an empty store loads nil, a
// save is loaded back after a reopen, a second save replaces the first,
// and a Learner's lesson survives its restart.
func TestStoreConformance(t *testing.T) {
	for _, be := range storeBackends {
		t.Run(be.name, func(t *testing.T) {
			st, reopen := be.open(t)
			if got, err := st.Load(); err != nil || got != nil {
				t.Fatalf("empty store: got %q, %v; want nil", got, err)
			}
			for _, data := range [][]byte{[]byte("first overlay"), []byte("second")} {
				if err := st.Save(data); err != nil {
					t.Fatal(err)
				}
				st = reopen()
				if got, err := st.Load(); err != nil || !slices.Equal(got, data) {
					t.Errorf("after saving %q and reopening: got %q, %v", data, got, err)
				}
			}

			seed := NewModel([]uint32{1, 2, 3}, []float32{4, 4, 4}, 0, 3, 5, "")
			_, reopen = be.open(t) // a fresh store
			l, err := NewLearner(seed, LearnerOptions{Store: reopen()})
			if err != nil {
				t.Fatal(err)
			}
			f := Features{1, 2, 10}
			if _, _, err := l.Learn(f, nil, false); err != nil {
				t.Fatal(err)
			}
			want, _ := l.Score(f)
			l2, err := NewLearner(seed, LearnerOptions{Store: reopen()})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := l2.Score(f); got != want || l2.Info().Learned != l.Info().Learned {
				t.Errorf("after a restart: score %.3f, learned %d; want %.3f, %d", got, l2.Info().Learned, want, l.Info().Learned)
			}
		})
	}
}
