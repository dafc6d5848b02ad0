package app

import (
	"context"
	"encoding/base64"
	"net/textproto"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/identity"
)

// goSMTPTexts are go-smtp's own reply texts (v0.25.1, v0.26.0): its
// success texts, its final reply when a session's Data returns nil, and
// what it makes of a plain error from Mail, Rcpt or Data.
var goSMTPTexts = []string{"Roger, accepting", "I'll make sure", "successfully done nothing", "Go ahead",
	"OK: queued", "Error: transaction failed", " 4.0.0 ", " 5.0.0 "}

// replyForm is a complete reply: code, enhanced status code, text.
var replyForm = regexp.MustCompile(`^[245][0-9][0-9] [245]\.[0-9]{1,3}\.[0-9]{1,3} \S`)

// TestNoGoSMTPTextsInOutguardReplies talks SMTP to a running outguard and
// reads every refusal at MAIL and RCPT and every reply to a message
// (relayed, quarantined, refused for a locked identity, refused by the
// next hop at RCPT): each is outguard's, with an enhanced status code, and
// none carries one of go-smtp's own texts (docs/replies.md).
func TestNoGoSMTPTextsInOutguardReplies(t *testing.T) {
	e := newEnv(t, "", "")
	e.nh.RefuseRcpt["nobody@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "nobody here"}
	c, err := textproto.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := func(line string) (int, string) {
		t.Helper()
		if _, err := c.Cmd("%s", line); err != nil {
			t.Fatal(err)
		}
		code, msg, err := c.ReadResponse(0)
		if err != nil {
			if _, ok := err.(*textproto.Error); !ok {
				t.Fatalf("%q: %v", line, err)
			}
		}
		return code, msg
	}
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	cmd("EHLO c.test")
	if code, msg := cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00trial\x00trial-password"))); code != 235 {
		t.Fatalf("AUTH: %d %s", code, msg)
	}
	// check reads the reply to line and holds it to outguard's form.
	check := func(what, line string, wantCode int, wantText string) {
		t.Helper()
		code, msg := cmd(line)
		full := strings.ReplaceAll(msg, "\n", " / ")
		reply := textprotoReply(code, msg)
		if code != wantCode || !strings.Contains(msg, wantText) {
			t.Errorf("%s: got %q, want %d with %q", what, full, wantCode, wantText)
		}
		if !replyForm.MatchString(reply) {
			t.Errorf("%s: %q is not a complete reply with an enhanced status code", what, reply)
		}
		for _, q := range goSMTPTexts {
			if strings.Contains(reply, q) {
				t.Errorf("%s: %q carries go-smtp's text %q", what, reply, q)
			}
		}
	}
	data := func(what, msg string, wantCode int, wantText string) {
		t.Helper()
		if code, m := cmd("DATA"); code != 354 {
			t.Fatalf("%s: DATA got %d %s", what, code, m)
		}
		check(what, strings.TrimSuffix(msg, "\r\n")+"\r\n.", wantCode, wantText)
	}

	// RCPT refusals: the next hop's, passed on; a bad address.
	cmd("MAIL FROM:<shop@out.example.net>")
	check("RCPT refused by the next hop", "RCPT TO:<nobody@example.org>", 550, "nobody here")
	check("RCPT with invalid UTF-8", "RCPT TO:<\xff@example.org>", 501, "5.1.3")
	cmd("RCPT TO:<rcpt@example.org>")
	data("relayed message", testMessage("web7", "minutes", "Minutes of the meeting."), 250, "(id ")
	cmd("MAIL FROM:<shop@out.example.net>")
	cmd("RCPT TO:<rcpt@example.org>")
	data("quarantined message", testMessage("web7", "offer", gtube), 550, "[OG-SPAM]")

	ctx := context.Background()
	if _, err := e.app.ids.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "web8"), Reason: "test", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	cmd("MAIL FROM:<shop@out.example.net>")
	cmd("RCPT TO:<rcpt@example.org>")
	data("locked identity", testMessage("web8", "hello", "Hello."), 550, "[OG-LOCKED]")

	// MAIL refusals: a bad address; a locked outgoing user.
	check("MAIL with invalid UTF-8", "MAIL FROM:<\xff@out.example.net>", 501, "5.1.7")
	if _, err := e.app.ids.Lock(ctx, identity.LockRequest{Target: identity.UserTarget("out.example.net", "trial"), Reason: "test", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	check("locked user", "MAIL FROM:<shop@out.example.net>", 550, "[OG-LOCKED]")
}

// textprotoReply puts a reply read by textproto back in its wire form
// (the first line).
func textprotoReply(code int, msg string) string {
	first, _, _ := strings.Cut(msg, "\n")
	return strings.TrimSpace(strings.Join([]string{itoa3(code), first}, " "))
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}
