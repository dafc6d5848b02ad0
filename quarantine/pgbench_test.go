package quarantine

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// benchLog calls fn with the n records of a bench log, spread evenly
// over the 30 days before end, oldest first: 20 domains, 20,000
// identities, as getBigLog writes for bbolt.
func benchLog(n int, end time.Time, fn func(i int, r *Record)) {
	rng, ids := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(3, 4))
	span := 30 * 24 * time.Hour
	step := span / time.Duration(n)
	start := end.Add(-span)
	for i := range n {
		at := start.Add(time.Duration(i) * step)
		r := benchRecord(rng, i, at, 20000)
		// The same ids on every run, so that two loads can be compared:
		// the id's milliseconds, then random bits as NewID makes.
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
		binary.BigEndian.PutUint64(b[8:], ids.Uint64())
		b[6], b[7] = byte(ids.Uint32()), byte(ids.Uint32())
		r.ID = encodeID(b)
		fn(i, r)
	}
}

// benchLogColumns are the columns of quarantine_log that loadPG fills;
// q_expired keeps its default.
var benchLogColumns = []string{"domain", "id", "ts", "node", "status", "verdict", "usr", "identity", "msgid", "trace",
	"client_ip", "partial", "sender", "subject", "rcpts", "rec"}

// loadPG fills the PostgreSQL database of a store opened with node name
// "bench" and Now at end with the records of benchLog (the log only if
// withLog), in the state the store leaves them in once it has written
// them and swept at end: the same rows (made by the store's own code,
// logRow and rollupKeys) and the same report counters (addCounts, less
// those the sweep deletes); TestPostgresBenchLoad checks that. Only the
// path to the server is the bulk one: each day's rows are copied into a
// table of their own, which is then attached as the day's partition, so
// that the server builds its indexes in one pass rather than row by row;
// the counters are copied last, in one transaction.
//
// A load cut short (the process stopped) resumes: the days whose
// partitions exist are loaded already (a day is created, loaded and
// attached in one transaction), and the counters are written only if the
// table holds none. It returns an identity with quarantined messages.
func loadPG(tb testing.TB, pool *pgxpool.Pool, n int, end time.Time, withLog bool) (ident string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	// A copy and an attachment can outlast the pool's statement timeout
	// on a busy machine; the indexes of an attached day build in memory.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0; SET maintenance_work_mem = '256MB'`); err != nil {
		tb.Fatal(err)
	}
	defer conn.Exec(ctx, `RESET statement_timeout; RESET maintenance_work_mem`)
	have, err := partitions(ctx, conn, "quarantine_log")
	if err != nil {
		tb.Fatal(err)
	}
	loaded := make(map[int64]bool)
	for _, d := range have {
		loaded[d] = true
	}
	began := time.Now()
	// The server copies and indexes a day while the next one is made:
	// one worker on conn, fed a day at a time.
	type day struct {
		d    int64
		rows [][]any
	}
	work := make(chan day, 1)
	days := 0
	var loadErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for w := range work {
			if loadErr != nil {
				continue
			}
			log, content := partitionName("quarantine_log", w.d), partitionName("quarantine_content", w.d)
			from, to := dayStart(w.d).Format(time.RFC3339), dayStart(w.d+1).Format(time.RFC3339)
			loadErr = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE quarantine_log INCLUDING DEFAULTS);
					CREATE TABLE %s PARTITION OF quarantine_content FOR VALUES FROM ('%s') TO ('%s')`, log, content, from, to)); err != nil {
					return err
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{log}, benchLogColumns, pgx.CopyFromRows(w.rows)); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE quarantine_log ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`, log, from, to))
				return err
			})
			if loadErr != nil {
				loadErr = fmt.Errorf("loading %s: %w", log, loadErr)
			}
			days++
		}
	})
	var rows [][]any
	cur := int64(-1)
	loadDay := func(d int64) {
		if withLog && !loaded[d] && d >= 0 {
			work <- day{d, rows}
		}
		rows = nil
	}
	agg := make(map[countKey]*counts)
	benchLog(n, end, func(i int, r *Record) {
		if err := r.validate(); err != nil {
			tb.Fatal(err)
		}
		if ident == "" && r.Status == StatusQuarantined {
			ident = r.Identity
		}
		addCounts(agg, rollupKeys(r))
		if !withLog {
			return
		}
		if d := dayNumber(idTime(r.ID)); d != cur {
			loadDay(cur)
			cur = d
		}
		if loaded[cur] {
			return
		}
		var l logRow
		l.add(r, encodeRecord(make([]byte, 0, 256), r))
		var ip any
		if l.ip[0] != "" {
			ip = l.ip[0]
		}
		rows = append(rows, []any{l.domain[0], l.id[0], l.ts[0], "bench", l.status[0], l.verdict[0], l.usr[0], l.identity[0],
			l.msgid[0], l.trace[0], ip, l.partial[0], l.sender[0], l.subject[0], l.rcpts[0], l.rec[0]})
	})
	loadDay(cur)
	close(work)
	wg.Wait()
	if loadErr != nil {
		tb.Fatal(loadErr)
	}
	// What the sweep at end deletes (pgBackend.sweep, default retention).
	var opts Options
	if err := opts.setDefaults(); err != nil {
		tb.Fatal(err)
	}
	limit := map[int16]int64{
		granHour:    end.Add(-opts.LogRetention).Unix() / 3600,
		granKeyHour: end.Add(-opts.HourlyRetention).Unix() / 3600,
		granDay:     end.Add(-opts.LogRetention).Unix() / 86400,
		granWeek:    end.Add(-opts.LogRetention).Unix() / 86400,
	}
	for k := range agg {
		if int64(k.bucket) < limit[k.gran] {
			delete(agg, k)
		}
	}
	var written int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM quarantine_counts`).Scan(&written); err != nil {
		tb.Fatal(err)
	}
	if written == 0 {
		// In the order a live store creates them: by the start of their
		// period.
		keys := make([]countKey, 0, len(agg))
		for k := range agg {
			keys = append(keys, k)
		}
		period := func(k countKey) int64 {
			if k.gran == granHour || k.gran == granKeyHour {
				return int64(k.bucket) * 3600
			}
			return int64(k.bucket) * 86400
		}
		slices.SortFunc(keys, func(a, b countKey) int { return cmp.Compare(period(a), period(b)) })
		cr := make([][]any, 0, len(keys))
		for _, k := range keys {
			row := []any{k.domain, k.grp, k.gran, k.bucket, k.key}
			for _, n := range agg[k] {
				row = append(row, n)
			}
			cr = append(cr, row)
		}
		cols := append([]string{"domain", "grp", "gran", "bucket", "key"}, countColumns[:]...)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"quarantine_counts"}, cols, pgx.CopyFromRows(cr))
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	// As autovacuum leaves them: visibility map and statistics.
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("loaded %d records (%d days of log) and %d report counters in %s", n, days, len(agg), time.Since(began).Round(time.Second))
	return ident
}

// TestPostgresBenchLoad: the bulk load of the benchmarks leaves the same
// log rows and report counters as the store does when it writes the
// records and sweeps.
func TestPostgresBenchLoad(t *testing.T) {
	const n = 4000
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{Node: "bench", Now: func() time.Time { return end }}
	bulk, stored := pgtest.Pool(t), pgtest.Pool(t)
	for _, pool := range []*pgxpool.Pool{bulk, stored} {
		s, err := NewPostgres(pool, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		if pool == bulk {
			if ident := loadPG(t, pool, n, end, true); ident == "" {
				t.Fatal("no quarantined identity")
			}
			continue
		}
		benchLog(n, end, func(i int, r *Record) {
			if err := s.Append(r); err != nil {
				t.Fatal(err)
			}
		})
		flush(t, s)
		if _, err := s.Sweep(end); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []struct{ name, order string }{
		{"quarantine_log", "id"},
		{"quarantine_counts", "domain, grp, gran, bucket, key"},
	} {
		read := func(pool *pgxpool.Pool) []string {
			rows, err := pool.Query(context.Background(), `SELECT t::text FROM `+table.name+` t ORDER BY `+table.order)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		got, want := read(bulk), read(stored)
		if len(want) < n/10 {
			t.Fatalf("%s: the store wrote %d rows", table.name, len(want))
		}
		if len(got) != len(want) {
			t.Errorf("%s: the bulk load has %d rows, the store %d", table.name, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("%s row %d:\nbulk  %s\nstore %s", table.name, i, got[i], want[i])
				break
			}
		}
	}
}

// benchPool returns a pool on a fresh database, or, with
// OUTGUARD_BENCH_PG_DB set, on that database of the test server, kept
// between runs, and whether it holds the n records and their counters
// already.
func benchPool(b *testing.B, n int) (pool *pgxpool.Pool, full bool) {
	name := os.Getenv("OUTGUARD_BENCH_PG_DB")
	if name == "" {
		return pgtest.Pool(b), false
	}
	pool = pgtest.OpenPool(b, pgtest.KeptDatabase(b, name), false)
	// A database loaded by an older schema is migrated: that can take
	// minutes (0102 rewrites the report counters, 0104 builds trigram
	// indexes).
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if res, err := pgdb.Migrate(ctx, pool, "bench"); err != nil {
		b.Fatal(err)
	} else if len(res.Applied) > 0 {
		b.Logf("migrated %s to version %d", name, res.Version)
	}
	var count, counters int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM quarantine_log), (SELECT count(*) FROM quarantine_counts)`).Scan(&count, &counters)
	})
	if err != nil {
		b.Fatal(err)
	}
	if int(count) > n {
		b.Fatalf("database %s holds %d records, more than %d: drop it or name another", name, count, n)
	}
	return pool, int(count) == n && counters > 0
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
	pool, full := benchPool(b, n)
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, err := NewPostgres(pool, Options{Node: "bench", Now: func() time.Time { return end }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	var ident string
	if full {
		ident = benchIdentity(b, pool)
	} else {
		ident = loadPG(b, pool, n, end, true)
	}
	var msgid string
	if err := pool.QueryRow(context.Background(), `SELECT msgid FROM quarantine_log WHERE ts >= $1 ORDER BY ts LIMIT 1`,
		end.Add(-15*24*time.Hour)).Scan(&msgid); err != nil {
		b.Fatal(err)
	}
	b.Run("CPUProbe", func(b *testing.B) {
		// Not the store: a fixed amount of server work (counting a
		// million generated rows), to tell how loaded the machine was
		// when the other figures were taken.
		for b.Loop() {
			if _, err := pool.Exec(context.Background(), `SELECT count(*) FROM generate_series(1, 1000000)`); err != nil {
				b.Fatal(err)
			}
		}
	})
	searches := []struct {
		name string
		q    Query
		some bool // the answer is not empty
	}{
		{"SearchIdentity", Query{Identity: ident, Statuses: []Status{StatusQuarantined}, Limit: 50}, true},
		// "Contains" filters (trigram indexes, 0104_quarantine_trgm.sql):
		// one identity's address (about 50 records a million), one of
		// 97 sender domains (1%), every record, none; one recipient
		// (about 25 a million) and one subject (about 11 a million).
		{"SearchSender", Query{Sender: ident, Limit: 50}, true},
		{"SearchSenderDomain", Query{Sender: "@site61.example", Limit: 50}, true},
		{"SearchSenderAll", Query{Sender: "example", Limit: 50}, true},
		{"SearchSenderNone", Query{Sender: "nobody.invalid", Limit: 50}, false},
		{"SearchRecipient", Query{Recipient: "rcpt234@mail2.", Limit: 50}, true},
		{"SearchSubject", Query{Subject: "#12345", Limit: 50}, true},
		// Too short for a trigram: the bounded scan (max_scan rows).
		{"SearchSenderShort", Query{Sender: "zq", Limit: 50}, false},
		{"SearchMessageID", Query{MessageID: "<" + msgid + ">", Limit: 50}, true},
		{"SearchStatus", Query{Statuses: []Status{StatusQuarantined}, Limit: 50}, true},
	}
	for _, sc := range searches {
		b.Run(sc.name, func(b *testing.B) {
			for b.Loop() {
				if p, err := s.Search(sc.q); err != nil || (sc.some && len(p.Records) == 0) {
					b.Fatalf("got %d records, %v", len(p.Records), err)
				}
			}
		})
	}
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
		var logBytes, trgmBytes, rollupBytes, count int64
		for b.Loop() {
			err := pool.QueryRow(context.Background(), `SELECT
				(SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i WHERE i.inhparent = 'quarantine_log'::regclass),
				(SELECT coalesce(sum(pg_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i WHERE i.inhparent IN
					(to_regclass('quarantine_log_sender_trgm'), to_regclass('quarantine_log_subject_trgm'), to_regclass('quarantine_log_rcpts_trgm'))),
				pg_total_relation_size('quarantine_counts'),
				(SELECT count(*) FROM quarantine_log)`).Scan(&logBytes, &trgmBytes, &rollupBytes, &count)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(logBytes)/float64(count), "log-bytes/record")
		b.ReportMetric(float64(trgmBytes)/float64(count), "trigram-index-bytes/record")
		b.ReportMetric(float64(rollupBytes)/float64(count), "rollup-bytes/record")
		b.ReportMetric(float64(logBytes+rollupBytes)/float64(count), "total-bytes/record")
	})
}

// BenchmarkPostgres1M: search and report on a 1,000,000-record log in
// PostgreSQL (skips without OUTGUARD_TEST_PG_DSN).
func BenchmarkPostgres1M(b *testing.B) { benchmarkPostgres(b, 1000000) }

// BenchmarkPostgresReport5M is the 30-day report over the counters of
// 5,000,000 records, without the log itself (which a report never reads):
// the counters are made from the records as in BenchmarkPostgres5M, in
// a few minutes. It runs only with OUTGUARD_BENCH_5M set.
func BenchmarkPostgresReport5M(b *testing.B) {
	if os.Getenv("OUTGUARD_BENCH_5M") == "" {
		b.Skip("set OUTGUARD_BENCH_5M=1 to make the counters of 5,000,000 records")
	}
	const n = 5000000
	pool := pgtest.Pool(b)
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s, err := NewPostgres(pool, Options{Node: "bench", Now: func() time.Time { return end }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	loadPG(b, pool, n, end, false)
	b.Run("CPUProbe", func(b *testing.B) {
		for b.Loop() {
			if _, err := pool.Exec(context.Background(), `SELECT count(*) FROM generate_series(1, 1000000)`); err != nil {
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
}

// BenchmarkPostgres5M: the same on 5,000,000 records. Loading them took
// 15 minutes on two shared cores: it runs only with OUTGUARD_BENCH_5M set
// (and OUTGUARD_BENCH_PG_DB to keep them for later runs).
func BenchmarkPostgres5M(b *testing.B) {
	if os.Getenv("OUTGUARD_BENCH_5M") == "" {
		b.Skip("set OUTGUARD_BENCH_5M=1 to load 5,000,000 records")
	}
	benchmarkPostgres(b, 5000000)
}

// benchMessage returns a quarantined message of about size bytes as spam
// usually is: headers, a text part of varied words and a base64
// attachment of random bytes (which does not compress).
func benchMessage(rng *rand.Rand, size int) []byte {
	words := strings.Fields("order invoice account please verify your payment details today offer limited " +
		"click here update password bank shipment delivered tracking number customer support team regards")
	var m strings.Builder
	m.WriteString("From: Customer <cust@site.example>\r\nTo: rcpt@mail.example\r\nSubject: Order confirmation\r\n" +
		"Message-ID: <x@site.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for line := 0; m.Len() < size/2; line++ {
		for range 10 {
			m.WriteString(words[rng.IntN(len(words))])
			m.WriteByte(' ')
		}
		m.WriteString("\r\n")
	}
	m.WriteString("--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	bin := make([]byte, (size-m.Len())*3/4)
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(bin)
	for len(enc) > 76 {
		m.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	m.WriteString(enc + "\r\n--b--\r\n")
	return []byte(m.String())
}

// backendCPU returns the CPU time the server's processes serving pool's
// database have used, read from /proc: the server must run on this
// machine (as .ci/postgres.sh starts it). Connections closed before the
// call are not counted.
func backendCPU(b *testing.B, pool *pgxpool.Pool) time.Duration {
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // not on this machine, or gone
		}
		// Fields after the command's closing parenthesis; utime and
		// stime are the 14th and 15th of the line.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		for _, i := range []int{11, 12} {
			var n int64
			fmt.Sscan(f[i], &n)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPostgresWrite measures the write path on PostgreSQL: records
// per second through the store's group committer, from 50 producers
// (Append, then Flush: relayed mail), with one node and with two nodes
// (two stores, each with its own pool, on one database, 25 producers
// each); and quarantined messages (Quarantine, synchronous, ~20 KB each),
// with the bytes they take. Run it with a fixed count so that each
// database is filled once, e.g. -benchtime 50000x.
func BenchmarkPostgresWrite(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("append/nodes=%d", nodes), func(b *testing.B) {
			dsn := pgtest.NewDatabase(b)
			var stores []*Store
			for i := range nodes {
				pool := pgtest.OpenPool(b, dsn, i == 0)
				s, err := NewPostgres(pool, Options{Node: fmt.Sprintf("bench-%d", i)})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(s.Stop)
				stores = append(stores, s)
			}
			base := time.Now()
			pgCPU := backendCPU(b, stores[0].be.(*pgBackend).pool)
			b.ResetTimer()
			start, goCPU := time.Now(), processCPU()
			runProducers(b, 50, func(i int, rng *rand.Rand) {
				r := benchRecord(rng, i, base.Add(time.Duration(i)*time.Microsecond), 20000)
				if err := stores[i%nodes].Append(r); err != nil {
					b.Error(err)
				}
			})
			for _, s := range stores {
				flush(b, s)
			}
			reportRate(b, start)
			b.StopTimer()
			// GIN indexes (the trigram ones of 0104_quarantine_trgm.sql)
			// gather new entries in a pending list that autovacuum, or the
			// insert that fills it, merges: merge what is left, so that
			// the work and the size are counted.
			if _, err := stores[0].be.(*pgBackend).pool.Exec(context.Background(), `SELECT gin_clean_pending_list(c.oid)
				FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'gin' AND c.relkind = 'i'`); err != nil {
				b.Fatal(err)
			}
			// CPU per record: the test process (records made, encoded,
			// sent) and the server's backends of this database (the
			// connections of every node's pool are still open).
			b.ReportMetric(float64((processCPU()-goCPU).Microseconds())/float64(b.N), "go-cpu-µs/record")
			b.ReportMetric(float64((backendCPU(b, stores[0].be.(*pgBackend).pool)-pgCPU).Microseconds())/float64(b.N), "pg-cpu-µs/record")
			// The log as written record by record (its GIN indexes grow
			// otherwise than when built in one pass, as loadPG does).
			var logBytes, count int64
			if err := stores[0].be.(*pgBackend).pool.QueryRow(context.Background(), `SELECT
				(SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i WHERE i.inhparent = 'quarantine_log'::regclass),
				(SELECT count(*) FROM quarantine_log)`).Scan(&logBytes, &count); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(logBytes)/float64(count), "log-bytes/record")
		})
	}
	b.Run("quarantine", func(b *testing.B) {
		pool := pgtest.Pool(b)
		s, err := NewPostgres(pool, Options{Node: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Stop)
		const size = 20000
		msgs := make([][]byte, 64)
		for i := range msgs {
			msgs[i] = benchMessage(rand.New(rand.NewPCG(uint64(i), 3)), size)
		}
		base := time.Now()
		b.SetBytes(size)
		b.ResetTimer()
		start := time.Now()
		runProducers(b, 50, func(i int, rng *rand.Rand) {
			r := benchRecord(rng, i, base.Add(time.Duration(i)*time.Microsecond), 20000)
			r.Status, r.Verdict = StatusQuarantined, VerdictSpam
			if err := s.Quarantine(context.Background(), r, msgs[i%len(msgs)]); err != nil {
				b.Error(err)
			}
		})
		reportRate(b, start)
		b.StopTimer()
		var contentBytes, n int64
		if err := pool.QueryRow(context.Background(), `SELECT
			(SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i WHERE i.inhparent = 'quarantine_content'::regclass),
			(SELECT count(*) FROM quarantine_content)`).Scan(&contentBytes, &n); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(contentBytes)/float64(n), "content-bytes/msg")
	})
}
