package identity_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/outguard/outguard/identity"
	bolt "go.etcd.io/bbolt"
)

func ExampleManager_Observe() {
	dir, _ := os.MkdirTemp("", "identity-example")
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "outguard.db"), 0o600, nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// A fixed clock for the example; no background flush, Close writes.
	m, err := identity.Open(db, identity.Options{Now: func() time.Time { return now }, FlushInterval: -1})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	ctx := context.Background()
	policy := identity.DefaultPolicy() // 5 spam in 10 minutes lock for 1h
	for i := 1; i <= 5; i++ {
		out, err := m.Observe(ctx, identity.Observation{
			Domain: "out.example.net", User: "web1", Identity: "alice",
			TxID: fmt.Sprintf("tx%d", i), Class: identity.ClassSpam, Recipients: 1,
		}, policy)
		if err != nil {
			panic(err)
		}
		if out.Locked != nil {
			fmt.Println("locked:", out.Locked.Reason, out.Locked.Evidence.TxIDs)
		}
		now = now.Add(time.Minute)
	}
	if l, ok := m.CheckIdentity("out.example.net", "alice"); ok {
		fmt.Println("refused until", l.Expires.Format(time.Kitchen))
	}
	// Output:
	// locked: 5 spam in 10m0s [tx1 tx2 tx3 tx4 tx5]
	// refused until 1:04PM
}
