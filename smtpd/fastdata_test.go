package smtpd

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The session reads plain-text DATA transfers itself (fastdata.go); these
// tests hold the conversation to what go-smtp's own reader gives, reply
// for reply and message for message, on the inputs where the two could
// part: end-of-data look-alikes, octets sent before the 354 or pipelined
// after the end of data, DATA lines inside messages, oversize messages,
// and clients that leave in the middle.

// serverPair is two servers that must hold the same conversations: a
// (the one under test) and b (its reference), named in failures.
type serverPair struct {
	a, b         *harness
	aName, bName string
	// authFirst sends each script only after AUTH's reply (see
	// converseAfter).
	authFirst bool
}

// same runs script on both servers and fails on any difference in the
// replies or in what their next hops received.
func (p serverPair) same(t testing.TB, script []byte) conversation {
	t.Helper()
	a := converseAfter(t, p.a, script, p.authFirst)
	b := converseAfter(t, p.b, script, p.authFirst)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("script %q:\n%s: %v\n%s: %v", script, p.aName, a, p.bName, b)
	}
	return a
}

// newReaderPair is one server of each DATA reader, with the same limits:
// the session's (a) and go-smtp's (b).
func newReaderPair(t testing.TB) serverPair {
	limits := func(o *Options, _ *ListenerOptions) {
		o.MaxMessageBytes = 2048
		o.IdleTimeout = 5 * time.Second
	}
	return serverPair{
		a: newHarness(t, limits), aName: "session's reader",
		b: newHarness(t, limits, func(o *Options, _ *ListenerOptions) { o.goSMTPDataReader = true }), bName: "go-smtp's reader",
	}
}

// conversation is what a client and the next hop saw of one connection.
type conversation struct {
	Replies  []string // each reply's code and enhanced code
	Messages []string // envelope and content of each message relayed
}

var replyStatus = regexp.MustCompile(`^\d{3}(?: \d\.\d{1,3}\.\d{1,3})?`)

// converseAfter authenticates, sends script as it is (then closes its
// side), and returns every reply and every message the next hop
// received. With authFirst, script goes only after the reply to AUTH (it
// then starts a read of its own); otherwise in the same write as EHLO
// and AUTH.
func converseAfter(t testing.TB, h *harness, script []byte, authFirst bool) conversation {
	t.Helper()
	before := len(h.nh.Received())
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	auth := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")) + "\r\n"
	authed := make(chan struct{})
	go func() {
		if authFirst {
			c.Write([]byte("EHLO c.test\r\n" + auth))
			<-authed
			c.Write(script)
		} else {
			c.Write(append([]byte("EHLO c.test\r\n"+auth), script...))
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	var conv conversation
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		conv.Replies = append(conv.Replies, replyStatus.FindString(line))
		if len(conv.Replies) == 3 {
			// Greeting, EHLO, AUTH.
			close(authed)
		}
	}
	if len(conv.Replies) < 3 {
		close(authed)
	}
	// The session has ended: what it relayed is at the next hop.
	for _, d := range h.nh.Received()[before:] {
		data := d.Data
		// Leave out outguard's Received header (its id and time differ).
		if i := bytes.Index(data, []byte("\r\n")); bytes.HasPrefix(data, []byte("Received:")) && i >= 0 {
			data = data[i+2:]
			for len(data) > 0 && (data[0] == ' ' || data[0] == '\t') {
				if j := bytes.Index(data, []byte("\r\n")); j >= 0 {
					data = data[j+2:]
				} else {
					data = nil
				}
			}
		}
		conv.Messages = append(conv.Messages, fmt.Sprintf("%s %v %q", d.From, d.Rcpts, data))
	}
	return conv
}

const envelope = "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n"

// scriptCase is a client's script for serverPair.sameAll and the number of
// messages the next hop must get from it (negative: any number).
type scriptCase struct {
	name   string
	script string
	msgs   int
}

// commonScripts are the scripts every differential test of a transfer
// path runs: a message, an empty one, dot-stuffing, and the smuggling
// attempt with a bare LF dot bare LF.
var commonScripts = []scriptCase{
	{"one message", envelope + "DATA\r\nSubject: a\r\n\r\nhello\r\n.\r\nQUIT\r\n", 1},
	{"empty message", envelope + "DATA\r\n.\r\nQUIT\r\n", 1},
	{"dot-stuffing", envelope + "DATA\r\nSubject: a\r\n\r\n..one\r\n...\r\n.x\r\n.\r\nQUIT\r\n", 1},
	{"bare LF dot bare LF", envelope + "DATA\r\nSubject: a\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.org>\nDATA\nboo\r\n.\r\nQUIT\r\n", 1},
}

// sameAll runs each case as a subtest of same and checks its message count.
func (p serverPair) sameAll(t *testing.T, cases []scriptCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := p.same(t, []byte(tc.script))
			if tc.msgs >= 0 && len(conv.Messages) != tc.msgs {
				t.Fatalf("%d messages relayed, want %d: %v", len(conv.Messages), tc.msgs, conv)
			}
		})
	}
}

func TestFastDataSameConversation(t *testing.T) {
	p := newReaderPair(t)
	big := strings.Repeat("0123456789abcdef", 200) // past the 2048-octet limit
	cases := append(slices.Clone(commonScripts), []scriptCase{
		{"dot CR, CR CR LF", envelope + "DATA\r\nSubject: a\r\n\r\n.\rx\r\n\r\r\n.\r\nQUIT\r\n", -1},
		{"LF dot CRLF", envelope + "DATA\r\nSubject: a\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.com>\r\n.\r\nQUIT\r\n", 1},
		{"CRLF dot LF", envelope + "DATA\r\nSubject: a\r\n\r\nhello\r\n.\nMAIL FROM:<evil@example.com>\r\n.\r\nQUIT\r\n", 1},
		{"DATA lines in the message", envelope + "DATA\r\nSubject: a\r\n\r\nDATA\r\ndata\r\n.DATA\r\nDATAX\r\n.\r\nQUIT\r\n", 1},
		{"DATA twice", envelope + "DATA\r\nDATA\r\n.\r\nQUIT\r\n", 1},
		{"lower case and spaces", envelope + "data   \r\nSubject: a\r\n\r\nx\r\n.\r\nQUIT\r\n", 1},
		{"DATA with an argument", envelope + "DATA x\r\nDATA\r\nSubject: a\r\n\r\nx\r\n.\r\nQUIT\r\n", 1},
		{"DATA before RCPT", "MAIL FROM:<alice@example.com>\r\nDATA\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: a\r\n\r\nx\r\n.\r\nQUIT\r\n", 1},
		{"three transactions pipelined", envelope + "DATA\r\nSubject: 1\r\n\r\none\r\n.\r\n" + envelope + "RSET\r\n" + envelope + "DATA\r\nSubject: 3\r\n\r\nthree\r\n.\r\nQUIT\r\n", 2},
		{"oversize, then another", envelope + "DATA\r\nSubject: big\r\n\r\n" + big + "\r\n.\r\n" + envelope + "DATA\r\nSubject: small\r\n\r\nx\r\n.\r\nQUIT\r\n", 1},
		{"client leaves in the message", envelope + "DATA\r\nSubject: a\r\n\r\nunfinished", 0},
		{"client leaves after the dot's CR", envelope + "DATA\r\nSubject: a\r\n\r\nx\r\n.\r", 0},
	}...)
	p.sameAll(t, cases)
	if n := p.a.srv.fastTransfers.Load(); n < int64(len(cases)) {
		t.Errorf("the session read %d transfers itself, want at least %d", n, len(cases))
	}
	if n := p.b.srv.fastTransfers.Load(); n != 0 {
		t.Errorf("with go-smtp's reader chosen, the session read %d transfers itself", n)
	}
}

// FuzzFastData sends a fuzzed message (and whatever the fuzzer puts after
// its end) to both servers.
func FuzzFastData(f *testing.F) {
	f.Add([]byte("Subject: a\r\n\r\nhello\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("hello\n.\nMAIL FROM:<e@example.com>\r\n.\r\n"))
	f.Add([]byte(".\r\nDATA\r\nDATA\r\n" + envelope + "DATA\r\nx\r\n.\r\n"))
	f.Add([]byte(".\rx\r\r\n..\r\n.\r"))
	f.Add([]byte(strings.Repeat("long line ", 300) + "\r\n.\r\n"))
	p := newReaderPair(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		p.same(t, append([]byte(envelope+"DATA\r\n"), body...))
	})
}

// TestFastDataStalledClient: a client that stops in the middle of its
// message is cut off by the idle timeout once, with either reader: the
// drains after the timeout do not wait again (each would wait
// idle_timeout_before_mail, a minute here, past the client's 20 s), and
// nothing is relayed.
func TestFastDataStalledClient(t *testing.T) {
	for _, goSMTP := range []bool{false, true} {
		h := newHarness(t, func(o *Options, _ *ListenerOptions) {
			o.IdleTimeout, o.IdleTimeoutBeforeMail = 300*time.Millisecond, time.Minute
			o.goSMTPDataReader = goSMTP
		})
		r := h.openTx(t)
		r.expect("DATA", 354)
		r.w.WriteString("Subject: a\r\n\r\nhalf a message")
		r.w.Flush()
		// The server gives up on its own: the connection ends with its
		// 421 before the client's deadline.
		var rest []string
		for {
			line, err := r.r.ReadString('\n')
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("go-smtp's reader %v: the connection did not end: %v (read %q)", goSMTP, err, rest)
				}
				break
			}
			rest = append(rest, line)
		}
		if len(rest) == 0 || !strings.HasPrefix(rest[len(rest)-1], "421 4.4.2") {
			t.Errorf("go-smtp's reader %v: last replies %q, want 421 4.4.2 last", goSMTP, rest)
		}
		for _, l := range rest {
			if strings.HasPrefix(l, "250") {
				t.Errorf("go-smtp's reader %v: a stalled message got %q", goSMTP, l)
			}
		}
		if n := len(h.nh.Received()); n != 0 {
			t.Errorf("go-smtp's reader %v: %d messages relayed", goSMTP, n)
		}
		if want := int64(1); !goSMTP && h.srv.fastTransfers.Load() != want {
			t.Errorf("the session read %d transfers itself, want %d", h.srv.fastTransfers.Load(), want)
		}
	}
}
