package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
)

// sendTo relays msg as user to rcpts over SMTP and tolerates refused
// recipients, as a sending MTA does: it returns how many the next hop
// took and the final reply (nil for 250).
func sendTo(t *testing.T, addr, user, pass string, rcpts []string, msg string) (int, error) {
	t.Helper()
	return sendEnvelope(t, addr, user, pass, "shop@out.example.net", rcpts, msg)
}

// sendEnvelope is sendTo with the envelope sender from.
func sendEnvelope(t *testing.T, addr, user, pass, from string, rcpts []string, msg string) (int, error) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTH %s: %v", user, err)
	}
	if err := c.Mail(from, nil); err != nil {
		return 0, err
	}
	ok := 0
	for _, r := range rcpts {
		if c.Rcpt(r, nil) == nil {
			ok++
		}
	}
	if ok == 0 {
		return 0, c.Reset()
	}
	w, err := c.Data()
	if err != nil {
		return ok, err
	}
	io.WriteString(w, msg)
	err = w.Close()
	c.Quit()
	return ok, err
}

// lockOf returns the identity's lock in out.example.net.
func (e *env) lockOf(ident string) (identity.Lock, bool) {
	return e.app.ids.CheckIdentity("out.example.net", ident)
}

// TestRefusalsLockListWashing runs a next hop that refuses unknown
// recipients (5.1.1) and, after DATA, content it takes for spam (5.7.1):
// an identity washing a list is locked by its refused share, one whose
// few refusals are a small share of its mail is not, and one whose
// messages the next hop refuses after DATA is locked by those.
func TestRefusalsLockListWashing(t *testing.T) {
	e := newEnv(t, "", "")
	e.nh.Lock()
	e.nh.RcptRule = func(to string) *smtp.SMTPError {
		if strings.HasSuffix(to, "@gone.example") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
		}
		return nil
	}
	e.nh.DataRule = func(b []byte) *smtp.SMTPError {
		if bytes.Contains(b, []byte("ref-zeta-77")) {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message rejected: likely unsolicited mail"}
		}
		return nil
	}
	e.nh.Unlock()
	rcpts := func(gone, ok int, tag string) []string {
		var out []string
		for i := range gone {
			out = append(out, fmt.Sprintf("old%d.%s@gone.example", i, tag))
		}
		for i := range ok {
			out = append(out, fmt.Sprintf("member%d.%s@example.org", i, tag))
		}
		return out
	}

	// A stale list: 1 unknown in 10, 30 times (30 refused, 10%).
	for i := range 30 {
		if _, err := sendTo(t, e.addr, "trial", "trial-password", rcpts(1, 9, fmt.Sprint(i)), testMessage("news", fmt.Sprintf("Club news %d", i), "Meeting on Thursday at the usual place.")); err != nil {
			t.Fatalf("newsletter %d: %v", i, err)
		}
	}
	if e.locked("news") {
		l, _ := e.lockOf("news")
		t.Fatalf("a newsletter with 10%% unknown recipients was locked: %+v", l.Evidence)
	}

	// List washing: 4 unknown in 5. Counted at each message's end: the
	// fifth message brings 20 refused of 25 tried.
	var refused error
	for i := range 8 {
		_, err := sendTo(t, e.addr, "trial", "trial-password", rcpts(4, 1, fmt.Sprint("w", i)), testMessage("washer", fmt.Sprintf("Hello %d", i), "The minutes of the committee are on the shared drive."))
		if err != nil {
			refused = err
			if i != 5 {
				if r := replyOf(err); r != nil {
					rec := e.recordOf(t, err)
					t.Logf("reasons %q", rec.Reasons)
				}
				t.Errorf("washer refused at message %d (%v), want the 6th", i+1, err)
			}
			break
		}
	}
	if r := replyOf(refused); r == nil || r.Code != 550 || !strings.Contains(r.Message, "OG-LOCKED") {
		t.Fatalf("washer after 20 refused recipients: %v, want 550 [OG-LOCKED]", refused)
	}
	l, _ := e.lockOf("washer")
	if ev := l.Evidence; ev == nil || ev.Counter != "refused" || ev.Count != 20 || ev.Counts["refused_unknown"] != 20 || ev.Counts["tried"] != 25 {
		t.Errorf("washer's evidence %+v, want 20 refused (all unknown) of 25 tried", l.Evidence)
	}

	// Refused after DATA three times (5.7.1): locked.
	for i := range 3 {
		_, err := sendTo(t, e.addr, "trial", "trial-password", rcpts(0, 1, fmt.Sprint("s", i)), testMessage("pusher", fmt.Sprintf("Note %d", i), "Please see ref-zeta-77 for the details."))
		if r := replyOf(err); r == nil || r.Code != 554 {
			t.Fatalf("message %d refused after DATA: got %v, want the next hop's 554", i+1, err)
		}
	}
	if !e.waitFor(5*time.Second, func() bool { return e.locked("pusher") }) {
		t.Fatal("three messages refused after DATA did not lock the identity")
	}
	if l, _ := e.lockOf("pusher"); l.Evidence == nil || l.Evidence.Counter != "refused_after_data" || len(l.Evidence.TxIDs) != 3 {
		t.Errorf("pusher's evidence %+v", l.Evidence)
	}
}

// campaignText is a templated message: the same text with a name, a
// tracking link and numbers that change per recipient.
func campaignText(i int) string {
	names := []string{"Maria", "Jonas", "Priya", "Tomasz", "Aiko", "Lars", "Fatima", "Diego", "Chen", "Olga"}
	return fmt.Sprintf(`Dear %s,

thank you for visiting our garden centre last weekend. As a returning
customer you can collect your seasonal gift at the information desk of
any of our stores until the end of the month. Show the code %d%d at the
desk, or open https://gardens.example/voucher?c=%d&u=%d to see the
opening hours and the store nearest to you.

With green regards,
the team of the garden centre
`, names[i%len(names)], 40000+i*37, i, 9000+i, 100+i)
}

// TestConfirmedCampaignBlocksNearDuplicates: a message a scanner found to
// be spam confirms its campaign; near-duplicates of it (other names,
// links and numbers) are refused from other identities, naming the
// campaign, while different mail passes.
func TestConfirmedCampaignBlocksNearDuplicates(t *testing.T) {
	e := newEnv(t, "", "")
	err := e.send("shop@out.example.net", testMessage("alice", "Your seasonal gift", campaignText(0)+"\r\n"+gtube))
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("the GTUBE copy: %v, want 550", err)
	}
	for i := 1; i <= 5; i++ {
		ident := fmt.Sprint("bob", i)
		err := e.send("shop@out.example.net", testMessage(ident, "Your seasonal gift", campaignText(i)))
		r := replyOf(err)
		if r == nil || r.Code != 550 {
			t.Fatalf("near-duplicate %d from %s: %v, want 550", i, ident, err)
		}
		rec := e.recordOf(t, err)
		if !slices.ContainsFunc(rec.Reasons, func(s string) bool { return strings.HasPrefix(s, "campaign:CONFIRMED(") }) {
			t.Errorf("near-duplicate %d refused for %q, want the confirmed campaign", i, rec.Reasons)
		}
		if rec.Campaign == "" || !slices.Contains(rec.Reasons, "campaign:CONFIRMED("+rec.Campaign+")") {
			t.Errorf("near-duplicate %d: log record's campaign %q, reasons %q", i, rec.Campaign, rec.Reasons)
		}
	}
	if err := e.send("shop@out.example.net", testMessage("carol", "Minutes", "Minutes of Tuesday's board meeting are attached to the wiki page; please add your comments by Friday.")); err != nil {
		t.Fatalf("different mail from another identity: %v", err)
	}
}

// usersEnv is a running App with n outgoing users u01..uNN (password
// "pw"), identities from X-AuthUser, relaying to a test next hop.
func usersEnv(t *testing.T, n int, extra string) (*App, string, *testutil.NextHop) {
	t.Helper()
	nh := testutil.StartNextHop(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var users strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&users, "      - {name: u%02d, password_hash: %q}\n", i, hash)
	}
	dir := t.TempDir()
	y := fmt.Sprintf(`hostname: outguard.test
data_dir: %s
log: {level: warn}
listeners:
  - {name: loopback, address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}
next_hop: {type: smtp, address: %q, pool_size: 4}
domains:
  - name: out.example.net
    identity_rules: [{header: X-AuthUser}]
    lock_identities_automatically: true
    users:
%sadmin: {address: "127.0.0.1:0"}
%s`, filepath.Join(dir, "data"), nh.Addr, users.String(), extra)
	path := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	return a, a.SMTPAddrs()[0].String(), nh
}

// TestCampaignFromManyUsers: 30 identities of 30 users sending one
// templated campaign are one campaign, and past the threshold of 10 users
// every one of them is locked; 30 identities of 30 other users sending
// 30 different ordinary messages are locked by nothing.
func TestCampaignFromManyUsers(t *testing.T) {
	a, addr, _ := usersEnv(t, 60, "")
	locked := func(ident string) bool {
		_, ok := a.ids.CheckIdentity("out.example.net", ident)
		return ok
	}
	for i := 1; i <= 30; i++ {
		msg := testMessage(fmt.Sprintf("shop%02d", i), "Your seasonal gift", campaignText(i))
		_, err := sendTo(t, addr, fmt.Sprintf("u%02d", i), "pw", []string{fmt.Sprintf("customer%d@example.org", i)}, msg)
		// Up to the 10th user the campaign is ordinary mail; from the
		// 11th on, its senders are locked (refused, or locked as they send).
		if err != nil && i <= 10 {
			t.Errorf("campaign message %d refused before the threshold: %v", i, err)
		}
	}
	lockedN := 0
	for i := 1; i <= 30; i++ {
		if locked(fmt.Sprintf("shop%02d", i)) {
			lockedN++
		}
	}
	if lockedN != 30 {
		t.Errorf("%d of the campaign's 30 identities locked, want all", lockedN)
	}
	list := a.campaigns.List(campaign.Filter{Limit: 100, MinMessages: 2})
	if len(list) != 1 || list[0].Identities != 30 || list[0].Users != 30 {
		t.Fatalf("campaigns: %+v, want one with 30 identities of 30 users", list)
	}
	l, _ := a.ids.CheckIdentity("out.example.net", "shop01")
	if l.Evidence == nil || l.Evidence.Counter != "campaign_users" || !strings.Contains(l.Reason, list[0].ID) {
		t.Errorf("shop01's lock: reason %q evidence %+v, want the campaign signal naming %s", l.Reason, l.Evidence, list[0].ID)
	}

	// Ordinary mail: 30 different messages from the corpus of ham.
	files, _ := filepath.Glob("../testdata/modern/ham/*.eml")
	more, _ := filepath.Glob("../testdata/ham/*.eml")
	files = append(more, files...)
	if len(files) < 30 {
		t.Fatalf("only %d ham files", len(files))
	}
	for i := 31; i <= 60; i++ {
		raw, err := os.ReadFile(files[(i-31)*len(files)/30])
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("X-AuthUser: person%02d\r\n", i) + strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n", "\r\n")
		// A sending MTA's envelope sender is the message's author.
		from := "person@out.example.net"
		if m, err := mail.ReadMessage(strings.NewReader(msg)); err == nil {
			if a, err := mail.ParseAddress(m.Header.Get("From")); err == nil {
				from = a.Address
			}
		}
		if _, err := sendEnvelope(t, addr, fmt.Sprintf("u%02d", i), "pw", from, []string{fmt.Sprintf("friend%d@example.org", i)}, msg); err != nil {
			rec, _ := a.store.Get(idFromReply(err))
			var reasons []string
			if rec != nil {
				reasons = rec.Reasons
			}
			t.Errorf("ordinary message %d (%s) refused: %v %q", i, files[(i-31)*len(files)/30], err, reasons)
		}
		if locked(fmt.Sprintf("person%02d", i)) {
			t.Errorf("person%02d locked for ordinary mail", i)
		}
	}
}

// idFromReply returns the log id a reply names, "" when none.
func idFromReply(err error) string {
	r := replyOf(err)
	if r == nil {
		return ""
	}
	i := strings.LastIndex(r.Message, "(id ")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(r.Message[i+4:], ")")
}

// TestBaselineBurstAndNewsletter runs three simulated weeks on an
// injected clock: a newsletter sends 30 messages in one hour every Monday
// and nothing else; an ordinary identity sends one message an hour on
// working days, then 30 in one hour. The newsletter's weekly burst is its
// own habit and passes; the ordinary identity's 30x hour locks it by the
// baseline signal.
func TestBaselineBurstAndNewsletter(t *testing.T) {
	e := newEnvIdentity(t, `  baseline:
    warmup: 1d
    messages_floor: {suspect: 10, lock: 20}
    new_identity_messages: {suspect: 60, lock: 100}
`)
	// newEnv starts at Saturday 2026-11-28 10:00; begin on Monday 30th.
	e.clock.Advance(48 * time.Hour)
	start := e.clock.Now()
	send := func(ident string, n int) error {
		t.Helper()
		for i := range n {
			if err := e.send("shop@out.example.net", testMessage(ident, fmt.Sprintf("Issue %d", i), "The minutes of the committee are on the shared drive.")); err != nil {
				return err
			}
			e.clock.Advance(time.Minute)
		}
		return nil
	}
	at := func(day int, hour int) {
		t.Helper()
		target := start.Add(time.Duration(day)*24*time.Hour - 10*time.Hour + time.Duration(hour)*time.Hour)
		if d := target.Sub(e.clock.Now()); d > 0 {
			e.clock.Advance(d)
		}
	}
	for week := range 3 {
		for day := range 5 {
			d := week*7 + day
			if day == 0 {
				at(d, 8)
				if err := send("letter", 30); err != nil {
					t.Fatalf("week %d: the newsletter's issue refused: %v", week+1, err)
				}
			}
			for hour := 9; hour < 17; hour++ {
				if week == 2 && day == 2 && hour == 11 {
					continue // the burst below
				}
				at(d, hour)
				if err := send("clerk", 1); err != nil {
					t.Fatalf("week %d day %d %d:00: the clerk's message refused: %v", week+1, day+1, hour, err)
				}
			}
		}
	}
	if e.locked("letter") {
		l, _ := e.lockOf("letter")
		t.Fatalf("the weekly newsletter was locked: %s", l.Reason)
	}
	// Week 3, Wednesday 11:00: the clerk's identity sends 30 in an hour.
	at(16, 11)
	err := send("clerk", 40)
	if r := replyOf(err); r == nil || !strings.Contains(r.Message, "OG-LOCKED") {
		t.Fatalf("a 30x hour: %v, want the identity locked", err)
	}
	l, _ := e.lockOf("clerk")
	if l.Evidence == nil || l.Evidence.Counter != "baseline:volume_burst" || l.Evidence.Count < 20 {
		t.Errorf("clerk's lock %q, evidence %+v, want the baseline's volume burst", l.Reason, l.Evidence)
	}
}

// newEnvIdentity is newEnv with identityExtra added to the identity
// section.
func newEnvIdentity(t *testing.T, identityExtra string) *env {
	t.Helper()
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, strings.Replace(pipelineExtra, "identity:\n", "identity:\n"+identityExtra, 1))
	b, _ := os.ReadFile(path)
	y := strings.Replace(string(b), "  - name: out.example.net\n", "  - name: out.example.net\n    identity_rules: [{header: X-AuthUser}, {envelope_sender: true}]\n    lock_identities_automatically: true\n", 1)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nh: nh, path: path, clock: &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}}
	e.start()
	return e
}

// TestDetectionSurvivesRestart: the campaigns and the identities'
// profiles are in the database after a stop and back after a start, on
// either backend (the postgres leg skips without a test server, see
// internal/pgdb/pgtest).
func TestDetectionSurvivesRestart(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { testDetectionSurvivesRestart(t, "") })
	t.Run("postgres", func(t *testing.T) {
		testDetectionSurvivesRestart(t, fleetExtra("mx-a", pgtest.NewDatabase(t)))
	})
}

func testDetectionSurvivesRestart(t *testing.T, extra string) {
	e := newEnv(t, "", extra)
	for i := 1; i <= 3; i++ {
		if err := e.send("shop@out.example.net", testMessage(fmt.Sprint("shop", i), "Your seasonal gift", campaignText(i))); err != nil {
			t.Fatal(err)
		}
	}
	before := e.app.campaigns.List(campaign.Filter{MinMessages: 3})
	if len(before) != 1 {
		t.Fatalf("campaigns before the restart: %+v", before)
	}
	e.restart()
	after := e.app.campaigns.List(campaign.Filter{MinMessages: 3})
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].Identities != 3 {
		t.Errorf("campaigns after the restart: %+v, want %s with 3 identities", after, before[0].ID)
	}
	p, ok := e.app.detect.fetch("out.example.net\x00shop2")
	if !ok || p.Stats().Messages == 0 {
		t.Errorf("shop2's profile after the restart: found %v, %+v", ok, p.Stats())
	}
	if e.app.pg != nil {
		// On postgres the state is in the shared tables.
		var profiles, snapshots int
		if err := e.app.pg.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM detection_profiles WHERE domain = 'out.example.net'),
			(SELECT count(*) FROM detection_campaigns WHERE node = 'mx-a')`).Scan(&profiles, &snapshots); err != nil {
			t.Fatal(err)
		}
		if profiles != 3 || snapshots != 1 {
			t.Errorf("postgres holds %d profiles and %d campaign snapshots, want 3 and 1", profiles, snapshots)
		}
	}
}

// TestBareCRInHeaderRefused: a bare CR in the header would let a script
// put an identity header past outguard (the next hop reads the CR as a
// line break, outguard's identity rules did not): refused with 550 5.6.0,
// nothing relayed.
func TestBareCRInHeaderRefused(t *testing.T) {
	e := newEnv(t, "", "")
	msg := "X-AuthUser: real-user\r\nSubject: hi\rX-AuthUser: innocent-neighbour\r\nFrom: shop@out.example.net\r\n\r\nbody\r\n"
	err := e.send("shop@out.example.net", msg)
	if r := replyOf(err); r == nil || r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 6, 0}) {
		t.Fatalf("a bare CR in the header: %v, want 550 5.6.0", err)
	}
	if n := len(e.mail()); n != 0 {
		t.Errorf("%d messages relayed, want none", n)
	}
}
