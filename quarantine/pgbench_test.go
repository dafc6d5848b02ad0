package quarantine

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// loadPG fills a PostgreSQL store with n records spread evenly over the
// 30 days before end, as getBigLog does for bbolt, by COPY: the rows and
// the rollup counters are made by the store's own code (logRow,
// rollupKeys), only the path to the server is the bulk one.
func loadPG(b *testing.B, s *Store, pool *pgxpool.Pool, n int, end time.Time) (ident string) {
	b.Helper()
	ctx := context.Background()
	pb := s.be.(*pgBackend)
	span := 30 * 24 * time.Hour
	step := span / time.Duration(n)
	start := end.Add(-span)
	var days []int64
	for d := dayNumber(start); d <= dayNumber(end); d++ {
		days = append(days, d)
	}
	if err := pb.ensureDays(ctx, days); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	agg := make(map[countKey]*counts)
	keyHourLimit := end.Add(-DefaultHourlyRetention).Unix() / 3600
	began := time.Now()
	const chunk = 50000
	for base := 0; base < n; base += chunk {
		var rows [][]any
		for i := base; i < min(base+chunk, n); i++ {
			r := benchRecord(rng, i, start.Add(time.Duration(i)*step), 20000)
			if err := r.validate(); err != nil {
				b.Fatal(err)
			}
			if ident == "" && r.Status == StatusQuarantined {
				ident = r.Identity
			}
			var l logRow
			l.add(r, encodeRecord(nil, r))
			var ip any
			if l.ip[0] != "" {
				ip = l.ip[0]
			}
			rows = append(rows, []any{l.domain[0], l.id[0], l.ts[0], "bench", l.status[0], l.verdict[0], l.usr[0], l.identity[0],
				l.msgid[0], l.trace[0], ip, l.partial[0], l.sender[0], l.subject[0], l.rcpts[0], l.rec[0]})
			keys := rollupKeys(r)
			// Steady state: hourly per-key counters live 72 hours.
			keys = slices.DeleteFunc(keys, func(k string) bool {
				rr := parseRollup(k)
				return rr.gran == granKeyHour && int64(rr.bucket) < keyHourLimit
			})
			addCounts(agg, keys)
		}
		_, err := pool.CopyFrom(ctx, pgx.Identifier{"quarantine_log"},
			[]string{"domain", "id", "ts", "node", "status", "verdict", "usr", "identity", "msgid", "trace", "client_ip", "partial", "sender", "subject", "rcpts", "rec"},
			pgx.CopyFromRows(rows))
		if err != nil {
			b.Fatal(err)
		}
	}
	var rr [][]any
	for k, v := range agg {
		row := []any{k.domain, k.grp, k.gran, k.bucket, k.key}
		for _, n := range v {
			row = append(row, n)
		}
		rr = append(rr, row)
	}
	cols := append([]string{"domain", "grp", "gran", "bucket", "key"}, countColumns[:]...)
	for i := 0; i < len(rr); i += chunk {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"quarantine_counts"}, cols, pgx.CopyFromRows(rr[i:min(i+chunk, len(rr))])); err != nil {
			b.Fatal(err)
		}
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	if _, err := c.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `RESET statement_timeout`); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d records and %d rollup counters in %s", n, len(rr), time.Since(began).Round(time.Second))
	return ident
}

// benchPool returns a pool on a fresh database, or, with
// OUTGUARD_BENCH_PG_DB set, on that database of the test server, kept
// between runs: loaded reports whether it already holds n records.
func benchPool(b *testing.B, n int) (pool *pgxpool.Pool, loaded bool) {
	name := os.Getenv("OUTGUARD_BENCH_PG_DB")
	if name == "" {
		return pgtest.Pool(b), false
	}
	pool = pgtest.OpenPool(b, pgtest.KeptDatabase(b, name), true)
	var have int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM quarantine_log`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	switch int(have) {
	case n:
		return pool, true
	case 0:
		return pool, false
	}
	b.Fatalf("database %s holds %d records, not %d: drop it or name another", name, have, n)
	return nil, false
}

// benchIdentity returns an identity with quarantined messages in a
// loaded bench database.
func benchIdentity(b *testing.B, pool *pgxpool.Pool) string {
	var ident string
	if err := pool.QueryRow(context.Background(),
		`SELECT identity FROM quarantine_log WHERE status = $1 ORDER BY id LIMIT 1`, int16(StatusQuarantined)).Scan(&ident); err != nil {
		b.Fatal(err)
	}
	return ident
}

// benchmarkPostgres measures search, reports and size on a PostgreSQL log
// of n records (OUTGUARD_BENCH_RECORDS overrides n).
func benchmarkPostgres(b *testing.B, n int) {
	n = benchRecords(n)
	pool, loaded := benchPool(b, n)
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, err := NewPostgres(pool, Options{Node: "bench", Now: func() time.Time { return end }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	var ident string
	if loaded {
		ident = benchIdentity(b, pool)
	} else {
		ident = loadPG(b, s, pool, n, end)
	}
	b.Run("SearchIdentity", func(b *testing.B) {
		q := Query{Identity: ident, Statuses: []Status{StatusQuarantined}, Limit: 50}
		for b.Loop() {
			if p, err := s.Search(q); err != nil || len(p.Records) == 0 {
				b.Fatalf("got %d records, %v", len(p.Records), err)
			}
		}
	})
	b.Run("SearchDomainPage", func(b *testing.B) {
		q := Query{Domain: "out07.example.net", Limit: 50}
		for b.Loop() {
			if p, err := s.Search(q); err != nil || len(p.Records) != 50 {
				b.Fatalf("got %d records, %v", len(p.Records), err)
			}
		}
	})
	b.Run("SearchScanLastDay", func(b *testing.B) {
		q := Query{Subject: "#12345", From: end.Add(-24 * time.Hour), Limit: 50}
		for b.Loop() {
			if _, err := s.Search(q); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []Class{ClassAll, ClassSpam} {
		b.Run("Report30d/"+c.String(), func(b *testing.B) {
			q := ReportQuery{GroupBy: GroupIdentity, Class: c, From: end.Add(-30*24*time.Hour - 90*time.Minute), To: end.Add(-30 * time.Minute), Limit: 20}
			for b.Loop() {
				if rows, err := s.Report(q); err != nil || len(rows) == 0 {
					b.Fatalf("got %d rows, %v", len(rows), err)
				}
			}
		})
	}
	b.Run("Size", func(b *testing.B) {
		var logBytes, rollupBytes, count int64
		for b.Loop() {
			err := pool.QueryRow(context.Background(), `SELECT
				(SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i WHERE i.inhparent = 'quarantine_log'::regclass),
				pg_total_relation_size('quarantine_counts'),
				(SELECT count(*) FROM quarantine_log)`).Scan(&logBytes, &rollupBytes, &count)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(logBytes)/float64(count), "log-bytes/record")
		b.ReportMetric(float64(rollupBytes)/float64(count), "rollup-bytes/record")
		b.ReportMetric(float64(logBytes+rollupBytes)/float64(count), "total-bytes/record")
	})
}

// BenchmarkPostgres1M: search and report on a 1,000,000-record log in
// PostgreSQL (skips without OUTGUARD_TEST_PG_DSN).
func BenchmarkPostgres1M(b *testing.B) { benchmarkPostgres(b, 1000000) }

// BenchmarkPostgres5M: the same on 5,000,000 records.
func BenchmarkPostgres5M(b *testing.B) { benchmarkPostgres(b, 5000000) }
