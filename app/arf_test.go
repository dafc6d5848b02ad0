package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// waitFor polls cond (advancing the app's clock so the outbox retries)
// until it holds or d passes.
func (e *env) waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		e.clock.Advance(500 * time.Millisecond)
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func TestARFReportForEveryBlock(t *testing.T) {
	// The report relay answers 421 to MAIL until it "comes back".
	relay := testutil.StartNextHop(t)
	relay.Lock()
	relay.MailErr = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available"}
	relay.Unlock()
	e := newEnv(t, "", "  relay: {address: \""+relay.Addr+"\"}\n")
	// The report relay is down: blocked mail is still refused (the report
	// waits in the outbox).
	var originals []string
	for i := 0; i < 3; i++ {
		msg := testMessage("arf", fmt.Sprintf("report %d", i), gtube)
		err := e.send("a@out.example.net", msg)
		if r := replyOf(err); r == nil || r.Code != 550 {
			t.Fatalf("spam %d: %v", i, err)
		}
		originals = append(originals, msg)
	}
	if p, _ := e.app.outbox.Pending(); len(p) != 3 {
		n := len(p)
		t.Fatalf("outbox holds %d reports, want 3 while the relay is down", n)
	}
	relay.Lock()
	relay.MailErr = nil
	relay.Unlock()
	// Once the outbox holds nothing, nothing more can be sent: the count
	// is final.
	if !e.waitFor(20*time.Second, func() bool {
		p, _ := e.app.outbox.Pending()
		return len(relay.Received()) >= 3 && len(p) == 0
	}) {
		t.Fatalf("relay got %d reports, want 3", len(relay.Received()))
	}
	got := relay.Received()
	if len(got) != 3 {
		t.Fatalf("relay got %d reports, want exactly 3 (none twice)", len(got))
	}
	for _, d := range got {
		if d.From != "" || len(d.Rcpts) != 1 || d.Rcpts[0] != "abuse@provider.example" {
			t.Errorf("report envelope %q -> %v, want <> -> abuse@provider.example", d.From, d.Rcpts)
		}
		fb, err := arf.Parse(bytes.NewReader(d.Data), arf.ParseOptions{})
		if err != nil {
			t.Fatalf("report does not parse: %v", err)
		}
		if fb.FeedbackType != "abuse" || fb.Identity != "arf" {
			t.Errorf("report type %q identity %q, want abuse/arf", fb.FeedbackType, fb.Identity)
		}
		found := false
		for _, o := range originals {
			if bytes.Contains(d.Data, []byte(o)) {
				found = true
			}
		}
		if !found {
			t.Errorf("report does not hold an original byte for byte")
		}
		if !bytes.Contains(d.Data, []byte("Auto-Submitted: auto-generated")) {
			t.Errorf("report lacks Auto-Submitted")
		}
	}
	if p, _ := e.app.outbox.Pending(); len(p) != 0 {
		n := len(p)
		t.Errorf("outbox still holds %d", n)
	}
}

// complaint builds an ARF report about a relayed message.
func complaint(original []byte) string {
	return "From: fbl@mailbox.example\r\nTo: fbl@outguard.test\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain\r\n\r\nA user complained.\r\n" +
		"--zz\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: MailboxFBL/1\r\nVersion: 1\r\n\r\n" +
		"--zz\r\nContent-Type: message/rfc822\r\n\r\n" + string(original) + "\r\n--zz--\r\n"
}

func TestComplaintsAttributedAndLock(t *testing.T) {
	e := newEnv(t, "", "")
	b, _ := os.ReadFile(e.path)
	y := strings.Replace(string(b), "allow_insecure_auth: true}", "allow_insecure_auth: true, feedback: true}", 1)
	// Complaints count only from an allow-listed feedback loop.
	y = strings.Replace(y, "  retry: {initial: 1s, max: 2s}\n", "  retry: {initial: 1s, max: 2s}\n  reporters: [{name: mailbox, networks: [127.0.0.0/8]}]\n", 1)
	os.WriteFile(e.path, []byte(y), 0o600)
	e.restart()
	for i := 0; i < 3; i++ {
		if err := e.send("a@out.example.net", testMessage("annoying", fmt.Sprintf("news %d", i), "buy now")); err != nil {
			t.Fatal(err)
		}
	}
	relayed := e.mail()
	if len(relayed) != 3 {
		t.Fatalf("relayed %d", len(relayed))
	}
	e.flush() // complaints come minutes later; the log is written by then
	for i, d := range relayed {
		// The mailbox provider quotes the message as it received it,
		// with the trace header but, here, without the identity header
		// (so attribution must use the trace token).
		orig, _ := testutil.StripReceived(d.Data)
		orig = bytes.Replace(orig, []byte("X-AuthUser: annoying\r\n"), nil, 1)
		c, err := smtp.Dial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		// No AUTH: the feedback address is open on a feedback listener.
		if err := c.SendMail("fbl@mailbox.example", []string{"fbl@outguard.test"}, strings.NewReader(complaint(orig))); err != nil {
			t.Fatalf("complaint %d: %v", i, err)
		}
		c.Close()
	}
	lock, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", "annoying"))
	if err != nil || lock.Actor != "feedback" {
		t.Fatalf("after 3 complaints: lock %+v, %v; want a lock by feedback", lock, err)
	}
	e.flush()
	page, _ := e.app.store.Search(quarantine.Query{Identity: "annoying"})
	total := 0
	for _, r := range page.Records {
		total += r.Complaints
	}
	if total != 3 {
		t.Errorf("log records carry %d complaints, want 3", total)
	}
	// The feedback address takes no relay: other recipients need AUTH.
	c, _ := smtp.Dial(e.addr)
	defer c.Close()
	if err := c.Mail("x@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("victim@example.org", nil); replyOf(err) == nil || replyOf(err).Code != 530 {
		t.Errorf("relay through the feedback path: %v, want 530", err)
	}
	// Not a report: refused with a reason.
	c2, _ := smtp.Dial(e.addr)
	defer c2.Close()
	err = c2.SendMail("x@example.com", []string{"fbl@outguard.test"}, strings.NewReader("Subject: hi\r\n\r\njust mail\r\n"))
	if r := replyOf(err); r == nil || r.Code != 550 || !strings.Contains(r.Message, "not-arf") {
		t.Errorf("plain mail to the feedback address: %v, want 550 naming not-arf", err)
	}
	_ = sasl.Plain
}
