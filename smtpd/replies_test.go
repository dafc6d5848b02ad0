package smtpd

import (
	"bufio"
	"encoding/base64"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAcceptedRepliesAreDocumented speaks a whole session line by line and
// checks that every reply a client sees to an accepted command is the one
// docs/replies.md shows, so that page stays true about go-smtp's fixed
// texts and outguard's own final reply.
func TestAcceptedRepliesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/replies.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([2-5][0-9][0-9][ -][^`]*)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}

	h := newHarness(t)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := &rawConn{t: t, c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}

	// Each reply with the variable parts put back as the page writes them.
	generic := strings.NewReplacer(
		"outguard.test", "<hostname>",
		"c.test", "<client's name>",
		"<alice@example.com>", "<address>",
		"<bob@example.org>", "<address>",
	)
	check := func(what, reply string) {
		t.Helper()
		first, _, _ := strings.Cut(reply, "\n")
		if g := generic.Replace(first); !documented[g] {
			t.Errorf("%s: reply %q (as %q) is not in docs/replies.md", what, first, g)
		}
	}
	check("greeting", r.readReply())
	check("HELO", r.expect("HELO c.test", 250))
	check("EHLO", r.expect("EHLO c.test", 250))
	check("AUTH", r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235))
	check("NOOP", r.expect("NOOP", 250))
	check("VRFY", r.expect("VRFY bob", 252))
	check("MAIL", r.expect("MAIL FROM:<alice@example.com>", 250))
	check("RCPT", r.expect("RCPT TO:<bob@example.org>", 250))
	check("RSET", r.expect("RSET", 250))
	r.expect("MAIL FROM:<alice@example.com>", 250)
	r.expect("RCPT TO:<bob@example.org>", 250)
	check("DATA", r.expect("DATA", 354))
	final := r.expect(plainMsg+".", 250)
	if !regexp.MustCompile(`^250 2\.0\.0 Ok: queued as NH1 \(id [0-9A-Z]{26}\)$`).MatchString(final) {
		t.Errorf("final reply %q, want 250 2.0.0, the next hop's text and the log id", final)
	}
	if !documented["250 2.0.0 <next hop's text> (id <log id>)"] {
		t.Error("docs/replies.md does not show the final reply's form")
	}
	check("QUIT", r.expect("QUIT", 221))
}
