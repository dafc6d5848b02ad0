package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/storecopy"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// copySource is what a bbolt node held when it stopped: what a postgres
// node must see after the copy.
type copySource struct {
	path      string // the bbolt file
	records   []string
	qID       string // a quarantined message
	qRaw      []byte
	pending   []string
	expired   []string
	notify    int
	feedback  []string
	usage     identity.Usage // of the identity "seller"
	wouldLock int
	now       time.Time // the node's clock when it stopped
}

// buildCopySource runs a node on bbolt until its database holds records
// of every kind store copy takes, and stops it.
func buildCopySource(t *testing.T) *copySource {
	t.Helper()
	relay := testutil.StartNextHop(t)
	down := &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available"}
	setRelay := func(err *smtp.SMTPError) {
		relay.Lock()
		relay.MailErr = err
		relay.Unlock()
	}
	extra := "  relay: {address: \"" + relay.Addr + "\"}\n  feedback_sources: [127.0.0.1/32]\n" +
		fmt.Sprintf("notify:\n  webhook: {url: %q, secret: webhook-secret-0123456789abcdef, retry: {initial: 1s, max: 2s}}\n", "http://"+testutil.DeadAddr(t)+"/hook")
	src := &copySource{}
	e := newEnv(t, "    monitor: true\n", extra)
	b, _ := os.ReadFile(e.path)
	os.WriteFile(e.path, []byte(strings.Replace(string(b), "allow_insecure_auth: true}", "allow_insecure_auth: true, feedback: true}", 1)), 0o600)
	e.restart()

	// Monitor mode: a would-lock.
	for i := range 6 {
		if err := e.send("x@out.example.net", testMessage("mon", fmt.Sprintf("monitored %d", i), gtube)); err != nil {
			t.Fatalf("monitor mode: %v", err)
		}
	}
	b, _ = os.ReadFile(e.path)
	os.WriteFile(e.path, []byte(strings.Replace(string(b), "    monitor: true\n", "", 1)), 0o600)
	e.restart()

	// A report sent, one expired, pending ones.
	if r := replyOf(e.send("x@out.example.net", testMessage("first", "first spam", gtube))); r == nil || r.Code != 550 {
		t.Fatalf("spam: %v, want 550", r)
	}
	if !e.waitFor(20*time.Second, func() bool { return len(relay.Received()) == 1 }) {
		t.Fatal("the first report was not sent")
	}
	setRelay(down)
	if r := replyOf(e.send("x@out.example.net", testMessage("early", "early spam", gtube))); r == nil || r.Code != 550 {
		t.Fatalf("spam: %v, want 550", r)
	}
	e.clock.Advance(6 * 24 * time.Hour)
	if !e.waitFor(20*time.Second, func() bool { x, _ := e.app.outbox.Expired(); return len(x) == 1 }) {
		t.Fatal("the early report did not expire")
	}
	// An automatic lock (5 spam), its notification waiting for the dead
	// webhook, and pending reports.
	for i := range 5 {
		err := e.send("x@out.example.net", testMessage("spammer", fmt.Sprintf("pills %d", i), gtube))
		if r := replyOf(err); r == nil || r.Code != 550 {
			t.Fatalf("spam %d: %v, want 550", i, err)
		}
		if i == 0 {
			src.qID = idOf(t, err)
		}
	}
	if _, locked := e.app.ids.CheckIdentity("out.example.net", "spammer"); !locked {
		t.Fatal("spammer not locked")
	}
	// Clean mail, and a complaint about it from the feedback source.
	for i := range 2 {
		if err := e.send("seller@out.example.net", testMessage("seller", fmt.Sprintf("garden tools %d", i), "Our spring catalogue of garden tools and seeds is out.")); err != nil {
			t.Fatal(err)
		}
	}
	e.flush()
	orig, _ := testutil.StripReceived(e.mail()[len(e.mail())-1].Data)
	c, err := smtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("fbl@mailbox.example", []string{"fbl@outguard.test"}, strings.NewReader(complaint(orig))); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// The audit trail: a lock and an unlock through the API.
	server := e.withAdminToken(t)
	for _, call := range []struct{ method, path, body string }{
		{"POST", "/api/v1/locks", `{"kind":"identity","domain":"out.example.net","name":"audited","reason":"copied audit entry"}`},
		{"DELETE", "/api/v1/locks/identity/out.example.net/audited", `{"reason":"lifted"}`},
	} {
		req, _ := http.NewRequest(call.method, server+call.path, strings.NewReader(call.body))
		req.Header.Set("Authorization", "Bearer trial-token")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d", call.method, call.path, res.StatusCode)
		}
	}

	src.path = e.app.cfg.StorePath()
	src.now = e.clock.Now()
	page, err := e.app.store.Search(quarantine.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Records {
		src.records = append(src.records, r.ID)
	}
	if src.qRaw, err = e.app.store.Raw(src.qID, quarantine.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	p, _ := e.app.outbox.Pending()
	x, _ := e.app.outbox.Expired()
	src.pending, src.expired = entryIDs(p), entryIDs(x)
	src.notify, _ = e.app.notifier.Pending()
	fb, _, _ := e.app.pipeline.feedback.List(100, "", nil)
	for _, r := range fb {
		src.feedback = append(src.feedback, r.ID)
	}
	src.usage, _ = e.app.ids.Usage(context.Background(), "out.example.net", "seller")
	wl, _ := e.app.ids.WouldLocks(context.Background(), identity.WouldLockFilter{})
	src.wouldLock = len(wl)
	if err := e.app.Stop(); err != nil {
		t.Fatal(err)
	}
	return src
}

func entryIDs(es []arf.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

// copyCounts are the SQL counts of the rows each kind makes.
var copyCounts = map[string]string{
	"quarantine.log":      "SELECT count(*) FROM quarantine_log",
	"quarantine.content":  "SELECT count(*) FROM quarantine_content",
	"identity.locks":      "SELECT count(*) FROM identity_locks",
	"identity.wouldlocks": "SELECT count(*) FROM identity_wouldlocks",
	"identity.windows":    "SELECT count(*) FROM identity_windows",
	"arf.pending":         "SELECT count(*) FROM arf_outbox WHERE state = 'pending'",
	"arf.expired":         "SELECT count(*) FROM arf_outbox WHERE state = 'expired'",
	"arf.sent":            "SELECT count(*) FROM arf_outbox WHERE state = 'sent'",
	"notify.outbox":       "SELECT count(*) FROM notify_outbox",
	"feedback.reports":    "SELECT count(*) FROM feedback_reports",
	"feedback.index":      "SELECT count(*) FROM feedback_index",
	"detection.profiles":  "SELECT count(*) FROM detection_profiles",
	"detection.campaigns": "SELECT count(*) FROM detection_campaigns",
	"content.overlay":     "SELECT count(*) FROM content_overlay_nodes",
	"admin.audit":         "SELECT count(*) FROM admin_audit",
}

// TestStoreCopyFromBboltNode builds a bbolt database with a real node,
// copies it into PostgreSQL in runs interrupted after some records, and
// checks that no record is doubled or lost, that a finished copy copies
// nothing more, and that a node on PostgreSQL sees what the bbolt node
// held: its log, quarantine, locks, windows, outboxes and feedback.
func TestStoreCopyFromBboltNode(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	src := buildCopySource(t)
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, pgdb.Options{DSN: dsn, MaxConns: 4, NodeName: "mx-copy"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pgdb.Migrate(ctx, pool, "mx-copy"); err != nil {
		t.Fatal(err)
	}
	db, err := storecopy.Open(src.path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kinds := StoreCopyKinds()
	if len(kinds) != len(copyCounts) {
		t.Fatalf("%d kinds, %d counts in the test: add the new kind's count", len(kinds), len(copyCounts))
	}

	// Runs killed after 7, then 20 more records, 3 per batch.
	var earlier int64
	for _, after := range []int{7, 20} {
		runCtx, cancel := context.WithCancel(ctx)
		n := 0
		rep, err := storecopy.Run(runCtx, db, pool, kinds, storecopy.Options{Source: src.path, Node: "mx-copy", Batch: 3,
			Step: func(string, storecopy.Outcome) {
				if n++; n == after {
					cancel()
				}
			}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run stopped after %d records: %v, want context.Canceled", after, err)
		}
		var done int64
		for _, c := range rep.Kinds {
			done += c.Copied + c.Present + c.Skipped
			if c.Earlier != 0 && earlier == 0 {
				t.Errorf("%s: first run reports %d done earlier", c.Kind, c.Earlier)
			}
		}
		// The batch the cancel cut is rolled back.
		if done >= int64(after) {
			t.Errorf("run cancelled at record %d reports %d records committed, want the whole batches before it", after, done)
		}
		earlier += done
	}
	rep, err := storecopy.Run(ctx, db, pool, kinds, storecopy.Options{Source: src.path, Node: "mx-copy", Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	var gotEarlier int64
	for _, c := range rep.Kinds {
		t.Logf("%s: %d records, %d earlier, %d copied, %d present", c.Kind, c.Total, c.Earlier, c.Copied, c.Present)
		gotEarlier += c.Earlier
		if !c.Done || c.Remaining() != 0 {
			t.Errorf("%s not done: %+v", c.Kind, c)
		}
		if c.Total == 0 {
			t.Errorf("%s: the node's database holds none: the test does not cover it", c.Kind)
		}
		if c.Skipped != 0 {
			t.Errorf("%s: %d skipped (%v)", c.Kind, c.Skipped, c.Reasons)
		}
		if int64(c.Total) != c.Earlier+c.Copied+c.Present {
			t.Errorf("%s: total %d, but %d earlier + %d copied + %d present", c.Kind, c.Total, c.Earlier, c.Copied, c.Present)
		}
		var rows int
		if err := pool.QueryRow(ctx, copyCounts[c.Kind]).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != c.Total {
			t.Errorf("%s: %d rows in PostgreSQL for %d records in bbolt", c.Kind, rows, c.Total)
		}
	}
	if gotEarlier != earlier {
		t.Errorf("the last run counts %d records done earlier, the interrupted runs committed %d", gotEarlier, earlier)
	}

	// Once done, a run copies nothing; the same records from another
	// path are all present already.
	rep, err = storecopy.Run(ctx, db, pool, kinds, storecopy.Options{Source: src.path, Node: "mx-copy"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Kinds {
		if c.Copied+c.Present+c.Skipped != 0 || !c.Done {
			t.Errorf("%s: a run after the copy finished did %+v", c.Kind, c)
		}
	}
	rep, err = storecopy.Run(ctx, db, pool, kinds, storecopy.Options{Source: src.path + ".elsewhere", Node: "mx-copy"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Kinds {
		if c.Copied != 0 || c.Present != int64(c.Total) {
			t.Errorf("%s: copied again from another path: %+v, want every record present", c.Kind, c)
		}
	}
	db.Close()

	// A node on PostgreSQL, named as the copy, with the report relay
	// down and the webhook dead, so that the outboxes stay as copied.
	relay := testutil.StartNextHop(t)
	relay.MailErr = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available"}
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, pipelineExtra+"  relay: {address: \""+relay.Addr+"\"}\n"+
		fmt.Sprintf("notify:\n  webhook: {url: %q, secret: webhook-secret-0123456789abcdef, retry: {initial: 1s, max: 2s}}\n", "http://"+testutil.DeadAddr(t)+"/hook")+
		fmt.Sprintf("node_name: mx-copy\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n", dsn))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The clock goes on from where the bbolt node's stopped.
	a, err := New(Options{Config: cfg, ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: (&clock{t: src.now}).Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	checkCopiedNode(t, a, src)
}

// checkCopiedNode checks that node a sees what the bbolt node held.
func checkCopiedNode(t *testing.T, a *App, src *copySource) {
	t.Helper()
	page, err := a.store.Search(quarantine.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, src.records) {
		t.Errorf("log on postgres: %d records %v\nwant %d %v", len(got), got, len(src.records), src.records)
	}
	raw, err := a.store.Raw(src.qID, quarantine.Actor{Name: "test"})
	if err != nil || string(raw) != string(src.qRaw) {
		t.Errorf("quarantined %s on postgres: %d bytes, %v; want the %d bytes of the bbolt node", src.qID, len(raw), err, len(src.qRaw))
	}
	if _, locked := a.ids.CheckIdentity("out.example.net", "spammer"); !locked {
		t.Error("the automatic lock of spammer is not in force on postgres")
	}
	u, err := a.ids.Usage(context.Background(), "out.example.net", "seller")
	if err != nil || fmt.Sprint(u.Counters) != fmt.Sprint(src.usage.Counters) {
		t.Errorf("seller's counters on postgres %v (%v), want %v", u.Counters, err, src.usage.Counters)
	}
	wl, _ := a.ids.WouldLocks(context.Background(), identity.WouldLockFilter{})
	if len(wl) != src.wouldLock || len(wl) == 0 {
		t.Errorf("%d would-locks on postgres, want %d", len(wl), src.wouldLock)
	}
	p, _ := a.outbox.Pending()
	x, _ := a.outbox.Expired()
	if !slices.Equal(entryIDs(p), src.pending) || !slices.Equal(entryIDs(x), src.expired) {
		t.Errorf("ARF outbox on postgres: pending %v expired %v; want %v and %v", entryIDs(p), entryIDs(x), src.pending, src.expired)
	}
	if n, _ := a.notifier.Pending(); n != src.notify || n == 0 {
		t.Errorf("%d notifications pending on postgres, want %d", n, src.notify)
	}
	fb, _, _ := a.pipeline.feedback.List(100, "", nil)
	var ids []string
	for _, r := range fb {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, src.feedback) || len(ids) == 0 {
		t.Errorf("feedback on postgres %v, want %v", ids, src.feedback)
	}
}

// TestStoreCopyRefusesLiveNode: the bbolt file of a running node is
// refused, and a second copy into the same database waits for none.
func TestStoreCopyRefusesLiveNode(t *testing.T) {
	nh := testutil.StartNextHop(t)
	a := startApp(t, testConfig(t, nh.Addr, ""))
	_, err := storecopy.Open(a.cfg.StorePath(), 200*time.Millisecond)
	if !errors.Is(err, storecopy.ErrLocked) {
		t.Fatalf("opening a running node's database: %v, want ErrLocked", err)
	}
	a.Stop()
	db, err := storecopy.Open(a.cfg.StorePath(), time.Second)
	if err != nil {
		t.Fatalf("after the node stopped: %v", err)
	}
	db.Close()
}
