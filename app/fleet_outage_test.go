package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
)

// pgOutage makes the test's database unreachable: it refuses new
// connections and its sessions are ended. The cluster keeps running (the
// tests of other packages share it). The returned function lets
// connections in again; it is also run at cleanup.
func pgOutage(t *testing.T, dsn string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	server, err := pgx.Connect(ctx, pgtest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := pgx.Identifier{cfg.Database}.Sanitize()
	if _, err := server.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", cfg.Database); err != nil {
		t.Fatal(err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if _, err := server.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true"); err != nil {
			t.Error(err)
		}
		server.Close(ctx)
	}
	t.Cleanup(restore)
	return restore
}

// readyOf returns the status code and body of a's /-/ready.
func readyOf(t *testing.T, a *App) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + a.AdminAddr().String() + "/-/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// metricOf returns the value of the gauge or counter name of a whose
// labels include those given; -1 when there is none.
func metricOf(t *testing.T, a *App, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// storeState is the state a's outguard_store_state says, "" if none.
func storeState(t *testing.T, a *App) string {
	t.Helper()
	for _, s := range []string{"ok", "shipping", "spooling", "unwritable"} {
		if metricOf(t, a, "outguard_store_state", "state", s) == 1 {
			return s
		}
	}
	return ""
}

// waitShipped waits until a's spool is empty and its store state ok.
func waitShipped(t *testing.T, a *App) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for storeState(t, a) != "ok" || metricOf(t, a, "outguard_store_spool_records") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s with %v records spooled 60s after PostgreSQL came back", a.Config().NodeName, storeState(t, a), metricOf(t, a, "outguard_store_spool_records"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relay sends msg through the SMTP listener at addr as the trial user and
// returns the final reply: its code and text (the text holds the log id).
// A refusal before DATA's reply is returned as its code and text too.
func relay(t *testing.T, addr, msg string) (int, string) {
	t.Helper()
	code, text, err := relayErr(addr, msg)
	if err != nil {
		t.Fatal(err)
	}
	return code, text
}

// relayErr is relay for goroutines: err is a failure without an SMTP
// reply.
func relayErr(addr, msg string) (int, string, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		return 0, "", err
	}
	fail := func(err error) (int, string, error) {
		r := replyOf(err)
		if r == nil {
			return 0, "", fmt.Errorf("no SMTP reply: %w", err)
		}
		return r.Code, fmt.Sprintf("%d.%d.%d %s", r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2], r.Message), nil
	}
	if err := c.Mail("x@out.example.net", nil); err != nil {
		return fail(err)
	}
	if err := c.Rcpt("rcpt@example.org", nil); err != nil {
		return fail(err)
	}
	w, err := c.Data()
	if err != nil {
		return fail(err)
	}
	io.WriteString(w, msg)
	resp, err := w.CloseWithResponse()
	if err != nil {
		return fail(err)
	}
	return 250, resp.StatusText, nil
}

// logID is the log id at the end of a reply's text, "" if none.
func logID(text string) string {
	i := strings.LastIndex(text, "(id ")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(text[i+4:], ")")
}

// TestPostgresOutageSpools: while PostgreSQL is out of reach, clean mail
// is still relayed and answered 250 (its record is in the node's spool
// first), mail that would be quarantined gets 451 4.3.0 and keeps
// nothing, /-/ready stays 200 and outguard_store_state says spooling;
// once PostgreSQL is back the spool is shipped and the records are in the
// shared log.
func TestPostgresOutageSpools(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	a := startNode(t, "mx-a", dsn, nh.Addr, "", &logs)
	if code, body := readyOf(t, a); code != http.StatusOK {
		t.Fatalf("ready before the outage: %d %s", code, body)
	}
	if got := storeState(t, a); got != "ok" {
		t.Errorf("state before the outage: %q, want ok", got)
	}
	addr := a.SMTPAddrs()[1].String()
	if code, text := relay(t, addr, testMessage("", "before", "hello")); code != 250 {
		t.Fatalf("before the outage: %d %s", code, text)
	}

	restore := pgOutage(t, dsn)
	code, text := relay(t, addr, testMessage("", "during", "hello"))
	if code != 250 {
		t.Fatalf("clean mail during the outage: %d %s, want 250 (spooled record)", code, text)
	}
	during := logID(text)
	code, text = relay(t, addr, testMessage("", "spam during", gtube))
	if code != 451 || !strings.HasPrefix(text, "4.3.0 ") || !strings.Contains(text, "cannot quarantine") {
		t.Errorf("spam during the outage: %d %s, want 451 4.3.0 ... cannot quarantine", code, text)
	}
	spam := logID(text)
	if code, body := readyOf(t, a); code != http.StatusOK {
		t.Errorf("ready while spooling: %d %s, want 200 (relaying works)", code, body)
	}
	if got := storeState(t, a); got != "spooling" {
		t.Errorf("state during the outage: %q, want spooling", got)
	}
	if n := metricOf(t, a, "outguard_store_spool_records", "node", "mx-a"); n < 1 {
		t.Errorf("outguard_store_spool_records{node=mx-a} = %v during the outage, want at least 1", n)
	}
	if n := metricOf(t, a, "outguard_storage_refusals_total", "reason", "quarantine_unavailable"); n != 1 {
		t.Errorf("refusals for quarantine_unavailable: %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "PostgreSQL is out of reach") {
		t.Errorf("the log does not say PostgreSQL is out of reach:\n%s", logs.String())
	}

	restore()
	waitShipped(t, a)
	if code, body := readyOf(t, a); code != http.StatusOK {
		t.Errorf("ready after the outage: %d %s", code, body)
	}
	if code, text := relay(t, addr, testMessage("", "after", "hello")); code != 250 {
		t.Fatalf("after the outage: %d %s", code, text)
	}
	ctx := context.Background()
	a.store.Flush(ctx)
	var status, content int
	var node string
	if err := a.pg.QueryRow(ctx, "SELECT status, node FROM quarantine_log WHERE id = $1", during).Scan(&status, &node); err != nil {
		t.Fatalf("the record of the message relayed during the outage (%s): %v", during, err)
	}
	if node != "mx-a" {
		t.Errorf("shipped record's node: %q", node)
	}
	if err := a.pg.QueryRow(ctx, "SELECT count(*) FROM quarantine_content").Scan(&content); err != nil || content != 0 {
		t.Errorf("quarantined content after a 451: %d rows, %v", content, err)
	}
	if rec, err := a.store.Get(spam); err == nil && rec.Status.String() != "deferred" {
		t.Errorf("the 451's record: status %s, want deferred", rec.Status)
	}
	for _, d := range nh.Received() {
		if strings.Contains(string(d.Data), "spam during") {
			t.Errorf("the next hop got the message answered 451")
		}
	}
	var n int
	if err := a.pg.QueryRow(ctx, "SELECT count(*) FROM quarantine_log WHERE status = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := 3; n != want {
		t.Errorf("%d records of relayed mail in PostgreSQL, want %d (before, during, after)", n, want)
	}
}

// TestPostgresOutageSpoolFull: past store.postgres.spool_max_records the
// node answers 451 4.3.0 and /-/ready says 503, until PostgreSQL is back
// and the spool shipped.
func TestPostgresOutageSpoolFull(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	a := startNode(t, "mx-a", dsn, nh.Addr, "    spool_max_records: 2\n", &logs)
	addr := a.SMTPAddrs()[1].String()
	restore := pgOutage(t, dsn)
	var ids []string
	for i := range 2 {
		code, text := relay(t, addr, testMessage("", fmt.Sprintf("spooled %d", i), "hello"))
		if code != 250 {
			t.Fatalf("message %d during the outage: %d %s, want 250", i, code, text)
		}
		ids = append(ids, logID(text))
	}
	before := len(nh.Received())
	code, text := relay(t, addr, testMessage("", "one too many", "hello"))
	if code != 451 || !strings.HasPrefix(text, "4.3.0 ") {
		t.Errorf("past the spool's bound: %d %s, want 451 4.3.0", code, text)
	}
	if len(nh.Received()) != before {
		t.Errorf("the message refused for a full spool reached the next hop")
	}
	if code, body := readyOf(t, a); code != http.StatusServiceUnavailable || !strings.Contains(body, "spool") {
		t.Errorf("ready with a full spool: %d %q, want 503 naming the spool", code, body)
	}
	if got := storeState(t, a); got != "unwritable" {
		t.Errorf("state with a full spool: %q, want unwritable", got)
	}
	restore()
	waitShipped(t, a)
	if code, body := readyOf(t, a); code != http.StatusOK {
		t.Errorf("ready after shipping: %d %s", code, body)
	}
	if code, text := relay(t, addr, testMessage("", "after", "hello")); code != 250 {
		t.Fatalf("after the outage: %d %s", code, text)
	}
	ctx := context.Background()
	for _, id := range ids {
		var n int
		if err := a.pg.QueryRow(ctx, "SELECT count(*) FROM quarantine_log WHERE id = $1", id).Scan(&n); err != nil || n != 1 {
			t.Errorf("record %s in PostgreSQL: %d, %v", id, n, err)
		}
	}
}

// sent is one message of a fleet outage test and its reply.
type sent struct {
	node    int
	subject string
	spam    bool
	code    int
	text    string
	id      string
}

// stream sends n messages spread over the nodes, three at a time (one
// sender per node), every fourth one spam, and returns them with their
// replies.
func stream(t *testing.T, nodes []*fleetNode, phase string, n int) []sent {
	t.Helper()
	out := make([]sent, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < n; i += len(nodes) {
				m := sent{node: k, subject: fmt.Sprintf("%s %d", phase, i), spam: i%4 == 0}
				body := "hello"
				if m.spam {
					body = gtube
				}
				var err error
				m.code, m.text, err = relayErr(nodes[k].smtp, testMessage(fmt.Sprintf("%s-sender%d", phase, i), m.subject, body))
				if err != nil {
					errs <- fmt.Errorf("%s through node %d: %w", m.subject, k, err)
					continue
				}
				m.id = logID(m.text)
				out[i] = m
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// waitReports waits until no ARF report is pending in the fleet's outbox
// and one has been sent for each quarantined message of the fleet, and
// returns the ids of those messages.
func waitReports(t *testing.T, a *App) []string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(120 * time.Second)
	for {
		var pending, sent int
		if err := a.pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'sent') FROM arf_outbox`).Scan(&pending, &sent); err != nil {
			t.Fatal(err)
		}
		rows, err := a.pg.Query(ctx, `SELECT id FROM quarantine_log WHERE status = $1`, 2)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 && sent == len(ids) {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("ARF outbox: %d pending, %d sent after 120s; want one sent for each of the %d quarantined messages", pending, sent, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetPostgresOutage: three nodes share one PostgreSQL and relay a
// stream of clean mail and spam over SMTP; mid-run PostgreSQL becomes
// unreachable and later comes back. While it is away clean mail is
// relayed (250, records spooled on each node), spam gets 451 4.3.0 and
// /-/ready stays 200 on every node. After it is back and the spools are
// shipped: every 250 has its record in PostgreSQL, every 550 is in the
// quarantine, no 4xx left a quarantined message, a report or a delivery,
// and each block has exactly one ARF report across the fleet.
func TestFleetPostgresOutage(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	nodes := []*fleetNode{
		startFleetNode(t, "mx-a", dsn, nh.Addr, &logs),
		startFleetNode(t, "mx-b", dsn, nh.Addr, &logs),
		startFleetNode(t, "mx-c", dsn, nh.Addr, &logs),
	}
	const perPhase = 36
	all := stream(t, nodes, "before", perPhase)
	for _, m := range all {
		if m.spam != (m.code == 550) || m.spam == (m.code == 250) {
			t.Fatalf("%s before the outage: %d %s", m.subject, m.code, m.text)
		}
	}
	// A lock through node A, in force on every node before the outage.
	req, _ := http.NewRequest("POST", nodes[0].admin+"/api/v1/locks", strings.NewReader(`{"kind":"identity","domain":"out.example.net","name":"locked-one","reason":"test lock"}`))
	req.Header.Set("Authorization", "Bearer trial-token")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		t.Fatalf("lock through node A: %d", res.StatusCode)
	}
	lockedRefused := func(i int) bool {
		code, text := relay(t, nodes[i].smtp, testMessage("locked-one", "from a locked identity", "hello"))
		return code == 550 && strings.Contains(text, "locked")
	}
	for i := range nodes {
		deadline := time.Now().Add(30 * time.Second)
		for !lockedRefused(i) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d does not refuse the locked identity 30s after the lock", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The outage begins once the reports of the first blocks are
	// delivered and recorded: a report whose delivery is under way at the
	// very moment the database goes away is sent again by another node
	// once its lease runs out (docs/config-store.md).
	waitReports(t, nodes[0].app)

	restore := pgOutage(t, dsn)
	during := stream(t, nodes, "during", perPhase)
	for _, m := range during {
		switch {
		case m.spam && (m.code != 451 || !strings.HasPrefix(m.text, "4.3.0 ") || !strings.Contains(m.text, "cannot quarantine")):
			t.Errorf("%s through node %d while PostgreSQL is away: %d %s, want 451 4.3.0 ... cannot quarantine", m.subject, m.node, m.code, m.text)
		case !m.spam && m.code != 250:
			t.Errorf("%s through node %d while PostgreSQL is away: %d %s, want 250 (record spooled)", m.subject, m.node, m.code, m.text)
		}
	}
	for i, n := range nodes {
		if code, body := readyOf(t, n.app); code != http.StatusOK {
			t.Errorf("node %d ready while spooling: %d %s, want 200", i, code, body)
		}
		if got := storeState(t, n.app); got != "spooling" {
			t.Errorf("node %d state while PostgreSQL is away: %q, want spooling", i, got)
		}
		if got := metricOf(t, n.app, "outguard_store_spool_records"); got < 1 {
			t.Errorf("node %d spool: %v records, want some", i, got)
		}
	}
	// Lock checks go on from each node's last known index.
	for i, n := range nodes {
		if !lockedRefused(i) {
			t.Errorf("node %d does not refuse the locked identity while PostgreSQL is away", i)
		}
		if age := metricOf(t, n.app, "outguard_lock_index_age_seconds"); age <= 0 {
			t.Errorf("node %d: outguard_lock_index_age_seconds = %v while PostgreSQL is away", i, age)
		}
	}
	if code := nodes[1].api(t, "GET", "/api/v1/messages?limit=10", nil); code != http.StatusServiceUnavailable {
		t.Errorf("search on node B while PostgreSQL is away: %d, want 503 (store degraded)", code)
	}
	all = append(all, during...)

	restore()
	// Spam is answered 451 until each node has seen PostgreSQL again
	// (its probe, every second), 550 after.
	after := stream(t, nodes, "after", perPhase)
	all = append(all, after...)
	for _, n := range nodes {
		waitShipped(t, n.app)
		n.app.store.Flush(context.Background())
	}
	quarantined := waitReports(t, nodes[0].app)

	ctx := context.Background()
	content := map[string]bool{}
	rows, err := nodes[0].app.pg.Query(ctx, `SELECT id FROM quarantine_content`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		content[id] = true
	}
	delivered := map[string]int{}
	reports := map[string]int{}
	nReports := 0
	for _, d := range nh.Received() {
		if d.From == "" {
			nReports++
			for _, m := range all {
				if m.id != "" && strings.Contains(string(d.Data), m.id) {
					reports[m.id]++
				}
			}
			for _, id := range quarantined {
				if strings.Contains(string(d.Data), id) {
					reports["q/"+id]++
				}
			}
			continue
		}
		for _, m := range all {
			if strings.Contains(string(d.Data), "Subject: "+m.subject+"\r\n") {
				delivered[m.subject]++
			}
		}
	}
	var n250, n550, n4xx int
	for _, m := range all {
		// Read through another node than the one that took it: the log
		// is the fleet's.
		other := nodes[(m.node+1)%3].app.store
		rec, err := other.Get(m.id)
		switch m.code {
		case 250:
			n250++
			if err != nil || rec.Status.String() != "accepted" || !strings.Contains(rec.Subject, m.subject) {
				t.Errorf("250 for %s (id %s): record %+v, %v; want it accepted in PostgreSQL", m.subject, m.id, rec, err)
			}
			if delivered[m.subject] != 1 {
				t.Errorf("250 for %s: delivered %d times", m.subject, delivered[m.subject])
			}
		case 550:
			n550++
			if err != nil || rec.Status.String() != "quarantined" || !content[m.id] {
				t.Errorf("550 for %s (id %s): record %+v, %v, content %v; want it quarantined", m.subject, m.id, rec, err, content[m.id])
			}
			if reports[m.id] != 1 {
				t.Errorf("550 for %s (id %s): %d ARF reports across the fleet, want 1", m.subject, m.id, reports[m.id])
			}
		default:
			if m.code/100 != 4 {
				t.Errorf("%s: %d %s", m.subject, m.code, m.text)
				continue
			}
			n4xx++
			if content[m.id] || reports[m.id] != 0 || delivered[m.subject] != 0 {
				t.Errorf("4xx for %s (id %s) left content %v, %d reports, %d deliveries", m.subject, m.id, content[m.id], reports[m.id], delivered[m.subject])
			}
			if err == nil && rec.Status.String() != "deferred" {
				t.Errorf("4xx for %s: record status %s, want deferred", m.subject, rec.Status)
			}
		}
	}
	// Every block of the fleet, also one the test did not ask for (the
	// lock's probes are near-duplicates of each other), has one report.
	if nReports != len(quarantined) {
		t.Errorf("the report relay got %d ARF reports for %d quarantined messages", nReports, len(quarantined))
	}
	stream550 := map[string]bool{}
	for _, m := range all {
		if m.code == 550 {
			stream550[m.id] = true
		}
	}
	for _, id := range quarantined {
		if reports["q/"+id] != 1 {
			t.Errorf("quarantined %s: %d ARF reports across the fleet, want 1", id, reports["q/"+id])
		}
		if !stream550[id] {
			rec, err := nodes[0].app.store.Get(id)
			if err == nil {
				t.Logf("quarantined outside the stream: %s %q %v", id, rec.Subject, rec.Reasons)
			}
		}
	}
	if n4xx == 0 || n250 == 0 || n550 == 0 {
		t.Errorf("%d answers 250, %d 550, %d 4xx: the stream should have each", n250, n550, n4xx)
	}
	var shipped float64
	for _, n := range nodes {
		shipped += metricOf(t, n.app, "outguard_store_spool_shipped_total")
	}
	t.Logf("%d answers 250, %d 550 (one report each), %d 4xx; %v records shipped from the spools", n250, n550, n4xx, shipped)
	if shipped < float64(perPhase/2) {
		t.Errorf("%v records shipped from the nodes' spools, want at least the clean mail of the outage", shipped)
	}
}

// TestPostgresOutageSpoolSurvivesRestart: a node stopped while PostgreSQL
// is away keeps the records it spooled in its bbolt file and ships them
// when it starts again with the database back.
func TestPostgresOutageSpoolSurvivesRestart(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	path := testConfig(t, nh.Addr, fmt.Sprintf("node_name: mx-a\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n    max_conns: 4\n", dsn))
	a := startNodeAt(t, path, &logs)
	restore := pgOutage(t, dsn)
	var ids []string
	for i := range 3 {
		code, text := relay(t, a.SMTPAddrs()[1].String(), testMessage("", fmt.Sprintf("spooled %d", i), "hello"))
		if code != 250 {
			t.Fatalf("message %d during the outage: %d %s", i, code, text)
		}
		ids = append(ids, logID(text))
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	restore()
	b := startNodeAt(t, path, &logs)
	waitShipped(t, b)
	if got := metricOf(t, b, "outguard_store_spool_shipped_total"); got != 3 {
		t.Errorf("shipped after the restart: %v, want 3", got)
	}
	for _, id := range ids {
		rec, err := b.store.Get(id)
		if err != nil || rec.Status.String() != "accepted" {
			t.Errorf("record %s after the restart: %+v, %v", id, rec, err)
		}
	}
}
