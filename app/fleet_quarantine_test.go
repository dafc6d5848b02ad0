package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
)

// fleetNode is one outguard node of a fleet test, with its SMTP and admin
// addresses.
type fleetNode struct {
	app   *App
	smtp  string
	admin string
}

// startFleetNode starts node on the postgres backend at dsn with its own
// data_dir and listeners, the pipeline's identity rules and ARF settings,
// and the admin token trial-token.
func startFleetNode(t *testing.T, node, dsn, nextHop string, logs *syncBuffer) *fleetNode {
	t.Helper()
	path := testConfig(t, nextHop, fmt.Sprintf("node_name: %s\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n    max_conns: 4\n%s", node, dsn, pipelineExtra))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "  - name: out.example.net\n", "  - name: out.example.net\n    identity_rules: [{header: X-AuthUser}, {envelope_sender: true}]\n", 1)
	y = strings.Replace(y, `admin: {address: "127.0.0.1:0"}`, `admin:
  address: "127.0.0.1:0"
  tokens: [{name: ops, hash: "`+trialTokenHash+`", scope: all}]`, 1)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	// startNode reads the file as written here.
	a := startNodeAt(t, path, logs)
	return &fleetNode{app: a, smtp: a.SMTPAddrs()[1].String(), admin: "http://" + a.AdminAddr().String()}
}

// api calls the admin API of n with the trial token and decodes a JSON
// answer into out (when not nil); it returns the status code.
func (n *fleetNode) api(t *testing.T, method, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, n.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer trial-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	if res.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, res.StatusCode, body)
	}
	return res.StatusCode
}

// TestFleetSharesQuarantineLogAndReports: three nodes in one process share
// one PostgreSQL database. A message quarantined on node A is shown,
// released and deleted through node C's API; a search on any node sees
// every node's records; each block gives exactly one ARF report across
// the fleet.
func TestFleetSharesQuarantineLogAndReports(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	nodes := []*fleetNode{
		startFleetNode(t, "mx-a", dsn, nh.Addr, &logs),
		startFleetNode(t, "mx-b", dsn, nh.Addr, &logs),
		startFleetNode(t, "mx-c", dsn, nh.Addr, &logs),
	}
	a, c := nodes[0], nodes[2]
	// One block and one relayed message through each node.
	var blocked []string
	for i, n := range nodes {
		e := &env{t: t, addr: n.smtp}
		err := e.send("a@out.example.net", testMessage(fmt.Sprintf("spammer%d", i), fmt.Sprintf("offer %d", i), gtube))
		if r := replyOf(err); r == nil || r.Code != 550 {
			t.Fatalf("spam through node %d: %v, want 550", i, err)
		}
		blocked = append(blocked, idOf(t, err))
		if err := e.send("a@out.example.net", testMessage(fmt.Sprintf("fine%d", i), fmt.Sprintf("hello %d", i), "hello")); err != nil {
			t.Fatalf("clean mail through node %d: %v", i, err)
		}
	}
	// Every node's search sees the six records of the fleet.
	for i, n := range nodes {
		var res apiv1.SearchResponse
		if code := n.api(t, "GET", "/api/v1/messages?limit=100", &res); code != http.StatusOK {
			t.Fatalf("search on node %d: %d", i, code)
		}
		if len(res.Messages) != 6 {
			t.Errorf("search on node %d: %d records, want the fleet's 6", i, len(res.Messages))
		}
		var q apiv1.SearchResponse
		n.api(t, "GET", "/api/v1/messages?status=quarantined", &q)
		if len(q.Messages) != 3 {
			t.Errorf("quarantined on node %d: %d, want 3", i, len(q.Messages))
		}
	}
	// Node A's quarantined message, through node C.
	id := blocked[0]
	var detail apiv1.MessageDetail
	if code := c.api(t, "GET", "/api/v1/messages/"+id, &detail); code != http.StatusOK {
		t.Fatalf("show on node C: %d", code)
	}
	if detail.Message.Status != "quarantined" || detail.Content == nil || !strings.Contains(detail.Content.Body, "GTUBE") {
		t.Errorf("node C shows %+v with content %+v; want node A's quarantined message with its body", detail.Message, detail.Content)
	}
	before := len(nhMail(nh))
	var rel apiv1.ReleaseResponse
	if code := c.api(t, "POST", "/api/v1/messages/"+id+"/release", &rel); code != http.StatusOK || rel.Already {
		t.Fatalf("release on node C: %d %+v", code, rel)
	}
	mail := nhMail(nh)
	if len(mail) != before+1 || !bytes.Contains(mail[len(mail)-1].Data, []byte("offer 0")) {
		t.Fatalf("the next hop got %d messages after the release, want node A's message", len(mail)-before)
	}
	// Released once across the fleet: node B does not deliver it again.
	if code := nodes[1].api(t, "POST", "/api/v1/messages/"+id+"/release", &rel); code != http.StatusOK || !rel.Already {
		t.Errorf("second release on node B: %d %+v, want already released", code, rel)
	}
	if len(nhMail(nh)) != before+1 {
		t.Errorf("released twice")
	}
	if code := c.api(t, "DELETE", "/api/v1/messages/"+id, nil); code >= 300 {
		t.Fatalf("delete on node C: %d", code)
	}
	if code := a.api(t, "GET", "/api/v1/messages/"+id, &detail); code != http.StatusOK || detail.Message.Quarantine == nil || detail.Message.Quarantine.HasContent {
		t.Errorf("node A after the delete on node C: %d %+v", code, detail.Message.Quarantine)
	}
	if code := a.api(t, "GET", "/api/v1/messages/"+id+"/raw", nil); code == http.StatusOK {
		t.Errorf("raw of a deleted message on node A: 200")
	}
	// One ARF report per block across the fleet. Once no report is
	// pending, none can be sent any more: the count is final.
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending, sent int
		if err := a.app.pg.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'sent') FROM arf_outbox`).Scan(&pending, &sent); err != nil {
			t.Fatal(err)
		}
		if pending == 0 && sent == len(blocked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ARF outbox: %d pending, %d sent after 30s; want %d sent", pending, sent, len(blocked))
		}
		time.Sleep(50 * time.Millisecond)
	}
	reports := 0
	for _, d := range nh.Received() {
		if d.From == "" {
			reports++
		}
	}
	if reports != len(blocked) {
		t.Errorf("the relay got %d ARF reports for %d blocks", reports, len(blocked))
	}
	for _, id := range blocked {
		n := 0
		for _, d := range nh.Received() {
			if d.From == "" && bytes.Contains(d.Data, []byte(id)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("block %s: %d reports, want 1", id, n)
		}
	}
	if out := logs.String(); !strings.Contains(out, "the message log, quarantined content, report counters, the ARF outbox") {
		t.Errorf("the start-up line does not say the log, quarantine and ARF outbox are shared:\n%s", out)
	}
}

// nhMail is what the next hop received apart from ARF reports.
func nhMail(nh *testutil.NextHop) []testutil.Delivery {
	var out []testutil.Delivery
	for _, d := range nh.Received() {
		if d.From != "" {
			out = append(out, d)
		}
	}
	return out
}

// startNodeAt starts the App configured by path, its log going to logs.
func startNodeAt(t *testing.T, path string, logs *syncBuffer) *App {
	t.Helper()
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
