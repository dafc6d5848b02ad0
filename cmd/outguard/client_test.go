package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

const (
	cliTokAll = "cli-all-token"
	cliTokOut = "cli-out-token"
	cliDomOut = "out.example.net"
	cliDomOth = "other.example.org"
)

// cliEnv is a daemon's admin API over real identity and quarantine
// stores in a temporary bbolt file.
type cliEnv struct {
	t         *testing.T
	srv       *httptest.Server
	locks     *identity.Manager
	store     *quarantine.Store
	teacher   *fakeTeacher
	notices   *fakeNotices
	delivered int
	spam      string // quarantined, out.example.net
	clean     string // accepted, out.example.net
	other     string // quarantined, other.example.org
}

const cliRaw = "From: Alice <alice@customer.example>\r\nTo: bob@example.org\r\nSubject: Cheap pills\r\nMessage-ID: <p1@customer.example>\r\n\r\nBuy now!\r\n"

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	t.Setenv("OUTGUARD_SERVER", "")
	t.Setenv("OUTGUARD_TOKEN", "")
	e := &cliEnv{t: t}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "outguard.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.locks, err = identity.Open(db, identity.Options{FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.locks.Close() })
	e.store, err = quarantine.New(db, quarantine.Options{Deliver: func(context.Context, string, []string, []byte) error {
		e.delivered++
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.store.Stop)
	hash := func(s string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	users := map[string]string{"webhost1": cliDomOut, "otheruser": cliDomOth}
	e.teacher = &fakeTeacher{store: e.store}
	e.notices = &fakeNotices{}
	o, err := ops.New(ops.Options{
		Notices: e.notices, NoticeOutbox: e.notices,
		Tokens: []ops.Token{{Name: "root", Hash: hash(cliTokAll), Scope: ops.ScopeAll}, {Name: "outadmin", Hash: hash(cliTokOut), Scope: cliDomOut}},
		Locks:  e.locks, Store: e.store, DB: db, Teacher: e.teacher,
		UserDomain: func(u string) (string, bool) { d, ok := users[u]; return d, ok },
		Feedback: ops.FeedbackFunc(func(ctx context.Context, raw []byte, source string) (feedback.Result, error) {
			fb, err := arf.Parse(bytes.NewReader(raw), arf.ParseOptions{})
			return feedback.Result{Parse: arf.NewResult(source, fb, err), Method: string(arf.MethodNone)}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Options{Ops: o})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)

	now := time.Now()
	rec := func(at time.Time, domain, user, ident string, st quarantine.Status, v quarantine.Verdict, subj string) *quarantine.Record {
		return &quarantine.Record{ID: quarantine.NewID(at), User: user, Domain: domain, Identity: ident, Sender: ident,
			ClientIP:   netip.MustParseAddr("192.0.2.7"),
			Recipients: []quarantine.Recipient{{Address: "bob@example.org", Code: 550}, {Address: "carol@example.org", Code: 550}},
			Subject:    subj, Status: st, Verdict: v, Score: 12.5, Reasons: []string{"builtin:PILLS"},
			Band: quarantine.BandSpam, Model: "seed-test"}
	}
	r1 := rec(now.Add(-3*time.Hour), cliDomOut, "webhost1", "alice@customer.example", quarantine.StatusQuarantined, quarantine.VerdictSpam, "Cheap pills\x1b[31m")
	r2 := rec(now.Add(-2*time.Hour), cliDomOut, "webhost1", "bob@customer.example", quarantine.StatusAccepted, quarantine.VerdictClean, "Invoice")
	r3 := rec(now.Add(-time.Hour), cliDomOth, "otheruser", "mallory@other.example", quarantine.StatusQuarantined, quarantine.VerdictPhishing, "Your bank")
	ctx := context.Background()
	for _, r := range []*quarantine.Record{r1, r3} {
		if err := e.store.Quarantine(ctx, r, []byte(cliRaw)); err != nil {
			t.Fatal(err)
		}
	}
	r2.Score, r2.Band, r2.Model = 1.5, quarantine.BandSuspect, "seed-test"
	if err := e.store.AppendWait(ctx, r2); err != nil {
		t.Fatal(err)
	}
	e.spam, e.clean, e.other = r1.ID, r2.ID, r3.ID
	if _, err := e.locks.Observe(ctx, identity.Observation{Domain: cliDomOut, User: "webhost1", Identity: "alice@customer.example",
		TxID: r1.ID, Class: identity.ClassSpam, Recipients: 2}, identity.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	return e
}

// cli runs the CLI with --server and the token (none if "") and returns
// the exit code, stdout and stderr.
func (e *cliEnv) cli(token string, args ...string) (int, string, string) {
	e.t.Helper()
	full := append([]string{}, args...)
	full = append(full, "--server", e.srv.URL)
	if token != "" {
		full = append(full, "--token", token)
	}
	var out, errb bytes.Buffer
	code := run(full, &out, &errb)
	return code, out.String(), errb.String()
}

// jsonLines decodes one JSON object per line into a fresh T each.
func jsonLines[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

func TestClientLogs(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errs := e.cli(cliTokAll, "logs", "--since", "24h")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME (UTC)") || !strings.Contains(lines[0], "SUBJECT") {
		t.Fatalf("got table:\n%s", out)
	}
	// Columns are aligned: every row has STATUS where the header has it.
	col := strings.Index(lines[0], "STATUS")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "quarantined") && !strings.HasPrefix(l[col:], "accepted") {
			t.Errorf("row %q: status not under its header", l)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a control character from a subject reached the terminal")
	}
	if !strings.Contains(out, "bob@example.org +1") {
		t.Errorf("recipients column: got\n%s", out)
	}
	if !strings.Contains(lines[0], "SCORE") || !strings.Contains(lines[0], "BAND") ||
		!regexpLine(out, `accepted\s+clean\s+1\.5\s+suspect\s+webhost1`) || !regexpLine(out, `quarantined\s+spam\s+12\.5\s+spam\s+webhost1`) {
		t.Errorf("score and band columns: got\n%s", out)
	}

	code, out, _ = e.cli(cliTokAll, "logs", "--status", "quarantined", "--json")
	msgs := jsonLines[apiv1.Message](t, out)
	if code != exitOK || len(msgs) != 2 || msgs[0].ID != e.other || msgs[1].ID != e.spam || msgs[1].Quarantine == nil {
		t.Errorf("--json: exit %d, got %+v", code, msgs)
	}
	// The keys the help promises, the content model's among them.
	for _, m := range jsonLines[map[string]any](t, out) {
		for _, k := range []string{"id", "time", "user", "domain", "identity", "sender", "recipients", "subject", "size",
			"status", "verdict", "score", "reasons", "band", "model", "duration_ms", "quarantine"} {
			if _, ok := m[k]; !ok {
				t.Errorf("--json record lacks %q: %v", k, m)
			}
		}
		if m["band"] != "spam" || m["model"] != "seed-test" {
			t.Errorf("--json: band %v, model %v; want spam, seed-test", m["band"], m["model"])
		}
	}
	code, out, errs = e.cli(cliTokAll, "logs", "--limit", "1", "--json")
	if code != exitOK || len(jsonLines[apiv1.Message](t, out)) != 1 || !strings.Contains(errs, "--cursor") {
		t.Errorf("--limit 1: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = e.cli(cliTokOut, "logs", "--json")
	if code != exitOK {
		t.Errorf("logs --json with a domain token: exit %d", code)
	}
	for _, m := range jsonLines[apiv1.Message](t, out) {
		if m.Domain != cliDomOut {
			t.Errorf("domain token saw a message of %s", m.Domain)
		}
	}
	code, out, _ = e.cli(cliTokAll, "logs", "--subject", "no such subject")
	if code != exitOK || !strings.Contains(out, "no matching records") {
		t.Errorf("no match: exit %d %q", code, out)
	}
}

func TestClientReport(t *testing.T) {
	e := newCLIEnv(t)
	if _, err := e.locks.Lock(context.Background(), identity.LockRequest{Target: identity.IdentityTarget(cliDomOut, "alice@customer.example"), Reason: "x", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := e.cli(cliTokAll, "report", "--group-by", "identity", "--classification", "spam")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "DOMAIN") || !strings.Contains(out, "LOCKED") || !regexpLine(out, `out\.example\.net\s+alice@customer\.example\s+1\s+yes`) {
		t.Errorf("got\n%s", out)
	}
	code, out, _ = e.cli(cliTokAll, "report", "--group-by", "user", "--json")
	rows := jsonLines[apiv1.ReportRow](t, out)
	if code != exitOK || len(rows) != 2 || rows[0].Key != "webhost1" || rows[0].Count != 2 {
		t.Errorf("--json: exit %d rows %+v", code, rows)
	}
}

func TestClientLockFlow(t *testing.T) {
	e := newCLIEnv(t)
	steps := []struct {
		name  string
		token string
		args  []string
		code  int
		out   string // substring of stdout (or stderr when code != 0)
	}{
		{"lock identity", cliTokOut, []string{"lock", "identity", "alice@customer.example", "--domain", cliDomOut, "--reason", "phishing kit", "--for", "24h"}, 0, "locked identity alice@customer.example (out.example.net) until"},
		{"lock again", cliTokAll, []string{"lock", "identity", "alice@customer.example", "--domain", cliDomOut, "--reason", "again"}, 1, "already locked"},
		{"lock user permanently", cliTokAll, []string{"lock", "user", "webhost1", "--reason", "compromised"}, 0, "locked user webhost1 (out.example.net) until unlocked"},
		{"lock other domain's user", cliTokOut, []string{"lock", "user", "otheruser", "--reason", "x"}, 1, "HTTP 403 forbidden"},
		{"lock unknown user", cliTokAll, []string{"lock", "user", "nobody", "--reason", "x"}, 1, "HTTP 404"},
		{"locks table", cliTokAll, []string{"locks", "--active"}, 0, "REASON"},
		{"unlock without reason", cliTokAll, []string{"unlock", "user", "webhost1"}, 2, "--reason TEXT is required"},
		{"unlock user", cliTokOut, []string{"unlock", "user", "webhost1", "--reason", "server reinstalled"}, 0, "unlocked user webhost1 (out.example.net)"},
		{"unlock again", cliTokOut, []string{"unlock", "user", "webhost1", "--reason", "again"}, 1, "not locked"},
	}
	for _, s := range steps {
		code, out, errs := e.cli(s.token, s.args...)
		text := out
		if s.code != 0 {
			text = errs
		}
		if code != s.code || !strings.Contains(text, s.out) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", s.name, code, out, errs, s.code, s.out)
		}
	}
	code, out, _ := e.cli(cliTokAll, "locks", "--json")
	locks := jsonLines[apiv1.Lock](t, out)
	if code != exitOK || len(locks) != 2 {
		t.Fatalf("locks --json: exit %d, %+v", code, locks)
	}
	states := map[string]string{}
	for _, l := range locks {
		states[l.Name] = l.State
	}
	if states["alice@customer.example"] != "active" || states["webhost1"] != "unlocked" {
		t.Errorf("got states %v", states)
	}
	code, out, _ = e.cli(cliTokAll, "lock", "identity", "x y", "--domain", cliDomOut, "--reason", "r", "--json")
	var one apiv1.Lock
	if err := json.Unmarshal([]byte(out), &one); code != 0 || err != nil || one.Name != "x y" || strings.Count(out, "\n") != 1 {
		t.Errorf("lock --json: exit %d, %q", code, out)
	}
	code, out, _ = e.cli(cliTokAll, "audit", "--json")
	entries := jsonLines[apiv1.AuditEntry](t, out)
	if code != 0 || len(entries) != 4 || entries[0].Target.Name != "x y" || entries[1].Action != "unlock" || entries[1].Actor != "outadmin" || entries[1].Reason != "server reinstalled" {
		t.Errorf("audit: exit %d, %+v", code, entries)
	}
	code, out, _ = e.cli(cliTokAll, "audit", "--action", "unlock")
	if code != 0 || !regexpLine(out, `outadmin\s+unlock\s+user webhost1 \(out\.example\.net\)\s+server reinstalled`) {
		t.Errorf("audit table: exit %d\n%s", code, out)
	}
}

func TestClientUsage(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errs := e.cli(cliTokAll, "usage", "alice@customer.example", "--domain", cliDomOut)
	if code != 0 || !strings.Contains(out, "user       webhost1") || !regexpLine(out, `spam\s+1\s+5\s+10m`) || !regexpLine(out, `messages\s+0\s+off`) {
		t.Errorf("exit %d stderr %q\n%s", code, errs, out)
	}
	code, out, _ = e.cli(cliTokAll, "usage", "alice@customer.example", "--domain", cliDomOut, "--json")
	var u apiv1.Usage
	if err := json.Unmarshal([]byte(out), &u); code != 0 || err != nil || len(u.Counters) != len(identity.Counters()) || u.Counters[3].Counter != "complaints" {
		t.Errorf("--json: exit %d %q", code, out)
	}
	if code, _, errs := e.cli(cliTokAll, "usage", "nobody", "--domain", cliDomOut); code != 1 || !strings.Contains(errs, "404") {
		t.Errorf("unknown identity: exit %d %q", code, errs)
	}
}

func TestClientQuarantine(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errs := e.cli(cliTokOut, "quarantine", "show", e.spam)
	if code != 0 || !regexpLine(out, `verdict\s+spam \(score 12\.50\)`) || !strings.Contains(out, "Subject: Cheap pills") || !strings.Contains(out, "  Buy now!") {
		t.Errorf("show: exit %d %q\n%s", code, errs, out)
	}
	code, out, _ = e.cli(cliTokOut, "quarantine", "show", e.spam, "--json")
	var d apiv1.MessageDetail
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil || d.Content == nil || d.Message.ID != e.spam {
		t.Errorf("show --json: exit %d %q", code, out)
	}
	code, out, _ = e.cli(cliTokOut, "quarantine", "raw", e.spam)
	if code != 0 || out != cliRaw {
		t.Errorf("raw: exit %d, got %q", code, out)
	}
	file := filepath.Join(t.TempDir(), "m.eml")
	if code, _, errs := e.cli(cliTokOut, "quarantine", "raw", e.spam, "--output", file); code != 0 {
		t.Errorf("raw --output: exit %d %s", code, errs)
	} else if b, _ := os.ReadFile(file); string(b) != cliRaw {
		t.Errorf("raw --output wrote %q", b)
	}
	if code, _, errs := e.cli(cliTokOut, "quarantine", "show", e.other); code != 1 || !strings.Contains(errs, "403") {
		t.Errorf("other domain: exit %d %q", code, errs)
	}
	code, out, _ = e.cli(cliTokOut, "quarantine", "release", e.spam, "--reason", "false positive")
	if code != 0 || !strings.Contains(out, "released "+e.spam) || e.delivered != 1 {
		t.Errorf("release: exit %d %q delivered %d", code, out, e.delivered)
	}
	code, out, _ = e.cli(cliTokOut, "quarantine", "release", e.spam, "--json")
	var rel apiv1.ReleaseResponse
	if err := json.Unmarshal([]byte(out), &rel); code != 0 || err != nil || !rel.Already || e.delivered != 1 {
		t.Errorf("second release: exit %d %q", code, out)
	}
	if code, out, _ := e.cli(cliTokOut, "quarantine", "delete", e.spam); code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("delete: exit %d %q", code, out)
	}
	if code, _, errs := e.cli(cliTokOut, "quarantine", "raw", e.spam); code != 1 || !strings.Contains(errs, "410") {
		t.Errorf("raw after delete: exit %d %q", code, errs)
	}
	// A second delete is a success that says "already", as a second release.
	if code, out, _ := e.cli(cliTokOut, "quarantine", "delete", e.spam); code != 0 || !strings.Contains(out, "already deleted") {
		t.Errorf("second delete: exit %d %q, want 0 and already", code, out)
	}
	// A bad filter the daemon catches is a usage error: exit 2.
	if code, _, errs := e.cli(cliTokAll, "logs", "--status", "bogus"); code != 2 || !strings.Contains(errs, "bad_parameter") {
		t.Errorf("logs --status bogus: exit %d %q, want 2", code, errs)
	}
	if code, _, errs := e.cli(cliTokOut, "quarantine", "raw", e.clean); code != 1 || !strings.Contains(errs, "not_quarantined") {
		t.Errorf("raw of accepted: exit %d %q", code, errs)
	}
}

func TestClientFeedback(t *testing.T) {
	e := newCLIEnv(t)
	good := filepath.Join("..", "..", "arf", "testdata", "arf-standard.eml")
	bad := filepath.Join("..", "..", "arf", "testdata", "refuse-plain.eml")
	code, out, errs := e.cli(cliTokAll, "feedback", "ingest", good)
	if code != 0 || !strings.Contains(out, "accepted abuse report") {
		t.Errorf("good: exit %d %q %q", code, out, errs)
	}
	code, out, _ = e.cli(cliTokAll, "feedback", "ingest", "--json", good, bad)
	res := jsonLines[apiv1.FeedbackResult](t, out)
	if code != 1 || len(res) != 2 || !res[0].OK || res[0].File != good || res[1].OK || res[1].Error != "not-arf" {
		t.Errorf("mixed: exit %d %+v", code, res)
	}
	code, out, _ = e.cli(cliTokAll, "feedback", "ingest", bad)
	if code != 1 || !strings.Contains(out, "refused: not-arf") {
		t.Errorf("bad: exit %d %q", code, out)
	}
	if code, _, errs := e.cli(cliTokOut, "feedback", "ingest", good); code != 1 || !strings.Contains(errs, "403") {
		t.Errorf("domain token: exit %d %q", code, errs)
	}
	if code, _, errs := e.cli(cliTokAll, "feedback", "ingest", "/nonexistent.eml"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d %q", code, errs)
	}
}

func TestClientUsageErrors(t *testing.T) {
	e := newCLIEnv(t)
	for _, tc := range []struct {
		name  string
		token string
		args  []string
		want  string
	}{
		{"no token", "", []string{"logs"}, "no admin token"},
		{"bad status flag", cliTokAll, []string{"logs", "--bogus"}, "flag provided but not defined"},
		{"logs bad since", cliTokAll, []string{"logs", "--since", "yesterday"}, "--since"},
		{"logs since and from", cliTokAll, []string{"logs", "--since", "1h", "--from", "2026-01-01"}, "not both"},
		{"logs bad from", cliTokAll, []string{"logs", "--from", "March"}, "RFC 3339"},
		{"logs bad limit", cliTokAll, []string{"logs", "--limit", "0"}, "--limit"},
		{"logs positional", cliTokAll, []string{"logs", "alice"}, "unexpected argument"},
		{"report no group", cliTokAll, []string{"report"}, "--group-by is required"},
		{"report bad group", cliTokAll, []string{"report", "--group-by", "recipient"}, "--group-by"},
		{"report bad class", cliTokAll, []string{"report", "--group-by", "user", "--classification", "ham"}, "--classification"},
		{"lock nothing", cliTokAll, []string{"lock"}, "say what to lock"},
		{"lock bad kind", cliTokAll, []string{"lock", "domain", "x", "--reason", "r"}, "use lock identity"},
		{"lock no name", cliTokAll, []string{"lock", "user", "--reason", "r"}, "exactly one user name"},
		{"lock no reason", cliTokAll, []string{"lock", "user", "webhost1"}, "--reason TEXT is required"},
		{"lock bad duration", cliTokAll, []string{"lock", "user", "webhost1", "--reason", "r", "--for", "forever"}, "--for"},
		{"unlock identity no domain", cliTokAll, []string{"unlock", "identity", "alice", "--reason", "r"}, "--domain D is required"},
		{"locks bad kind", cliTokAll, []string{"locks", "--kind", "domain"}, "--kind"},
		{"usage no domain", cliTokAll, []string{"usage", "alice"}, "--domain D is required"},
		{"usage no identity", cliTokAll, []string{"usage", "--domain", cliDomOut}, "exactly one IDENTITY"},
		{"quarantine nothing", cliTokAll, []string{"quarantine"}, "show, raw, release or delete"},
		{"quarantine bad action", cliTokAll, []string{"quarantine", "purge", "x"}, "unknown action"},
		{"quarantine no id", cliTokAll, []string{"quarantine", "show"}, "exactly one log ID"},
		{"quarantine output on show", cliTokAll, []string{"quarantine", "show", "x", "--output", "f"}, "--output is for raw only"},
		{"feedback no files", cliTokAll, []string{"feedback", "ingest"}, "at least one FILE"},
		{"feedback bad action", cliTokAll, []string{"feedback", "parse", "x"}, "unknown action"},
		{"audit bad action", cliTokAll, []string{"audit", "--action", "purge"}, "--action"},
		{"server and config", cliTokAll, []string{"logs", "--config", "x.yaml"}, "not both"},
		{"learn nothing", cliTokAll, []string{"learn"}, "say what the messages are"},
		{"learn bad kind", cliTokAll, []string{"learn", "junk", "m.eml"}, "use learn spam or learn ham"},
		{"learn no files", cliTokAll, []string{"learn", "spam"}, "at least one FILE"},
		{"learn no ids", cliTokAll, []string{"learn", "ham", "--id"}, "at least one log ID"},
		{"learn reason on upload", cliTokAll, []string{"learn", "spam", "m.eml", "--reason", "r"}, "--reason is for --id only"},
		{"learn no token", "", []string{"learn", "spam", "m.eml"}, "no admin token"},
		{"model nothing", cliTokAll, []string{"model"}, "info, export FILE, import FILE or reset"},
		{"model bad action", cliTokAll, []string{"model", "train"}, "unknown action"},
		{"model export no file", cliTokAll, []string{"model", "export"}, "exactly one FILE"},
		{"model import two files", cliTokAll, []string{"model", "import", "a", "b"}, "exactly one FILE"},
		{"model info argument", cliTokAll, []string{"model", "info", "x"}, "unexpected argument"},
		{"model yes on info", cliTokAll, []string{"model", "info", "--yes"}, "--yes is for reset only"},
		{"model export json to stdout", cliTokAll, []string{"model", "export", "-", "--json"}, "the overlay is the output"},
		{"campaigns bad action", cliTokAll, []string{"campaigns", "merge", "x"}, "unknown action"},
		{"campaigns list argument", cliTokAll, []string{"campaigns", "list", "x"}, "unexpected argument"},
		{"campaigns show no id", cliTokAll, []string{"campaigns", "show"}, "exactly one campaign ID"},
		{"campaigns confirm two ids", cliTokAll, []string{"campaigns", "confirm", "a", "b"}, "exactly one campaign ID"},
		{"campaigns lock no reason", cliTokAll, []string{"campaigns", "lock", "01KB2X7ZQ0V4M8K2"}, "--reason TEXT is required"},
		{"campaigns lock bad duration", cliTokAll, []string{"campaigns", "lock", "01KB2X7ZQ0V4M8K2", "--reason", "r", "--duration", "forever"}, "--duration"},
		{"campaigns reason on show", cliTokAll, []string{"campaigns", "show", "01KB2X7ZQ0V4M8K2", "--reason", "r"}, "are for lock"},
		{"campaigns filter on show", cliTokAll, []string{"campaigns", "show", "01KB2X7ZQ0V4M8K2", "--confirmed"}, "are for list"},
		{"campaigns bad since", cliTokAll, []string{"campaigns", "--since", "lately"}, "--since"},
		{"campaigns bad limit", cliTokAll, []string{"campaigns", "--limit", "1001"}, "--limit"},
		{"campaigns negative count", cliTokAll, []string{"campaigns", "--min-users", "-1"}, "0 or more"},
		{"campaigns no token", "", []string{"campaigns"}, "no admin token"},
		{"campaigns bad before", cliTokAll, []string{"campaigns", "--before", "yesterday"}, "--before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := e.cli(tc.token, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2 (stdout %q)", code, out)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q, want it to mention %q", errs, tc.want)
			}
		})
	}
}

// TestClientCampaignsOff: a daemon without campaign detection refuses
// every campaigns action with status 1 and says why.
func TestClientCampaignsOff(t *testing.T) {
	e := newCLIEnv(t)
	for _, args := range [][]string{
		{"campaigns"}, {"campaigns", "show", "01KB2X7ZQ0V4M8K2"}, {"campaigns", "confirm", "01KB2X7ZQ0V4M8K2"},
		{"campaigns", "lock", "01KB2X7ZQ0V4M8K2", "--reason", "botnet"},
	} {
		code, out, errs := e.cli(cliTokAll, args...)
		if code != exitFailed || !strings.Contains(errs, "campaign detection is off") || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 saying campaign detection is off", args, code, out, errs)
		}
	}
}

func TestClientServerResolution(t *testing.T) {
	e := newCLIEnv(t)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	var out, errb bytes.Buffer
	t.Setenv("OUTGUARD_SERVER", e.srv.URL)
	t.Setenv("OUTGUARD_TOKEN", cliTokAll)
	if code := run([]string{"locks"}, &out, &errb); code != 0 {
		t.Errorf("from the environment: exit %d %s", code, errb.String())
	}
	t.Setenv("OUTGUARD_SERVER", "http://127.0.0.1:1")
	cfg := filepath.Join(t.TempDir(), "outguard.yaml")
	base, err := os.ReadFile(filepath.Join("..", "..", "config", "testdata", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(base, []byte("admin:\n  address: \""+addr+"\"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"locks", "--config", cfg}, &out, &errb); code != 0 {
		t.Errorf("from --config: exit %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"locks"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "cannot reach the admin API") {
		t.Errorf("unreachable: exit %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"locks", "--server", e.srv.URL, "--token", "wrong"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("wrong token: exit %d %q", code, errb.String())
	}
}

func TestClientHelp(t *testing.T) {
	for _, args := range [][]string{
		{"logs", "--help"}, {"report", "--help"}, {"lock", "--help"}, {"unlock", "--help"}, {"locks", "--help"},
		{"usage", "--help"}, {"quarantine", "--help"}, {"quarantine", "show", "--help"}, {"feedback", "--help"},
		{"feedback", "ingest", "--help"}, {"audit", "--help"}, {"help", "lock"},
		{"learn", "--help"}, {"learn", "spam", "--help"}, {"model", "--help"}, {"help", "model"},
		{"campaigns", "--help"}, {"campaigns", "lock", "--help"}, {"help", "campaigns"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != exitOK {
				t.Errorf("exit %d, want 0", code)
			}
			for _, want := range []string{"Usage:", "Examples:", "Flags:", "OUTGUARD_TOKEN", "Exit status"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("help lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// regexpLine reports whether some line of s matches the pattern.
func regexpLine(s, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}
