package pgdb_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

func TestMigrationsEmbedded(t *testing.T) {
	migs, err := pgdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Version != 1 {
		t.Fatalf("got %+v, want migrations from version 1", migs)
	}
	// Each owner numbers its migrations in its own block of a hundred
	// (0001-0099, 0100-0199, ...): within a block they follow each
	// other from its start.
	for i := 1; i < len(migs); i++ {
		prev, v := migs[i-1].Version, migs[i].Version
		if (v/100 == prev/100 && v != prev+1) || (v/100 != prev/100 && v%100 != 0) {
			t.Errorf("migration versions jump from %d to %d", prev, v)
		}
	}
}

// TestConcurrentMigrate starts several nodes' migrations at once on one
// empty database: each migration is applied exactly once, by one of them,
// and every call ends at the latest version.
func TestConcurrentMigrate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	migs, err := pgdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := migs[len(migs)-1].Version
	const nodes = 6
	var wg sync.WaitGroup
	results := make([]pgdb.Result, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	for i := range nodes {
		pool := pgtest.OpenPool(t, dsn, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			results[i], errs[i] = pgdb.Migrate(ctx, pool, "node"+string(rune('a'+i)))
		}()
	}
	close(start)
	wg.Wait()
	applied := map[int]int{}
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if results[i].Version != latest {
			t.Errorf("node %d ends at version %d, want %d", i, results[i].Version, latest)
		}
		for _, m := range results[i].Applied {
			applied[m.Version]++
		}
	}
	for _, m := range migs {
		if applied[m.Version] != 1 {
			t.Errorf("migration %d applied %d times, want once", m.Version, applied[m.Version])
		}
	}
	pool := pgtest.OpenPool(t, dsn, false)
	done, pending, err := pgdb.Status(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != len(migs) || len(pending) != 0 {
		t.Errorf("status: %d applied, %d pending; want %d and 0", len(done), len(pending), len(migs))
	}
	for _, a := range done {
		if !strings.HasPrefix(a.Node, "node") || a.AppliedAt.IsZero() {
			t.Errorf("version row %+v: want the applying node and a time", a)
		}
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "INSERT INTO outguard_schema_migrations (version, name, node) VALUES (9999, 'future', 'other')"); err != nil {
		t.Fatal(err)
	}
	_, err := pgdb.Migrate(ctx, pool, "old")
	if err == nil || !strings.Contains(err.Error(), "newer than this outguard") {
		t.Fatalf("got %v, want a refusal to run on a newer schema", err)
	}
}

func TestStatusOnEmptyDatabase(t *testing.T) {
	pool := pgtest.OpenPool(t, pgtest.NewDatabase(t), false)
	done, pending, err := pgdb.Status(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	migs, _ := pgdb.Migrations()
	if len(done) != 0 || len(pending) != len(migs) {
		t.Errorf("got %d applied, %d pending; want 0 and %d", len(done), len(pending), len(migs))
	}
}

func TestTouchNode(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	started := time.Now().Truncate(time.Second)
	for range 2 {
		if err := pgdb.TouchNode(ctx, pool, "mx1", "v1.2", started); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var version string
	if err := pool.QueryRow(ctx, "SELECT count(*), max(version) FROM outguard_nodes WHERE node_name = 'mx1'").Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != 1 || version != "v1.2" {
		t.Errorf("got %d rows, version %q; want one row with v1.2", n, version)
	}
}

func TestOpenBadDSNHidesPassword(t *testing.T) {
	_, err := pgdb.Open(context.Background(), pgdb.Options{DSN: "postgres://u:hunter2@db:notaport/x"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v, want an error without the password", err)
	}
}

func TestSkipsWithoutServer(t *testing.T) {
	t.Setenv(pgtest.EnvDSN, "")
	t.Setenv("OUTGUARD_REQUIRE_EXTERNAL", "")
	ran := false
	t.Run("inner", func(t *testing.T) {
		pgtest.ServerDSN(t)
		ran = true
	})
	if ran {
		t.Error("ServerDSN returned without a server instead of skipping")
	}
}

// TestMigrateAppliesLowerUnrecorded: a database that has the later blocks
// but misses an earlier version (added by a later release in its own
// block) gets that version applied, not skipped for being below the
// highest one.
func TestMigrateAppliesLowerUnrecorded(t *testing.T) {
	pool := pgtest.Pool(t) // migrated to the latest
	ctx := context.Background()
	migs, err := pgdb.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	first := migs[0]
	if _, err := pool.Exec(ctx, "DELETE FROM outguard_schema_migrations WHERE version = $1", first.Version); err != nil {
		t.Fatal(err)
	}
	// Undo what the first migration made, so that applying it again works.
	if _, err := pool.Exec(ctx, "DROP TABLE outguard_nodes"); err != nil {
		t.Fatal(err)
	}
	res, err := pgdb.Migrate(ctx, pool, "again")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || res.Applied[0].Version != first.Version {
		t.Fatalf("applied %+v, want only version %d", res.Applied, first.Version)
	}
	if res.Version != migs[len(migs)-1].Version {
		t.Errorf("version %d, want %d", res.Version, migs[len(migs)-1].Version)
	}
}
