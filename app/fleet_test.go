package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode starts an App named node on the postgres backend at dsn,
// relaying to nextHop, with extra configuration; its log goes to logs.
func startNode(t *testing.T, node, dsn, nextHop, extra string, logs *syncBuffer) *App {
	t.Helper()
	path := testConfig(t, nextHop, fmt.Sprintf("node_name: %s\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n    max_conns: 4\n%s", node, dsn, extra))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, ConfigPath: path, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	return a
}

func TestPostgresBackendStart(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	a := startNode(t, "mx-a", dsn, nh.Addr, "", &logs)
	var nodes, version int
	if err := a.pg.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM outguard_nodes WHERE node_name = 'mx-a'), (SELECT max(version) FROM outguard_schema_migrations)").Scan(&nodes, &version); err != nil {
		t.Fatal(err)
	}
	if nodes != 1 || version < 1 {
		t.Errorf("got %d node rows and schema version %d; want the node recorded and the schema migrated", nodes, version)
	}
	out := logs.String()
	if !strings.Contains(out, "store: postgres backend, shared by the fleet") || !strings.Contains(out, "the audit trail, console sessions and the TOTP steps used in PostgreSQL") || !strings.Contains(out, "node_name=mx-a") {
		t.Errorf("log does not say the backend is postgres and what it shares, with node_name:\n%s", out)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
}

// fleet is three outguard nodes sharing one PostgreSQL database, each
// relaying to its own next hop.
type fleet struct {
	nodes []*App
	nhs   []*testutil.NextHop
	logs  []*syncBuffer
}

// startFleet starts nodes a, b and c with automatic locking of identities
// (X-AuthUser), the default thresholds (5 spam in 10 minutes) and the
// admin token trial-token.
func startFleet(t *testing.T) *fleet {
	t.Helper()
	return startFleetWith(t, pipelineExtra, nil)
}

// startFleetWith starts nodes a, b and c on a fresh database as
// startFleet does, with extra (pipelineExtra or a variant of it) in their
// configuration and now, when set, as their clock.
func startFleetWith(t *testing.T, extra string, now func() time.Time) *fleet {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	f := &fleet{}
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		nh := testutil.StartNextHop(t)
		logs := &syncBuffer{}
		path := testConfig(t, nh.Addr, extra+fmt.Sprintf("node_name: %s\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n    max_conns: 4\n", name, dsn))
		b, _ := os.ReadFile(path)
		y := strings.Replace(string(b), "  - name: out.example.net\n", "  - name: out.example.net\n    identity_rules: [{header: X-AuthUser}, {envelope_sender: true}]\n    lock_identities_automatically: true\n", 1)
		y = strings.Replace(y, `admin: {address: "127.0.0.1:0"}`, `admin:
  address: "127.0.0.1:0"
  tokens: [{name: ops, hash: "`+trialTokenHash+`", scope: all}]`, 1)
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(Options{Config: cfg, ConfigPath: path, Now: now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop() })
		f.nodes, f.nhs, f.logs = append(f.nodes, a), append(f.nhs, nh), append(f.logs, logs)
	}
	return f
}

// api calls node i's admin API with the trial token.
func (f *fleet) api(t *testing.T, i int, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+f.nodes[i].AdminAddr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer trial-token")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// send relays msg through node i as the trial user.
func (f *fleet) send(t *testing.T, i int, msg string) error {
	t.Helper()
	c, err := smtp.Dial(f.nodes[i].SMTPAddrs()[1].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		return err
	}
	return c.SendMail("x@out.example.net", []string{"rcpt@example.org"}, strings.NewReader(msg))
}

// mailRefused opens a transaction on node i as the trial user and reports
// whether MAIL FROM is refused with 550; nothing is relayed either way.
func (f *fleet) mailRefused(t *testing.T, i int) bool {
	t.Helper()
	c, err := smtp.Dial(f.nodes[i].SMTPAddrs()[1].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		t.Fatal(err)
	}
	err = c.Mail("x@out.example.net", nil)
	if err == nil {
		c.Reset()
		return false
	}
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("MAIL on node %d: %v, want 250 or 550", i, err)
	}
	return true
}

// TestFleetLockThroughAPIRefusesOnOtherNode locks the outgoing user
// through node A's admin API and waits until node B refuses its MAIL,
// logging how long that took; the unlock through node C frees it on B.
func TestFleetLockThroughAPIRefusesOnOtherNode(t *testing.T) {
	f := startFleet(t)
	if f.mailRefused(t, 1) {
		t.Fatal("node B refuses before any lock")
	}
	code, body := f.api(t, 0, "POST", "/api/v1/locks", `{"kind":"user","name":"trial","reason":"compromised account"}`)
	if code != 200 && code != 201 {
		t.Fatalf("lock through node A: %d %s", code, body)
	}
	locked := time.Now()
	deadline := locked.Add(30 * time.Second)
	for !f.mailRefused(t, 1) {
		if time.Now().After(deadline) {
			t.Fatal("node B still takes MAIL 30s after the lock on node A")
		}
	}
	t.Logf("lock through node A's API refused MAIL on node B after %v", time.Since(locked))
	if !f.mailRefused(t, 2) {
		t.Error("node C does not refuse the locked user")
	}
	// The lock's record is shared: node C shows it, with A's actor.
	code, body = f.api(t, 2, "GET", "/api/v1/locks/user/trial", "")
	if code != 200 || !strings.Contains(body, "compromised account") {
		t.Errorf("lock seen through node C: %d %s", code, body)
	}
	code, body = f.api(t, 2, "DELETE", "/api/v1/locks/user/trial", `{"reason":"password changed"}`)
	if code != 200 {
		t.Fatalf("unlock through node C: %d %s", code, body)
	}
	unlocked := time.Now()
	for f.mailRefused(t, 1) {
		if time.Since(unlocked) > 30*time.Second {
			t.Fatal("node B still refuses 30s after the unlock on node C")
		}
	}
	t.Logf("unlock through node C freed MAIL on node B after %v", time.Since(unlocked))
	if err := f.send(t, 1, testMessage("", "after unlock", "hello")); err != nil {
		t.Errorf("mail on node B after the unlock: %v", err)
	}
	for i, l := range f.logs {
		if !strings.Contains(l.String(), "node_name=node-"+string(rune('a'+i))) {
			t.Errorf("node %d's log lines do not carry its node_name", i)
		}
	}
	gathered, err := f.nodes[1].reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range gathered {
		if mf.GetName() == "outguard_lock_index_age_seconds" && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetLabel()[0].GetValue() == "node-b" {
			found = true
		}
	}
	if !found {
		t.Error("node B has no outguard_lock_index_age_seconds{node=\"node-b\"}")
	}
}

// TestFleetSpamSpreadLocksAtFleetThreshold sends spam of one identity
// over the three nodes: four do not lock it (below the threshold of 5,
// counted fleet-wide), the fifth does, on every node; each node alone saw
// at most two.
func TestFleetSpamSpreadLocksAtFleetThreshold(t *testing.T) {
	f := startFleet(t)
	var ids []string
	for i := range 4 {
		err := f.send(t, i%3, testMessage("spreader", fmt.Sprintf("spam %d", i), gtube))
		if r := replyOf(err); r == nil || r.Code != 550 || !strings.Contains(r.Message, "[OG-SPAM]") {
			t.Fatalf("spam %d on node %d: %v, want 550 [OG-SPAM]", i, i%3, err)
		}
		ids = append(ids, idOf(t, err))
	}
	// Each blocked message is in the quarantine of the node that took it
	// (the quarantine is still per node).
	for i, id := range ids {
		if _, err := f.nodes[i%3].store.Raw(id, quarantine.Actor{Name: "test"}); err != nil {
			t.Errorf("spam %d not in node %d's quarantine: %v", i, i%3, err)
		}
	}
	// Every node sends its counts and reads the fleet's: still 4.
	for _, a := range f.nodes {
		if err := a.ids.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.nodes {
		if code, _ := f.api(t, i, "GET", "/api/v1/locks/identity/out.example.net/spreader", ""); code != 404 {
			t.Fatalf("node %d: the identity is locked (or %d) after 4 spam; the threshold is 5", i, code)
		}
	}
	// The fifth, on node B, which saw one before.
	err := f.send(t, 1, testMessage("spreader", "spam 4", gtube))
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("spam 4: %v, want 550", err)
	}
	start := time.Now()
	var body string
	for {
		var code int
		code, body = f.api(t, 2, "GET", "/api/v1/locks/identity/out.example.net/spreader", "")
		if code == 200 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no lock 30s after the fifth spam over the fleet (%d %s)", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the fleet-wide crossing locked the identity, seen through node C, %v after the fifth spam", time.Since(start))
	if !strings.Contains(body, `"actor":"auto"`) || !strings.Contains(body, `"count":5`) || !strings.Contains(body, `"threshold":5`) {
		t.Errorf("lock through node C: %s; want an automatic lock on a count of 5 against 5", body)
	}
	// Every node refuses the identity's mail now, clean or not.
	for i := range f.nodes {
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := f.send(t, i, testMessage("spreader", "clean now", "hello"))
			r := replyOf(err)
			if r != nil && r.Code == 550 && strings.Contains(r.Message, "locked") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: %v, want refused as locked", i, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestRestartOnlyNodeAndBackend(t *testing.T) {
	base, err := os.ReadFile("../config/testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(extra string) *config.Config {
		c, err := config.Parse(append(base, extra...))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := parse("node_name: mx1\n")
	renamed := parse("node_name: mx2\n")
	pg := parse("node_name: mx1\nstore:\n  backend: postgres\n  postgres: {dsn: \"host=db\"}\n")
	if got := fmt.Sprint(restartOnly(old, renamed)); got != "[node_name]" {
		t.Errorf("renamed node: %s, want [node_name]", got)
	}
	if got := fmt.Sprint(restartOnly(old, pg)); got != "[store]" {
		t.Errorf("backend changed: %s, want [store]", got)
	}
	// next_hop.chunking, a pointer, compares by value.
	if got := fmt.Sprint(restartOnly(old, parse("node_name: mx1\n"))); got != "[]" {
		t.Errorf("the same file read again: %s, want []", got)
	}
	off := parse("node_name: mx1\n")
	no := false
	off.NextHop.Chunking = &no
	if got := fmt.Sprint(restartOnly(old, off)); got != "[next_hop]" {
		t.Errorf("chunking turned off: %s, want [next_hop]", got)
	}
}
