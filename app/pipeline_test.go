package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// Test messages. GTUBE and EICAR are split so that this file itself is not
// flagged by scanners.
var (
	gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
)

func testMessage(identity, subject, body string) string {
	var b strings.Builder
	if identity != "" {
		fmt.Fprintf(&b, "X-AuthUser: %s\r\n", identity)
	}
	fmt.Fprintf(&b, "From: shop@out.example.net\r\nTo: rcpt@example.org\r\nSubject: %s\r\nMessage-ID: <%s.%d@out.example.net>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n",
		subject, strings.ReplaceAll(subject, " ", "-"), time.Now().UnixNano(), body)
	return b.String()
}

// clock is a settable clock for App.Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a running App relaying to a test next hop.
type env struct {
	t     *testing.T
	app   *App
	nh    *testutil.NextHop
	path  string
	clock *clock
	addr  string
	// logOut receives the daemon's log as JSON lines when set (before
	// a restart); nil discards it.
	logOut io.Writer
}

const pipelineExtra = `identity:
  trace_header: X-Outguard-Trace
  trace_key: "0123456789abcdef0123456789abcdef"
arf:
  abuse_address: abuse@provider.example
  feedback_address: fbl@outguard.test
  retry: {initial: 1s, max: 2s}
`

// newEnv writes a config whose domain has automatic locking on, the
// identity rules X-AuthUser then envelope sender, and extra appended.
func newEnv(t *testing.T, domainExtra, extra string) *env {
	t.Helper()
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, pipelineExtra+extra)
	b, _ := os.ReadFile(path)
	y := strings.Replace(string(b), "  - name: out.example.net\n", "  - name: out.example.net\n    identity_rules: [{header: X-AuthUser}, {envelope_sender: true}]\n    lock_identities_automatically: true\n"+domainExtra, 1)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nh: nh, path: path, clock: &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	cfg, err := config.Load(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if e.logOut != nil {
		logger = slog.New(slog.NewJSONHandler(e.logOut, nil))
	}
	a, err := New(Options{Config: cfg, ConfigPath: e.path, Logger: logger, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { a.Stop() })
	e.app, e.addr = a, a.SMTPAddrs()[1].String()
}

func (e *env) restart() {
	e.t.Helper()
	e.app.Stop()
	e.start()
}

// send relays one message as the trial user and returns the final error.
func (e *env) send(from, msg string, rcpts ...string) error {
	e.t.Helper()
	if len(rcpts) == 0 {
		rcpts = []string{"rcpt@example.org"}
	}
	c, err := smtp.Dial(e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		e.t.Fatal(err)
	}
	return c.SendMail(from, rcpts, strings.NewReader(msg))
}

func replyOf(err error) *smtp.SMTPError {
	var s *smtp.SMTPError
	if errors.As(err, &s) {
		return s
	}
	return nil
}

// idOf returns the log id quoted in a reply.
func idOf(t *testing.T, err error) string {
	t.Helper()
	s := err.Error()
	i := strings.LastIndex(s, "(id ")
	if i < 0 {
		t.Fatalf("reply %q carries no id", s)
	}
	return strings.TrimSuffix(s[i+4:], ")")
}

// mail returns what the next hop received apart from ARF reports (sent
// with MAIL FROM:<> through the next hop by default).
func (e *env) mail() []testutil.Delivery {
	var out []testutil.Delivery
	for _, d := range e.nh.Received() {
		if d.From != "" {
			out = append(out, d)
		}
	}
	return out
}

// reports returns the ARF reports the next hop received.
func (e *env) reports() []testutil.Delivery {
	var out []testutil.Delivery
	for _, d := range e.nh.Received() {
		if d.From == "" {
			out = append(out, d)
		}
	}
	return out
}

func (e *env) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.app.store.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func TestIdentityByEachRuleKind(t *testing.T) {
	e := newEnv(t, "", "")
	cases := []struct {
		name, from, msg, want string
	}{
		{"header", "x@out.example.net", testMessage("web42", "a", "hello"), "web42"},
		{"envelope sender when no header", "bob@out.example.net", testMessage("", "b", "hello"), "bob@out.example.net"},
		{"two different values give none (occurrence: only, the default)", "x@out.example.net", "X-AuthUser: real\r\nSubject: c\r\nX-AuthUser: spoofed\r\n\r\nbody\r\n", ""},
		{"the same value twice", "x@out.example.net", "X-AuthUser: real\r\nSubject: c\r\nX-AuthUser: real\r\n\r\nbody\r\n", "real"},
		{"comma-joined value falls through to envelope", "env@out.example.net", "X-AuthUser: a, b\r\nSubject: d\r\n\r\nbody\r\n", "env@out.example.net"},
		{"folded value unfolded", "x@out.example.net", "X-AuthUser: web\r\n 7\r\nSubject: e\r\n\r\nbody\r\n", "web 7"},
		{"oversized value falls through", "env2@out.example.net", "X-AuthUser: " + strings.Repeat("x", 300) + "\r\nSubject: f\r\n\r\nbody\r\n", "env2@out.example.net"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.send(tc.from, tc.msg); err != nil {
				t.Fatal(err)
			}
			e.flush()
			page, err := e.app.store.Search(quarantine.Query{Limit: 1})
			if err != nil || len(page.Records) != 1 {
				t.Fatalf("search: %v (%d records)", err, len(page.Records))
			}
			if got := page.Records[0].Identity; got != tc.want {
				t.Errorf("identity = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestIdentityAmbiguousRecorded: with occurrence only (the default), a
// second, different X-AuthUser gives no identity, and neither the
// envelope sender (which the writer of the second header chooses too) nor
// anything else takes its place; the message log says why.
func TestIdentityAmbiguousRecorded(t *testing.T) {
	e := newEnv(t, "", "")
	msg := "X-AuthUser: innocent-neighbour\r\nSubject: c\r\nX-AuthUser: real\r\n\r\nbody\r\n"
	if err := e.send("innocent-neighbour@out.example.net", msg); err != nil {
		t.Fatal(err)
	}
	e.flush()
	page, err := e.app.store.Search(quarantine.Query{Limit: 1})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("search: %v (%d records)", err, len(page.Records))
	}
	r := page.Records[0]
	want := "header X-AuthUser: 2 occurrences with different values (occurrence: only)"
	if r.Identity != "" || r.IdentitySource != "" || r.IdentityReason != want {
		t.Errorf("record identity %q source %q reason %q; want none, with reason %q", r.Identity, r.IdentitySource, r.IdentityReason, want)
	}
	if err := e.send("x@out.example.net", testMessage("web42", "ok", "hello")); err != nil {
		t.Fatal(err)
	}
	e.flush()
	page, _ = e.app.store.Search(quarantine.Query{Limit: 1})
	if r := page.Records[0]; r.Identity != "web42" || r.IdentitySource != "header X-AuthUser" || r.IdentityReason != "" {
		t.Errorf("record identity %q source %q reason %q; want web42 from header X-AuthUser", r.Identity, r.IdentitySource, r.IdentityReason)
	}
}

func TestAuthUserRuleAndStripAndRequire(t *testing.T) {
	e := newEnv(t, "", "")
	// Switch the trial user to auth_user with stripping and require_identity.
	b, _ := os.ReadFile(e.path)
	y := strings.Replace(string(b), "      - name: trial\n", "      - name: trial\n        identity_rules: [{header: X-Hosting-Account}, {auth_user: true}]\n        strip_identity_header: true\n", 1)
	os.WriteFile(e.path, []byte(y), 0o600)
	if err := e.app.ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	msg := "X-Hosting-Account: acct-7\r\nSubject: strip\r\n\r\nbody\r\n"
	if err := e.send("x@out.example.net", msg); err != nil {
		t.Fatal(err)
	}
	if err := e.send("x@out.example.net", "Subject: auth\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	d := e.nh.Received()
	if len(d) != 2 {
		t.Fatalf("next hop got %d", len(d))
	}
	if bytes.Contains(d[0].Data, []byte("X-Hosting-Account")) {
		t.Errorf("identity header not stripped:\n%s", d[0].Data)
	}
	if !bytes.Contains(d[0].Data, []byte("X-Outguard-Trace: ")) {
		t.Errorf("trace header missing:\n%s", d[0].Data)
	}
	e.flush()
	page, _ := e.app.store.Search(quarantine.Query{Limit: 2})
	if len(page.Records) != 2 || page.Records[0].Identity != "trial" || page.Records[1].Identity != "acct-7" {
		t.Errorf("identities = %+v, want trial then acct-7", page.Records)
	}

	// require_identity with a rule that finds nothing.
	y = strings.Replace(y, "identity_rules: [{header: X-Hosting-Account}, {auth_user: true}]", "identity_rules: [{header: X-Hosting-Account}]\n        require_identity: true", 1)
	os.WriteFile(e.path, []byte(y), 0o600)
	if err := e.app.ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	err := e.send("x@out.example.net", "Subject: none\r\n\r\nbody\r\n")
	if r := replyOf(err); r == nil || r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Errorf("without identity: %v, want 550 5.7.1", err)
	}
}

func TestLockedUserAndIdentity(t *testing.T) {
	e := newEnv(t, "", "")
	ctx := context.Background()
	if _, err := e.app.ids.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "bad"), Reason: "phishing kit", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	err := e.send("x@out.example.net", testMessage("bad", "locked identity", "hi"))
	if r := replyOf(err); r == nil || r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("locked identity: %v, want 550 5.7.1", err)
	}
	if err := e.send("x@out.example.net", testMessage("good", "other identity", "hi")); err != nil {
		t.Errorf("other identity of the same user: %v", err)
	}
	if _, err := e.app.ids.Lock(ctx, identity.LockRequest{Target: identity.UserTarget("out.example.net", "trial"), Reason: "compromised", Actor: "test", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c, _ := smtp.Dial(e.addr)
	defer c.Close()
	c.Auth(sasl.NewPlainClient("", "trial", "trial-password"))
	err = c.Mail("x@out.example.net", nil)
	if r := replyOf(err); r == nil || r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) || !strings.Contains(r.Message, "locked") {
		t.Fatalf("locked user at MAIL: %v, want 550 5.7.1 naming the lock", err)
	}
	// The temporary user lock expires without a restart.
	e.clock.Advance(time.Hour + time.Second)
	if err := e.send("x@out.example.net", testMessage("good", "after expiry", "hi")); err != nil {
		t.Errorf("after the user lock expired: %v", err)
	}
	if n := len(e.nh.Received()); n != 2 {
		t.Errorf("next hop got %d, want 2", n)
	}
}

func TestFiveSpamLockTheIdentity(t *testing.T) {
	e := newEnv(t, "", "")
	var ids []string
	for i := 0; i < 5; i++ {
		err := e.send("x@out.example.net", testMessage("spammer", fmt.Sprintf("spam %d", i), gtube))
		r := replyOf(err)
		if r == nil || r.Code != 550 || !strings.Contains(r.Message, "[OG-SPAM] message refused as spam (id ") {
			t.Fatalf("spam %d: %v, want 550 [OG-SPAM]", i, err)
		}
		ids = append(ids, idOf(t, err))
		e.clock.Advance(time.Minute)
	}
	lock, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", "spammer"))
	if err != nil {
		t.Fatalf("no lock after 5 spam: %v", err)
	}
	if lock.Actor != "auto" || lock.Evidence == nil || strings.Join(lock.Evidence.TxIDs, ",") != strings.Join(ids, ",") {
		t.Errorf("lock = %+v, want automatic with evidence %v", lock, ids)
	}
	// The 6th message, clean, is refused for the lock.
	err = e.send("x@out.example.net", testMessage("spammer", "clean now", "hello"))
	if r := replyOf(err); r == nil || r.Code != 550 || !strings.Contains(r.Message, "locked") {
		t.Errorf("6th message: %v, want refused as locked", err)
	}
	// Every blocked message is in the quarantine.
	for _, id := range ids {
		if _, err := e.app.store.Raw(id, quarantine.Actor{Name: "test"}); err != nil {
			t.Errorf("quarantine %s: %v", id, err)
		}
	}
	// Restart keeps the lock.
	e.restart()
	if _, locked := e.app.ids.CheckIdentity("out.example.net", "spammer"); !locked {
		t.Errorf("lock lost across restart")
	}
	// The temporary lock (default 1h) expires and mail flows again.
	e.clock.Advance(2 * time.Hour)
	if err := e.send("x@out.example.net", testMessage("spammer", "much later", "hello")); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if n := len(e.mail()); n != 1 {
		t.Errorf("next hop got %d, want only the last message", n)
	}
}

func TestWindowCountsSurviveRestart(t *testing.T) {
	e := newEnv(t, "", "")
	for i := 0; i < 4; i++ {
		e.send("x@out.example.net", testMessage("slow", fmt.Sprintf("s%d", i), gtube))
	}
	e.restart()
	e.send("x@out.example.net", testMessage("slow", "s5", gtube))
	if _, locked := e.app.ids.CheckIdentity("out.example.net", "slow"); !locked {
		t.Errorf("4 spam before and 1 after a restart did not lock")
	}
}

func TestMonitorModeRelaysAndRecordsWouldLock(t *testing.T) {
	e := newEnv(t, "    monitor: true\n", "")
	for i := 0; i < 6; i++ {
		if err := e.send("x@out.example.net", testMessage("mon", fmt.Sprintf("m%d", i), gtube)); err != nil {
			t.Fatalf("monitor mode refused message %d: %v", i, err)
		}
	}
	if n := len(e.nh.Received()); n != 6 {
		t.Errorf("next hop got %d, want all 6", n)
	}
	if _, locked := e.app.ids.CheckIdentity("out.example.net", "mon"); locked {
		t.Errorf("monitor mode locked the identity")
	}
	wl, err := e.app.ids.WouldLocks(context.Background(), identity.WouldLockFilter{Domain: "out.example.net", Identity: "mon"})
	if err != nil || len(wl) != 1 || len(wl[0].Evidence.TxIDs) != 5 {
		t.Errorf("would-locks = %+v (%v), want one with 5 transactions", wl, err)
	}
	e.flush()
	page, _ := e.app.store.Search(quarantine.Query{Verdicts: []quarantine.Verdict{quarantine.VerdictSpam}})
	if len(page.Records) != 6 {
		t.Errorf("log holds %d spam records, want 6 (classified and recorded as usual)", len(page.Records))
	}
}

func TestEicarRefusedAsVirus(t *testing.T) {
	e := newEnv(t, "", "")
	att := base64.StdEncoding.EncodeToString([]byte(eicar))
	msg := "X-AuthUser: v1\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream; name=eicar.com\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=eicar.com\r\n\r\n" + att + "\r\n--b1--\r\n"
	err := e.send("x@out.example.net", msg)
	if r := replyOf(err); r == nil || r.Code != 550 || !strings.Contains(r.Message, "[OG-VIRUS]") {
		t.Fatalf("EICAR: %v, want 550 [OG-VIRUS]", err)
	}
}

// TestEveryOutcomeOneRecord sends one transaction of each outcome and
// checks the log holds exactly one record for each, with its fields.
func TestEveryOutcomeOneRecord(t *testing.T) {
	e := newEnv(t, "", "")
	ctx := context.Background()
	e.app.ids.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "locked"), Reason: "r", Actor: "test"})
	type sent struct {
		status quarantine.Status
		id     string
	}
	var all []sent
	if err := e.send("a@out.example.net", testMessage("ok", "accepted", "hi"), "r1@example.org", "r2@example.org"); err != nil {
		t.Fatal(err)
	}
	all = append(all, sent{quarantine.StatusAccepted, ""})
	err := e.send("a@out.example.net", testMessage("sp", "quarantined", gtube))
	all = append(all, sent{quarantine.StatusQuarantined, idOf(t, err)})
	err = e.send("a@out.example.net", testMessage("locked", "rejected", "hi"))
	all = append(all, sent{quarantine.StatusRejected, idOf(t, err)})
	e.nh.Lock()
	e.nh.DataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "no thanks"}
	e.nh.Unlock()
	err = e.send("a@out.example.net", testMessage("ok", "failed", "hi"))
	all = append(all, sent{quarantine.StatusFailed, idOf(t, err)})
	e.nh.Lock()
	e.nh.DataErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
	e.nh.Unlock()
	err = e.send("a@out.example.net", testMessage("ok", "deferred", "hi"))
	all = append(all, sent{quarantine.StatusDeferred, idOf(t, err)})
	e.flush()

	page, err := e.app.store.Search(quarantine.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != len(all) {
		t.Fatalf("log holds %d records, want %d", len(page.Records), len(all))
	}
	for i, s := range all {
		r := page.Records[len(all)-1-i] // newest first
		if r.Status != s.status {
			t.Errorf("record %d status %v, want %v", i, r.Status, s.status)
		}
		if s.id != "" && r.ID != s.id {
			t.Errorf("record %d id %s, want the id in the reply %s", i, r.ID, s.id)
		}
		if r.User != "trial" || r.Domain != "out.example.net" || r.Sender != "a@out.example.net" || r.Listener != "loopback" || !r.ClientIP.IsLoopback() || r.Subject == "" || r.MessageID == "" || r.Size == 0 {
			t.Errorf("record %d lacks fields: %+v", i, r)
		}
	}
	acc := page.Records[len(all)-1]
	if len(acc.Recipients) != 2 || acc.Recipients[0].Code != 250 || acc.Verdict != quarantine.VerdictClean || !strings.HasPrefix(acc.NextHopReply, "Ok: queued as") {
		t.Errorf("accepted record = %+v", acc)
	}
	q := page.Records[len(all)-2]
	if q.Verdict != quarantine.VerdictSpam || len(q.Reasons) == 0 || q.Quarantine == nil {
		t.Errorf("quarantined record = %+v", q)
	}
}

func TestQuarantinedBeforeReplyAndRelease(t *testing.T) {
	e := newEnv(t, "", "")
	msg := testMessage("rel", "release me", gtube)
	err := e.send("a@out.example.net", msg, "r1@example.org", "r2@example.org")
	id := idOf(t, err)
	// The client has its 550: the message must already be stored.
	raw, err := e.app.store.Raw(id, quarantine.Actor{Name: "test"})
	if err != nil {
		t.Fatalf("quarantine after 550: %v", err)
	}
	if string(raw) != msg {
		t.Fatalf("quarantined content differs from what the client sent")
	}
	for i := 0; i < 2; i++ {
		if _, err := e.app.store.Release(context.Background(), id, quarantine.Actor{Name: "test"}); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	d := e.mail()
	if len(d) != 1 {
		t.Fatalf("release delivered %d times, want once", len(d))
	}
	body, err := testutil.StripReceived(d[0].Data)
	if err != nil || string(body) != msg || d[0].From != "a@out.example.net" || strings.Join(d[0].Rcpts, ",") != "r1@example.org,r2@example.org" {
		t.Errorf("released delivery differs: from %s rcpts %v", d[0].From, d[0].Rcpts)
	}
}

// TestMetricsSurviveReload checks that the classifier rebuilt on reload
// still feeds the same series.
func TestMetricsSurviveReload(t *testing.T) {
	e := newEnv(t, "", "")
	if err := e.app.ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	e.send("a@out.example.net", testMessage("m1", "spam", gtube))
	mfs, err := e.app.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "outguard_verdicts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "spam" && m.GetCounter().GetValue() == 1 {
				return
			}
		}
	}
	t.Errorf("outguard_verdicts_total{verdict=\"spam\"} is not 1 after a reload")
}

func TestSummarize(t *testing.T) {
	cases := []struct {
		name, raw            string
		from, subject, msgid string
	}{
		{"plain", "From: Shop <shop@example.com>\r\nSubject: Hello\r\nMessage-ID: <a@b>\r\n\r\nbody", "shop@example.com", "Hello", "a@b"},
		{"encoded and folded", "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n aus Berlin\r\nfrom: x@example.org\r\n\r\n", "x@example.org", "Grüße aus Berlin", ""},
		{"topmost wins", "Subject: first\r\nSubject: second\r\n\r\n", "", "first", ""},
		{"unparsable from kept", "From: not an address\r\n\r\n", "not an address", "", ""},
		{"body ignored", "X: y\r\n\r\nSubject: in body\r\n", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize([]byte(tc.raw))
			want := headerSummary{tc.from, tc.subject, tc.msgid}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// FuzzSummarize: the three-field scan of the client's header never panics
// and takes nothing from below the header block.
func FuzzSummarize(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: =?UTF-8?B?w6Q=?=\r\n\r\nSubject: body\r\n"))
	f.Add([]byte("Subject:\r\n \r\n\tx\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := summarize(raw)
		// Appending a body with other values must not change anything.
		withBody := append(append([]byte{}, raw...), "\r\n\r\nFrom: z@z\r\nSubject: zz\r\nMessage-ID: <zz>\r\n"...)
		if bytes.Contains(raw, []byte("\n\n")) || bytes.Contains(raw, []byte("\n\r\n")) {
			if again := summarize(withBody); again != got {
				t.Fatalf("body changed the summary: %+v vs %+v", got, again)
			}
		}
	})
}

func TestPerUserLimits(t *testing.T) {
	e := newEnv(t, "    max_recipients: 3\n", "")
	b, _ := os.ReadFile(e.path)
	os.WriteFile(e.path, []byte(strings.Replace(string(b), "      - name: trial\n", "      - name: trial\n        max_message_bytes: 2048\n", 1)), 0o600)
	if err := e.app.ReloadFromFile(); err != nil {
		t.Fatal(err)
	}
	c, err := smtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Auth(sasl.NewPlainClient("", "trial", "trial-password"))
	if err := c.Mail("a@out.example.net", nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Rcpt(fmt.Sprintf("r%d@example.org", i), nil); err != nil {
			t.Fatalf("recipient %d: %v", i, err)
		}
	}
	err = c.Rcpt("r4@example.org", nil)
	if r := replyOf(err); r == nil || r.Code != 452 || r.EnhancedCode != (smtp.EnhancedCode{4, 5, 3}) {
		t.Errorf("4th recipient (domain limit 3): %v, want 452 4.5.3", err)
	}
	c.Reset()
	big := testMessage("lim", "big", strings.Repeat("0123456789\r\n", 300))
	err = e.send("a@out.example.net", big)
	if r := replyOf(err); r == nil || r.Code != 552 || r.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
		t.Errorf("message over the user's size limit: %v, want 552 5.3.4", err)
	}
	if n := len(e.mail()); n != 0 {
		t.Errorf("relayed %d, want 0", n)
	}
}

// A locked identity does not escape its lock by writing a second, different
// copy of the identity header: with occurrence only there is no identity,
// but either end's copy naming a locked identity refuses the message.
func TestAmbiguousIdentityKeepsLock(t *testing.T) {
	e := newEnv(t, "", "")
	if _, err := e.app.ids.Lock(t.Context(), identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "spammer"), Reason: "spam run", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{
		"X-AuthUser: innocent-neighbour\r\nSubject: a\r\nX-AuthUser: spammer\r\n\r\nbody\r\n",
		"X-AuthUser: spammer\r\nSubject: b\r\nX-AuthUser: innocent-neighbour\r\n\r\nbody\r\n",
	} {
		err := e.send("x@out.example.net", msg)
		if r := replyOf(err); r == nil || r.Code != 550 || !strings.Contains(r.Message, "OG-LOCKED") {
			t.Errorf("ambiguous copy naming a locked identity: %v, want 550 [OG-LOCKED]", err)
		}
	}
	if err := e.send("x@out.example.net", "X-AuthUser: innocent-neighbour\r\nSubject: c\r\nX-AuthUser: someone\r\n\r\nbody\r\n"); err != nil {
		t.Errorf("ambiguous copies naming no locked identity: %v, want relayed without identity", err)
	}
}
