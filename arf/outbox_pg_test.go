package arf

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// backendPostgres names the subtest of eachBackend that runs on
// PostgreSQL.
const backendPostgres = "postgres"

// eachBackend runs fn on the bbolt outbox and on the PostgreSQL one; the
// postgres leg skips visibly without OUTGUARD_TEST_PG_DSN unless
// OUTGUARD_REQUIRE_EXTERNAL is set (internal/pgdb/pgtest).
func eachBackend(t *testing.T, fn func(t *testing.T)) {
	t.Run("bbolt", fn)
	t.Run(backendPostgres, fn)
}

func onPostgres(t testing.TB) bool { return strings.Contains(t.Name(), "/"+backendPostgres) }

// pgWorker opens an outbox on pool as node, delivering through the SMTP
// relay at addr.
func pgWorker(t *testing.T, pool *pgxpool.Pool, node, addr string, now func() time.Time) *Outbox {
	t.Helper()
	sender := &SMTPSender{Address: addr, Helo: node + ".test", TLS: "none"}
	ob, err := NewOutbox(OutboxOptions{
		Pool: pool, Node: node, Send: sender.Send,
		RetryInitial: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Lease: time.Minute, Now: now,
		Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ob.Stop)
	return ob
}

func (r *relay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.data)
}

// TestOutboxPostgresTwoWorkersSendOnce: two nodes' senders work one
// outbox on PostgreSQL at once; a real SMTP relay receives every report
// exactly once.
func TestOutboxPostgresTwoWorkersSendOnce(t *testing.T) {
	pool := pgtest.Pool(t)
	r := &relay{}
	addr := startRelay(t, r)
	a := pgWorker(t, pool, "node-a", addr, nil)
	b := pgWorker(t, pool, "node-b", addr, nil)
	const n = 60
	ctx := context.Background()
	// Half queued on each node, while both senders run.
	a.Start()
	b.Start()
	for i := range n {
		ob := a
		if i%2 == 1 {
			ob = b
		}
		if err := ob.Enqueue(ctx, Report{ID: fmt.Sprintf("rep-%02d", i), To: []string{"abuse@example.net"}, Raw: fmt.Appendf(nil, "Subject: report %d\r\n\r\nbody\r\n", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Both also run rounds of their own, as a restarted node would.
	done := make(chan error, 2)
	for _, ob := range []*Outbox{a, b} {
		go func() {
			var err error
			for range 20 {
				if _, err = ob.Round(ctx); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var sent int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM arf_outbox WHERE state = 'sent'`).Scan(&sent); err != nil {
			t.Fatal(err)
		}
		if sent == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent: %d of %d reports after 30s", sent, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Stop()
	b.Stop()
	if got := r.count(); got != n {
		t.Errorf("the relay received %d messages for %d reports", got, n)
	}
	seen := map[string]int{}
	r.mu.Lock()
	for _, d := range r.data {
		subj, _, _ := strings.Cut(string(d), "\r\n")
		seen[subj]++
	}
	r.mu.Unlock()
	for s, c := range seen {
		if c != 1 {
			t.Errorf("%s received %d times", s, c)
		}
	}
	var nodes int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT lease_node) FROM arf_outbox`).Scan(&nodes); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reports sent once each; taken by %d nodes", n, nodes)
}

// TestOutboxPostgresLeaseTakeover: a report held under the lease of a node
// that died is not sent by another node while the lease runs, and is sent
// once it ran out.
func TestOutboxPostgresLeaseTakeover(t *testing.T) {
	pool := pgtest.Pool(t)
	r := &relay{}
	addr := startRelay(t, r)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	dead := pgWorker(t, pool, "node-dead", addr, c.Now)
	live := pgWorker(t, pool, "node-live", addr, c.Now)
	ctx := context.Background()
	if err := dead.Enqueue(ctx, Report{ID: "held", To: []string{"abuse@example.net"}, Raw: []byte("Subject: held\r\n\r\nx\r\n")}); err != nil {
		t.Fatal(err)
	}
	// node-dead takes the report as its sender would, then dies before
	// delivering it.
	tag, err := pool.Exec(ctx, `UPDATE arf_outbox SET lease_until = $1, lease_node = 'node-dead' WHERE id = 'held'`, c.Now().Add(time.Minute))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("taking the lease: %v, %d rows", err, tag.RowsAffected())
	}
	next, err := live.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.count(); got != 0 {
		t.Fatalf("sent %d while another node's lease runs", got)
	}
	if want := c.Now().Add(time.Minute); !next.Equal(want) {
		t.Errorf("next round: got %v, want the end of the lease %v", next, want)
	}
	c.Add(time.Minute + time.Second)
	if _, err := live.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.count(); got != 1 {
		t.Fatalf("after the lease ran out: %d sent, want 1", got)
	}
	// Sent and recorded: no node sends it again.
	if _, err := dead.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.count(); got != 1 {
		t.Errorf("after more rounds: %d sent, want 1", got)
	}
	if p, err := live.Pending(); err != nil || len(p) != 0 {
		t.Errorf("pending: %v, %v", p, err)
	}
}

// TestOutboxPostgresSentDuringOutage: the database goes out of reach
// between a report's delivery and its record; the node that sent it keeps
// trying to record it, so that when the database is back, before its
// lease runs out, no node sends the report a second time.
func TestOutboxPostgresSentDuringOutage(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	server, err := pgx.Connect(ctx, pgtest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close(ctx)
	cfg, _ := pgx.ParseConfig(dsn)
	setReachable := func(on bool) {
		t.Helper()
		if _, err := server.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %v", cfg.Database, on)); err != nil {
			t.Fatal(err)
		}
		if !on {
			if _, err := server.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", cfg.Database); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer setReachable(true)

	r := &relay{}
	addr := startRelay(t, r)
	sender := &SMTPSender{Address: addr, Helo: "node-a.test", TLS: "none"}
	var cut sync.Once
	restored := make(chan struct{})
	send := func(ctx context.Context, from string, to []string, raw []byte) error {
		err := sender.Send(ctx, from, to, raw)
		cut.Do(func() {
			setReachable(false)
			go func() {
				time.Sleep(time.Second)
				setReachable(true)
				close(restored)
			}()
		})
		return err
	}
	open := func(node string, send func(context.Context, string, []string, []byte) error) *Outbox {
		ob, err := NewOutbox(OutboxOptions{
			Pool: pgtest.OpenPool(t, dsn, node == "node-a"), Node: node, Send: send,
			RetryInitial: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond,
			Lease: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ob.Stop)
		return ob
	}
	a := open("node-a", send)
	if err := a.Enqueue(ctx, Report{ID: "rep-outage", To: []string{"abuse@example.net"}, Raw: []byte("Subject: outage\r\n\r\nbody\r\n")}); err != nil {
		t.Fatal(err)
	}
	a.Start()
	<-restored
	b := open("node-b", (&SMTPSender{Address: addr, Helo: "node-b.test", TLS: "none"}).Send)
	b.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		err := a.opts.Pool.QueryRow(ctx, `SELECT state FROM arf_outbox WHERE id = 'rep-outage'`).Scan(&state)
		if err == nil && state == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report is %q (%v) 30s after the database came back, want sent", state, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Past the lease: nobody sends it again.
	time.Sleep(6 * time.Second)
	if got := r.count(); got != 1 {
		t.Errorf("the relay received the report %d times, want once", got)
	}
}
