package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from the replies")

// goldenCall is one request of the golden sequence and the file its
// reply is kept in.
type goldenCall struct {
	file, method, path, token string
	body                      any
	status                    int
}

// goldenCalls are requests to every endpoint that answers JSON, in an
// order that gives each something to show; they run on the fixtures with
// a fixed clock and fixed ids, so the replies are the same at every run.
func goldenCalls(e *env) []goldenCall {
	spam, clean, other := e.SpamOut, e.CleanOut, e.SpamOther
	return []goldenCall{
		{"messages", "GET", "/api/v1/messages?limit=2", tokAll, nil, 200},
		{"message", "GET", "/api/v1/messages/" + spam, tokAll, nil, 200},
		{"reports", "GET", "/api/v1/reports?group_by=identity&since=24h", tokAll, nil, 200},
		{"lock", "POST", "/api/v1/locks", tokAll, map[string]string{"kind": "identity", "domain": domOut, "name": "alice@customer.example",
			"reason": "phishing kit found", "duration": "24h", "message_id": spam}, 201},
		{"locks", "GET", "/api/v1/locks", tokAll, nil, 200},
		{"lock-detail", "GET", "/api/v1/locks/identity/" + domOut + "/alice@customer.example", tokAll, nil, 200},
		{"notice", "GET", "/api/v1/identities/" + domOut + "/alice@customer.example/notice", tokAll, nil, 200},
		{"notice-send", "POST", "/api/v1/identities/" + domOut + "/alice@customer.example/notice", tokAll, map[string]string{"reason": "customer asked again"}, 202},
		{"unlock", "DELETE", "/api/v1/locks/identity/" + domOut + "/alice@customer.example", tokAll, map[string]string{"reason": "customer cleaned up"}, 200},
		{"usage", "GET", "/api/v1/identities/" + domOther + "/mallory@other.example/usage", tokAll, nil, 200},
		{"would-locks", "GET", "/api/v1/would-locks", tokAll, nil, 200},
		{"learn", "POST", "/api/v1/messages/" + other + "/learn", tokAll, map[string]string{"as": "spam", "reason": "confirmed"}, 200},
		{"learn-upload", "POST", "/api/v1/learn?as=ham", tokAll, "Subject: hello\r\n\r\nhi\r\n", 200},
		{"model", "GET", "/api/v1/model", tokAll, nil, 200},
		{"model-import", "PUT", "/api/v1/model/overlay", tokAll, "overlay", 200},
		{"model-reset", "DELETE", "/api/v1/model/overlay", tokAll, nil, 200},
		{"release", "POST", "/api/v1/messages/" + spam + "/release", tokAll, map[string]string{"reason": "customer confirmed"}, 200},
		{"message-released", "GET", "/api/v1/messages/" + spam, tokAll, nil, 200},
		{"delete", "DELETE", "/api/v1/messages/" + other, tokAll, nil, 200},
		{"delete-again", "DELETE", "/api/v1/messages/" + other, tokAll, nil, 200},
		{"feedback", "POST", "/api/v1/feedback?source=fbl.eml", tokAll, "(the report)", 200},
		{"feedback-list", "GET", "/api/v1/feedback?limit=10", tokAll, nil, 200},
		{"campaigns", "GET", "/api/v1/campaigns?limit=2", tokAll, nil, 200},
		{"campaign", "GET", "/api/v1/campaigns/" + admintest.CampB, tokAll, nil, 200},
		{"campaign-confirm", "POST", "/api/v1/campaigns/" + admintest.CampB + "/confirm", tokAll, nil, 200},
		{"campaign-lock", "POST", "/api/v1/campaigns/" + admintest.CampA + "/lock", tokOut, map[string]string{"reason": "pill spam", "duration": "7d"}, 200},
		{"reload", "POST", "/api/v1/reload", tokAll, nil, 200},
		{"audit", "GET", "/api/v1/audit?limit=3", tokAll, nil, 200},
		{"error", "GET", "/api/v1/messages/" + clean + "x", tokAll, nil, 404},
		{"feedback-refused", "POST", "/api/v1/feedback", tokAll, "From: x\r\n\r\nhello\r\n", 422},
	}
}

// newGoldenEnv is the env of the golden files: a content model, the
// campaigns, a monitor-mode crossing, and a feedback report to ingest.
func newGoldenEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvWith(t, func(e *admintest.Env) {
		e.Opts.Teacher = &admintest.Teacher{Store: e.Store}
		e.Opts.Campaigns = admintest.NewCampaigns(e)
		n := &admintest.Notices{}
		e.Opts.Notices, e.Opts.NoticeOutbox = n, n
		p := identity.DefaultPolicy()
		p.Monitor = true
		p.Thresholds[identity.CounterSpam] = identity.Limit{Count: 2, Window: identity.DefaultPolicy().Thresholds[identity.CounterSpam].Window}
		if _, err := e.Locks.Observe(context.Background(), identity.Observation{Domain: domOut, User: "webhost1",
			Identity: "alice@customer.example", TxID: e.ID(e.Clock.Now()), Class: identity.ClassSpam, Recipients: 1}, p); err != nil {
			t.Fatal(err)
		}
	})
	e.Feedback.Res = feedback.Result{ID: e.ID(e.Clock.Now()), Parse: arf.Result{OK: true, Warnings: []string{}, Profile: "arf",
		FeedbackType: "abuse", Version: "1", UserAgent: "ExampleFBL/1.0", OriginalMailFrom: "alice@customer.example",
		OriginalRcptTo: []string{"bob@example.org"}, ArrivalDate: "2026-03-01T10:00:00Z", SourceIP: "192.0.2.10",
		SourcePort: 40000, ReportedDomain: []string{"customer.example"}, ReportedURI: []string{}, Incidents: 1,
		MessageID: "<Cheap pills@customer.example>"},
		Received: e.Clock.Now(), Reporter: "examplefbl", Method: "trace-token", TxID: e.SpamOut, Domain: domOut,
		User: "webhost1", Identity: "alice@customer.example", Counted: true}
	e.Feedback.List = []feedback.Result{e.Feedback.Res}
	return e
}

// TestGolden pins the JSON of every endpoint: a change of the API's
// shape is a visible diff of testdata/golden (regenerate with go test
// ./admin/api -update, and review it).
func TestGolden(t *testing.T) {
	e := newGoldenEnv(t)
	for _, c := range goldenCalls(e) {
		if c.file == "feedback-refused" {
			e.Feedback.Res = feedback.Result{Parse: arf.Result{Error: "not-arf", Detail: "not a multipart/report message",
				Warnings: []string{}, OriginalRcptTo: []string{}, ReportedDomain: []string{}, ReportedURI: []string{}}}
		}
		code, body := e.Do(c.method, c.path, c.token, c.body)
		if code != c.status {
			t.Errorf("%s %s: got %d %s, want %d", c.method, c.path, code, body, c.status)
			continue
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			t.Errorf("%s: not JSON: %v: %s", c.file, err, body)
			continue
		}
		path := filepath.Join("testdata", "golden", c.file+".json")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run go test ./admin/api -update)", c.file, err)
			continue
		}
		if !bytes.Equal(pretty.Bytes(), want) {
			t.Errorf("%s %s: the reply differs from %s:\ngot:\n%s\nwant:\n%s", c.method, c.path, path, pretty.Bytes(), want)
		}
	}
}

// goldenBlock is a fenced block of docs/api.md tagged with a golden
// file: ```json golden=NAME.
var goldenBlock = regexp.MustCompile("(?s)```json golden=([a-z-]+)\n(.*?)```")

// TestDocsMatchGolden: each example reply of docs/api.md tagged with a
// golden file is that file's JSON, and every golden file has its
// example in the docs.
func TestDocsMatchGolden(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, m := range goldenBlock.FindAllSubmatch(doc, -1) {
		name := string(m[1])
		shown[name] = true
		want, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
		if err != nil {
			t.Errorf("docs/api.md shows golden=%s: %v", name, err)
			continue
		}
		var got, w any
		if err := json.Unmarshal(m[2], &got); err != nil {
			t.Errorf("docs/api.md, golden=%s: not JSON: %v", name, err)
			continue
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("docs/api.md's example golden=%s differs from testdata/golden/%s.json:\ndocs: %s\nfile: %s", name, name, gb, wb)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !shown[name] {
			t.Errorf("testdata/golden/%s.json has no example in docs/api.md (a ```json golden=%s block)", name, name)
		}
	}
	if len(files) == 0 {
		t.Error("no golden files")
	}
}
