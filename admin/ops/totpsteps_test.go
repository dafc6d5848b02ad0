package ops

import (
	"context"
	"testing"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// TestPgTOTPStepsFleetWide: two nodes' handles on one PostgreSQL (a real
// server; skips visibly without one): a step one node accepted is a replay
// on the other, an earlier step too, a later one is accepted once, and
// accounts do not share steps.
func TestPgTOTPStepsFleetWide(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := PgTOTPSteps{Pool: pgtest.OpenPool(t, dsn, true)}
	b := PgTOTPSteps{Pool: pgtest.OpenPool(t, dsn, false)}
	ctx := context.Background()
	for i, c := range []struct {
		s       TOTPSteps
		account string
		step    uint64
		want    bool
	}{
		{a, "alice", 100, true},
		{b, "alice", 100, false},
		{b, "alice", 99, false},
		{b, "alice", 101, true},
		{a, "alice", 101, false},
		{a, "bob", 100, true},
	} {
		got, err := c.s.Use(ctx, c.account, c.step)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%d: Use(%s, %d) = %v, want %v", i, c.account, c.step, got, c.want)
		}
	}
}
