package app

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/identity"
)

// lockedUserReply locks the trial user and returns the reply to its MAIL.
func lockedUserReply(t *testing.T, e *env) *smtp.SMTPError {
	t.Helper()
	if _, err := e.app.ids.Lock(context.Background(), identity.LockRequest{Target: identity.UserTarget("out.example.net", "trial"), Reason: "compromised", Actor: "test", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c, err := smtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		t.Fatal(err)
	}
	r := replyOf(c.Mail("x@out.example.net", nil))
	if r == nil {
		t.Fatal("MAIL of a locked user accepted")
	}
	return r
}

// TestRefusalsNameNoAccount checks over SMTP that the built-in refusals
// of a locked user and a locked identity keep their codes and tag but name
// neither the outgoing user nor the identity.
func TestRefusalsNameNoAccount(t *testing.T) {
	e := newEnv(t, "", "")
	if _, err := e.app.ids.Lock(context.Background(), identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "webshop42"), Reason: "kit", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	r := replyOf(e.send("x@out.example.net", testMessage("webshop42", "locked identity", "hi")))
	if r == nil || r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) || !strings.HasPrefix(r.Message, "[OG-LOCKED] ") || !strings.Contains(r.Message, "(id ") {
		t.Fatalf("locked identity: %+v, want 550 5.7.1 [OG-LOCKED] ... (id ...)", r)
	}
	if strings.Contains(r.Message, "webshop42") || strings.Contains(r.Message, "trial") {
		t.Errorf("locked identity's refusal %q names the account", r.Message)
	}
	r = lockedUserReply(t, e)
	if r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) || !strings.HasPrefix(r.Message, "[OG-LOCKED] ") {
		t.Errorf("locked user: %+v, want 550 5.7.1 [OG-LOCKED]", r)
	}
	if strings.Contains(r.Message, "trial") {
		t.Errorf("locked user's refusal %q names the account", r.Message)
	}
}

// TestReplyTemplatesPerDomain checks over SMTP that the global templates
// and the domain's (key by key over them) set the refusal texts, with
// their placeholders filled, while the codes and tags stay.
func TestReplyTemplatesPerDomain(t *testing.T) {
	domain := `    replies:
      support_url: "https://help.out.example.net/sending"
      locked_identity: "sending is suspended (ref {txid}), see {support_url}"
`
	global := `replies:
  support_url: "https://help.provider.example/"
  blocked: "refused as {class} by {hostname} for {domain}, see {support_url}"
  locked_user: "this account may not send now, see {support_url}"
`
	e := newEnv(t, domain, global)
	ctx := context.Background()

	r := replyOf(e.send("x@out.example.net", testMessage("id1", "spam", gtube)))
	want := regexp.MustCompile(`^\[OG-SPAM\] refused as spam by \S+ for out\.example\.net, see https://help\.out\.example\.net/sending \(id [0-9A-Z]{26}\)$`)
	if r == nil || r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) || !want.MatchString(r.Message) {
		t.Errorf("blocked: %+v, want 550 5.7.1 matching %s", r, want)
	}

	if _, err := e.app.ids.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "id2"), Reason: "kit", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	r = replyOf(e.send("x@out.example.net", testMessage("id2", "locked", "hi")))
	want = regexp.MustCompile(`^\[OG-LOCKED\] sending is suspended \(ref ([0-9A-Z]{26})\), see https://help\.out\.example\.net/sending$`)
	m := want.FindStringSubmatch(r.Message)
	if r.Code != 550 || r.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) || m == nil {
		t.Fatalf("locked identity: %+v, want 550 5.7.1 matching %s (the id placed once)", r, want)
	}
	// The id in the template is the transaction's: the log finds it.
	e.flush()
	if rec, err := e.app.store.Get(m[1]); err != nil || rec.Identity != "id2" {
		t.Errorf("log record of %s: %+v, %v", m[1], rec, err)
	}

	r = lockedUserReply(t, e)
	if r.Code != 550 || r.Message != "[OG-LOCKED] this account may not send now, see https://help.out.example.net/sending" {
		t.Errorf("locked user: %d %q", r.Code, r.Message)
	}
}
