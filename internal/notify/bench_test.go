package notify

import (
	"context"
	"testing"
)

// BenchmarkNotify measures storing one event durably (one bbolt commit
// with fsync), the cost a lock pays for its notification.
func BenchmarkNotify(b *testing.B) {
	n, err := New(Options{DB: testDB(b), URL: "http://127.0.0.1:1/", Secret: testSecret, MaxPending: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Type: EventAutoLock, Domain: "out.example.net", Identity: "alice", TxIDs: []string{"01J1", "01J2", "01J3", "01J4", "01J5"}, Lock: &Lock{ID: "x", Kind: "identity", Actor: "auto"}}
	for b.Loop() {
		ev.ID = ""
		if err := n.Notify(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
