package ops

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// exerciseAudit is the conformance suite of an AuditStore: it records
// three entries through a, then lists them through reopen() (the same
// trail opened again) with each filter.
func exerciseAudit(t *testing.T, a AuditStore, reopen func() AuditStore) {
	t.Helper()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var recorded []AuditEntry
	for i, e := range []AuditEntry{
		{At: base, Actor: "root", Scope: ScopeAll, Action: AuditLock, Target: AuditTarget{Kind: "user", Domain: "a.example", Name: "u1"}, Reason: "spam", Detail: "permanent", Node: "mx1"},
		{At: base.Add(time.Minute), Actor: "dom", Scope: "a.example", Action: AuditUnlock, Target: AuditTarget{Kind: "user", Domain: "a.example", Name: "u1"}, Reason: "fixed", Node: "mx2"},
		{At: base.Add(2 * time.Minute), Actor: "root", Scope: ScopeAll, Action: AuditRelease, Target: AuditTarget{Kind: "message", Domain: "B.example", Name: "01J"}, Node: "mx1"},
	} {
		got, err := a.Record(e)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && got.ID <= recorded[i-1].ID {
			t.Errorf("entry %d: id %d after %d, want increasing ids", i, got.ID, recorded[i-1].ID)
		}
		e.ID = got.ID
		if got != e {
			t.Errorf("Record returned %+v, want %+v", got, e)
		}
		recorded = append(recorded, got)
	}
	a = reopen()
	// ids maps indexes of recorded to their ids.
	ids := func(idx ...int) []uint64 {
		var out []uint64
		for _, i := range idx {
			out = append(out, recorded[i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    AuditFilter
		want []uint64
	}{
		{"all newest first", AuditFilter{}, ids(2, 1, 0)},
		{"action", AuditFilter{Action: AuditLock}, ids(0)},
		{"actor", AuditFilter{Actor: "root"}, ids(2, 0)},
		{"domain folds case", AuditFilter{Domain: "b.EXAMPLE"}, ids(2)},
		{"domain and actor", AuditFilter{Domain: "A.example", Actor: "dom"}, ids(1)},
		{"since", AuditFilter{Since: base.Add(time.Minute)}, ids(2, 1)},
		{"before", AuditFilter{Before: recorded[2].ID}, ids(1, 0)},
		{"before past the end", AuditFilter{Before: recorded[2].ID + 99}, ids(2, 1, 0)},
		{"before the first", AuditFilter{Before: recorded[0].ID}, nil},
		{"limit", AuditFilter{Limit: 1}, ids(2)},
		{"next page", AuditFilter{Limit: 1, Before: recorded[2].ID}, ids(1)},
		{"nothing", AuditFilter{Actor: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.List(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Error("got nil, want an empty list")
			}
			var gotIDs []uint64
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			if len(gotIDs) != len(tc.want) {
				t.Fatalf("got %v, want %v", gotIDs, tc.want)
			}
			for i := range gotIDs {
				if gotIDs[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", gotIDs, tc.want)
				}
			}
		})
	}
	// The entries come back as recorded: time, actor and node kept.
	all, err := a.List(context.Background(), AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range all {
		want := recorded[len(recorded)-1-i]
		if !e.At.Equal(want.At) {
			t.Errorf("entry %d at %v, want %v", e.ID, e.At, want.At)
		}
		e.At = want.At
		if e != want {
			t.Errorf("listed %+v, want %+v", e, want)
		}
	}
}

func TestAuditBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	open := func() *bolt.DB {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	a, err := OpenAudit(db)
	if err != nil {
		t.Fatal(err)
	}
	exerciseAudit(t, a, func() AuditStore {
		db.Close()
		db = open()
		t.Cleanup(func() { db.Close() })
		a, err := OpenAudit(db)
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
}

func TestAuditPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, err := OpenPgAudit(pgtest.OpenPool(t, dsn, true), "mx1")
	if err != nil {
		t.Fatal(err)
	}
	exerciseAudit(t, a, func() AuditStore {
		b, err := OpenPgAudit(pgtest.OpenPool(t, dsn, false), "mx2")
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestAuditPostgresTwoNodes: two nodes recording at once on one database
// share one trail, each entry with the node that wrote it, in one order
// that both list alike.
func TestAuditPostgresTwoNodes(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, _ := OpenPgAudit(pgtest.OpenPool(t, dsn, true), "mx1")
	b, _ := OpenPgAudit(pgtest.OpenPool(t, dsn, false), "mx2")
	const each = 50
	var wg sync.WaitGroup
	for _, n := range []*PgAudit{a, b} {
		wg.Go(func() {
			for i := range each {
				if _, err := n.Record(AuditEntry{At: time.Now(), Actor: n.node, Scope: ScopeAll, Action: AuditLock,
					Target: AuditTarget{Kind: "user", Domain: "a.example", Name: "u" + string(rune('a'+i%26))}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	la, err := a.List(context.Background(), AuditFilter{Limit: MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.List(context.Background(), AuditFilter{Limit: MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(la) != 2*each || len(lb) != 2*each {
		t.Fatalf("node A lists %d entries, node B %d; want %d on both", len(la), len(lb), 2*each)
	}
	perNode := map[string]int{}
	for i, e := range la {
		if e.ID != lb[i].ID {
			t.Fatalf("entry %d: node A lists id %d, node B %d", i, e.ID, lb[i].ID)
		}
		if i > 0 && e.ID >= la[i-1].ID {
			t.Fatalf("ids not decreasing: %d after %d", e.ID, la[i-1].ID)
		}
		if e.Node != e.Actor {
			t.Errorf("entry %d recorded by %q names node %q", e.ID, e.Actor, e.Node)
		}
		perNode[e.Node]++
	}
	if perNode["mx1"] != each || perNode["mx2"] != each {
		t.Errorf("entries per node: %v, want %d each", perNode, each)
	}
	// Paging through one node with Before continues across the other's
	// entries without a gap.
	var paged int
	var before uint64
	for {
		page, err := b.List(context.Background(), AuditFilter{Limit: 7, Before: before, Domain: "A.EXAMPLE"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.ID != la[paged].ID {
				t.Fatalf("page entry %d: id %d, want %d", paged, e.ID, la[paged].ID)
			}
			paged++
		}
		before = page[len(page)-1].ID
	}
	if paged != 2*each {
		t.Errorf("paged through %d entries, want %d", paged, 2*each)
	}
}
