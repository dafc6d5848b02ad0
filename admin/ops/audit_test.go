package ops

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestAuditPersistsAndFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenAudit(db)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range []AuditEntry{
		{At: base, Actor: "root", Action: AuditLock, Target: AuditTarget{Kind: "user", Domain: "a.example", Name: "u1"}, Reason: "spam"},
		{At: base.Add(time.Minute), Actor: "dom", Action: AuditUnlock, Target: AuditTarget{Kind: "user", Domain: "a.example", Name: "u1"}, Reason: "fixed"},
		{At: base.Add(2 * time.Minute), Actor: "root", Action: AuditRelease, Target: AuditTarget{Kind: "message", Domain: "B.example", Name: "01J"}},
	} {
		got, err := a.Record(e)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != uint64(i+1) {
			t.Errorf("entry %d: got id %d", i, got.ID)
		}
	}
	db.Close()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err = OpenAudit(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    AuditFilter
		want []uint64
	}{
		{"all newest first", AuditFilter{}, []uint64{3, 2, 1}},
		{"action", AuditFilter{Action: AuditLock}, []uint64{1}},
		{"actor", AuditFilter{Actor: "root"}, []uint64{3, 1}},
		{"domain folds case", AuditFilter{Domain: "b.EXAMPLE"}, []uint64{3}},
		{"since", AuditFilter{Since: base.Add(time.Minute)}, []uint64{3, 2}},
		{"before", AuditFilter{Before: 3}, []uint64{2, 1}},
		{"before past the end", AuditFilter{Before: 99}, []uint64{3, 2, 1}},
		{"limit", AuditFilter{Limit: 1}, []uint64{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.List(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if len(ids) != len(tc.want) {
				t.Fatalf("got %v, want %v", ids, tc.want)
			}
			for i := range ids {
				if ids[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", ids, tc.want)
				}
			}
		})
	}
}
