package ops_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
)

// TestIdentityProfile: the profile counts the identity's messages per
// hour by verdict, names its recipient domains, its complaints and its
// usage; a token of another domain is refused.
func TestIdentityProfile(t *testing.T) {
	e, _ := newEnv(t)
	ctx := context.Background()
	e.Feedback.List = []feedback.Result{
		{ID: "fb1", Domain: admintest.DomOut, Identity: "alice@customer.example", Reporter: "big-isp", Counted: true},
		{ID: "fb2", Domain: admintest.DomOut, Identity: "bob@customer.example"},
	}
	pr, err := e.Ops.IdentityProfile(ctx, out, admintest.DomOut, "alice@customer.example", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Step != time.Hour || len(pr.Buckets) != 24 || pr.Messages != 1 {
		t.Fatalf("step %v, %d buckets, %d messages; want 1h, 24, 1", pr.Step, len(pr.Buckets), pr.Messages)
	}
	var spam int
	for _, b := range pr.Buckets {
		spam += b.Spam
		if b.Spam == 1 && !b.Start.Equal(e.Clock.Now().Add(-2*time.Hour)) {
			t.Errorf("spam counted in the bucket of %v, want %v", b.Start, e.Clock.Now().Add(-2*time.Hour))
		}
	}
	if spam != 1 {
		t.Errorf("spam in the chart: %d, want 1", spam)
	}
	if len(pr.TopDomains) != 1 || pr.TopDomains[0] != (ops.DomainCount{Domain: "example.org", Count: 1}) {
		t.Errorf("top domains %+v, want example.org 1", pr.TopDomains)
	}
	if len(pr.Complaints) != 1 || pr.Complaints[0].ID != "fb1" {
		t.Errorf("complaints %+v, want fb1 only", pr.Complaints)
	}
	if pr.Usage == nil || len(pr.Usage.Counters) == 0 {
		t.Errorf("usage %+v, want the counted spam", pr.Usage)
	}
	if pr.Lock != nil || pr.Locked || strings.Join(pr.Users, ",") != "webhost1" {
		t.Errorf("lock %v locked %v users %v; want none, false, webhost1", pr.Lock, pr.Locked, pr.Users)
	}
	if _, err := e.Ops.IdentityProfile(ctx, other, admintest.DomOut, "alice@customer.example", 24*time.Hour); !errors.Is(err, ops.ErrForbidden) {
		t.Errorf("another domain's token: got %v, want ErrForbidden", err)
	}
	week, err := e.Ops.IdentityProfile(ctx, root, admintest.DomOut, "alice@customer.example", 7*24*time.Hour)
	if err != nil || week.Step != 24*time.Hour || week.Messages != 1 {
		t.Errorf("a week: step %v, %d messages, %v; want 24h, 1, nil", week.Step, week.Messages, err)
	}
}

// TestBulk: one reason, one audit entry per item naming it; a lock per
// identity; another domain's message fails alone.
func TestBulk(t *testing.T) {
	e, _ := newEnv(t)
	ctx := context.Background()
	if _, err := e.Ops.Bulk(ctx, root, ops.BulkOrder{Action: ops.BulkLock, IDs: []string{e.SpamOut}}); !errors.Is(err, ops.ErrBadRequest) {
		t.Fatalf("without reason: %v, want ErrBadRequest", err)
	}
	audit0 := e.AuditCount()
	items, err := e.Ops.Bulk(ctx, out, ops.BulkOrder{Action: ops.BulkLock, IDs: []string{e.SpamOut, e.CleanOut, e.SpamOther, e.SpamOut},
		Reason: "spam run 42", Duration: "7d", Via: "console"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || !items[0].Done || !items[1].Done || !errors.Is(items[2].Err, ops.ErrForbidden) {
		t.Fatalf("items %+v: want alice and bob locked, mallory's message forbidden", items)
	}
	if !e.IsLocked(identity.KindIdentity, admintest.DomOut, "alice@customer.example") || !e.IsLocked(identity.KindIdentity, admintest.DomOut, "bob@customer.example") ||
		e.IsLocked(identity.KindIdentity, admintest.DomOther, "mallory@other.example") {
		t.Error("locks: want alice and bob locked, mallory not")
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries)-audit0 != 2 {
		t.Fatalf("%d audit entries, want 2", len(entries)-audit0)
	}
	for _, a := range entries[:2] {
		if a.Action != ops.AuditLock || a.Reason != "spam run 42" {
			t.Errorf("audit entry %+v: want a lock naming the reason", a)
		}
	}
	items, err = e.Ops.Bulk(ctx, root, ops.BulkOrder{Action: ops.BulkRelease, IDs: []string{e.SpamOut, e.SpamOther}, Reason: "false positive"})
	if err != nil || len(items) != 2 || !items[0].Done || !items[1].Done || e.Deliver.Count() != 2 {
		t.Fatalf("release: %+v %v, %d delivered; want both released", items, err, e.Deliver.Count())
	}
	items, err = e.Ops.Bulk(ctx, root, ops.BulkOrder{Action: ops.BulkDelete, IDs: []string{e.SpamOut}, Reason: "cleanup"})
	if err != nil || len(items) != 1 || !items[0].Done {
		t.Fatalf("delete: %+v %v", items, err)
	}
	got := map[string]int{}
	for _, a := range e.AuditEntries(ops.AuditFilter{}) {
		got[a.Action+" "+a.Reason]++
	}
	if got["release false positive"] != 2 || got["delete cleanup"] != 1 {
		t.Errorf("audit %v: want 2 releases and 1 delete naming their reasons", got)
	}
}
