package ops

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// BenchmarkPgAuditDomainList lists a page of one domain's audit entries
// out of a trail of 1M entries over 1,000 domains, where the domain's
// entries are the oldest ten: without the index on the domain, the
// listing would read the whole trail.
func BenchmarkPgAuditDomainList(b *testing.B) {
	pool := pgtest.Pool(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		INSERT INTO admin_audit (at, node, actor, scope, action, target_kind, target_domain, target_name)
		SELECT now(), 'mx1', 'root', 'all', 'lock', 'user', 'rare.example', 'u' || i FROM generate_series(1, 10) i`); err != nil {
		b.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO admin_audit (at, node, actor, scope, action, target_kind, target_domain, target_name)
			SELECT now(), 'mx' || (i % 3), 'root', 'all', 'lock', 'user', 'd' || (i % 1000) || '.example', 'u' || i
			FROM generate_series(1, 1000000) i`)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE admin_audit"); err != nil {
		b.Fatal(err)
	}
	a, _ := OpenPgAudit(pool, "mx1")
	for _, bc := range []struct {
		name string
		f    AuditFilter
		want int
	}{
		{"rare domain", AuditFilter{Domain: "RARE.example"}, 10},
		{"common domain", AuditFilter{Domain: "d7.example"}, DefaultAuditLimit},
		{"all", AuditFilter{}, DefaultAuditLimit},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				l, err := a.List(ctx, bc.f)
				if err != nil || len(l) != bc.want {
					b.Fatalf("got %d entries (%v), want %d", len(l), err, bc.want)
				}
			}
		})
	}
}
