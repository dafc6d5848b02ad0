package feedback

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fleetPair returns the intakes of two nodes on one shared PostgreSQL
// database, with one message log and one lock manager between them.
func fleetPair(t *testing.T, s Settings) (a, b *env) {
	t.Helper()
	a = newEnv(t, pgBackend, s)
	bb := *a
	bb.reg = prometheus.NewRegistry()
	bb.in = bb.openAs(t, "node-b")
	bb.in.Configure(s)
	return a, &bb
}

// TestFleetDuplicates: a report received on node A is a duplicate on node
// B, and B does not count a second complaint of the reporter about the
// transaction A counted.
func TestFleetDuplicates(t *testing.T) {
	a, b := fleetPair(t, settings(false, fbl))
	orig := original("alice.1@customer.example", "")
	first := a.ingest(t, report("fbl@mailbox.example", "abuse", 1, orig))
	if !first.Counted {
		t.Fatalf("first report on A: %+v, want counted", first)
	}
	again := b.ingest(t, report("fbl@mailbox.example", "abuse", 1, orig))
	if !again.Duplicate || again.DuplicateOf != first.ID || again.ID != "" || again.Counted {
		t.Errorf("the same report on B: %+v; want a duplicate of A's %s, not stored", again, first.ID)
	}
	second := b.ingest(t, report("fbl@mailbox.example", "abuse", 2, orig))
	if !second.Duplicate || second.DuplicateOf != first.ID || second.ID == "" || second.Counted {
		t.Errorf("a second complaint on B: %+v; want stored, not counted, duplicate of %s", second, first.ID)
	}
	if n := len(a.locks.seen); n != 1 {
		t.Errorf("%d complaints counted across the nodes, want 1", n)
	}
	if la, lb := a.stored(t), b.stored(t); len(la) != 2 || len(lb) != 2 {
		t.Errorf("A lists %d reports, B %d; want both nodes' 2", len(la), len(lb))
	}
}

// TestFleetSameReportAtOnce sends each report to both nodes at the same
// moment: each is stored once and counted once, and the other node's
// answer is a duplicate of it.
func TestFleetSameReportAtOnce(t *testing.T) {
	a, b := fleetPair(t, settings(false, fbl))
	const reports = 40
	for i := range reports {
		raw := report("fbl@mailbox.example", "abuse", 100+i, original("alice.1@customer.example", ""))
		var wg sync.WaitGroup
		res := make([]Result, 2)
		errs := make([]error, 2)
		for j, e := range []*env{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[j], errs[j] = e.in.Ingest(context.Background(), raw, "test")
			}()
		}
		wg.Wait()
		for j := range 2 {
			if errs[j] != nil {
				t.Fatalf("report %d, node %d: %v", i, j, errs[j])
			}
		}
		stored, dup := res[0], res[1]
		if stored.ID == "" {
			stored, dup = dup, stored
		}
		if stored.ID == "" || dup.ID != "" || !dup.Duplicate || dup.DuplicateOf != stored.ID || dup.Counted {
			t.Errorf("report %d: node answers %+v and %+v; want one stored and one duplicate of it", i, res[0], res[1])
		}
	}
	if n := len(a.stored(t)); n != reports {
		t.Errorf("%d reports stored, want %d", n, reports)
	}
	// One complaint counts; the other reports are the reporter's second
	// complaints about the same transaction.
	if n := len(a.locks.seen); n != 1 {
		t.Errorf("%d complaints counted, want 1", n)
	}
}
