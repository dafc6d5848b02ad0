package smtpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/testutil"
)

// longLineMsg is a message whose body has one line of n octets, as badly
// written mailers produce for HTML.
func longLineMsg(n int) string {
	return "Subject: newsletter\r\nContent-Type: text/html\r\n\r\n<p>start</p>\r\n" + strings.Repeat("<b>x</b>", n/8) + strings.Repeat("y", n%8) + "\r\n<p>end</p>\r\n"
}

func TestLongDataLinesRelayedUnchanged(t *testing.T) {
	h := newHarness(t)
	for _, n := range []int{2001, 10_000, 300_000} {
		msg := longLineMsg(n)
		t.Run(fmt.Sprintf("DATA %d", n), func(t *testing.T) {
			r := h.openTx(t)
			r.expect("DATA", 354)
			r.w.WriteString(msg)
			r.expect(".", 250)
			r.expect("NOOP", 250)
			checkLastBody(t, h.nh, msg)
		})
		t.Run(fmt.Sprintf("BDAT %d", n), func(t *testing.T) {
			r := h.openTx(t)
			// The chunk follows its command in the same write, so the
			// long line arrives together with the command line.
			r.sendExpect(bdat(msg, true), 250)
			r.expect("NOOP", 250)
			checkLastBody(t, h.nh, msg)
		})
	}
}

func checkLastBody(t *testing.T, nh *testutil.NextHop, want string) {
	t.Helper()
	d := nh.Received()
	if len(d) == 0 {
		t.Fatal("next hop got nothing")
	}
	body, err := testutil.StripReceived(d[len(d)-1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != want {
		t.Errorf("next hop got %d octets, want the %d sent unchanged", len(body), len(want))
	}
}

// expectTooLong reads the replies to a command line over the limit: go-smtp
// may first answer the part of it that it had read (a NOOP with the start
// of its argument: 250; the session's own commands: 500), then says 500
// 5.4.0 and closes the connection.
func expectTooLong(t *testing.T, r *rawConn) {
	t.Helper()
	for i := 0; ; i++ {
		got := r.readReply()
		if strings.HasPrefix(got, "500 5.4.0") {
			break
		}
		if i == 1 {
			t.Fatalf("got %q, want 500 5.4.0", got)
		}
	}
	// EOF, or a reset when the client's unread input was discarded.
	if l, err := r.r.ReadString('\n'); err == nil {
		t.Errorf("connection still open after a command line over the limit (read %q)", l)
	}
}

func TestLongCommandLineRefused(t *testing.T) {
	h := newHarness(t)
	t.Run("one long line", func(t *testing.T) {
		r := h.authed(t)
		r.w.WriteString("NOOP " + strings.Repeat("x", 3000) + "\r\n")
		r.w.Flush()
		expectTooLong(t, r)
	})
	t.Run("endless line", func(t *testing.T) {
		r := h.authed(t)
		go func() {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for i := 0; i < 160; i++ { // 10 MiB unless the server hangs up
				if _, err := r.c.Write(chunk); err != nil {
					return
				}
			}
		}()
		expectTooLong(t, r)
	})
	t.Run("long RCPT inside a transaction", func(t *testing.T) {
		r := h.openTx(t)
		r.w.WriteString("RCPT TO:<" + strings.Repeat("a", 3000) + "@example.org>\r\n")
		r.w.Flush()
		expectTooLong(t, r)
	})
	t.Run("line at the limit", func(t *testing.T) {
		r := h.authed(t)
		r.expect("NOOP "+strings.Repeat("x", 2000-len("NOOP ")-2), 250)
		r.expect("NOOP", 250)
	})
	if n := len(h.nh.Received()); n != 0 {
		t.Errorf("next hop got %d messages", n)
	}
	for _, c := range h.nh.ReceivedCommands() {
		if strings.Contains(c, "aaaa") {
			t.Errorf("next hop received %q", c)
		}
	}
}

func TestDataLineLimitConfigured(t *testing.T) {
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.MaxDataLineLength = 1000 })
	cases := []struct {
		name, msg, want string
	}{
		{"line over the limit", longLineMsg(1001), "552 5.3.4"},
		{"line at the limit", longLineMsg(1000), "250"},
		{"bare CR counts as a line break", "Subject: x\r\n\r\n" + strings.Repeat(strings.Repeat("z", 900)+"\r", 3) + "end\r\n", "250"},
	}
	for _, tc := range cases {
		t.Run("DATA "+tc.name, func(t *testing.T) {
			r := h.openTx(t)
			r.expect("DATA", 354)
			r.w.WriteString(tc.msg)
			if got := r.cmd("."); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %s", got, tc.want)
			}
			// The session goes on.
			r.expect("RSET", 250)
			r.expect("NOOP", 250)
		})
		t.Run("BDAT "+tc.name, func(t *testing.T) {
			r := h.openTx(t)
			if got := r.send(bdat(tc.msg, true)); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %s", got, tc.want)
			}
			r.expect("RSET", 250)
			r.expect("NOOP", 250)
		})
	}
	if n := len(h.nh.Received()); n != 4 {
		t.Errorf("next hop got %d messages, want the 4 within the limit", n)
	}
	res := h.policy.Results()
	rejected := 0
	for _, r := range res {
		if r.Outcome == OutcomeRejected && r.Reply.Code == 552 {
			rejected++
		}
	}
	if rejected != 2 {
		t.Errorf("%d transactions recorded as rejected with 552, want 2", rejected)
	}
}

func TestLongLinesUnderTLS(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		lo.TLSConfig, lo.Implicit, lo.AllowInsecureAuth = testTLSConfig(t), true, false
	})
	dial := func(t *testing.T) *rawConn {
		t.Helper()
		c, err := tls.Dial("tcp", h.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := &rawConn{t: t, c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
		if g := r.readReply(); !strings.HasPrefix(g, "220") {
			t.Fatalf("greeting %q", g)
		}
		r.expect("EHLO c.test", 250)
		r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
		r.expect("MAIL FROM:<alice@example.com>", 250)
		r.expect("RCPT TO:<bob@example.org>", 250)
		return r
	}
	msg := longLineMsg(100_000)
	t.Run("DATA", func(t *testing.T) {
		r := dial(t)
		r.expect("DATA", 354)
		r.w.WriteString(msg)
		r.expect(".", 250)
		checkLastBody(t, h.nh, msg)
	})
	t.Run("BDAT", func(t *testing.T) {
		r := dial(t)
		r.sendExpect(bdat(msg, true), 250)
		checkLastBody(t, h.nh, msg)
	})
	t.Run("command line", func(t *testing.T) {
		r := dial(t)
		r.w.WriteString("NOOP " + strings.Repeat("x", 40_000) + "\r\n")
		r.w.Flush()
		expectTooLong(t, r)
	})
}
