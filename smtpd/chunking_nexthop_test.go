package smtpd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// nextHopPair is two servers relaying to next hops that offer CHUNKING,
// one sending messages with BDAT, one with DATA (next_hop.chunking off).
// Both next hops refuse messages that contain "REFUSE-ME".
type nextHopPair struct{ bdat, data *harness }

func newNextHopPair(t testing.TB) nextHopPair {
	mk := func(noChunking bool) *harness {
		h := newHarness(t, func(o *Options, _ *ListenerOptions) {
			o.MaxMessageBytes = 4 << 20
		})
		h.hop.conn.NoChunking = noChunking
		h.nh.DataRule = func(b []byte) *smtp.SMTPError {
			if strings.Contains(string(b), "REFUSE-ME") {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Content refused"}
			}
			return nil
		}
		return h
	}
	return nextHopPair{bdat: mk(false), data: mk(true)}
}

// same runs script on both and fails on any difference in the replies
// or in what the next hops received.
func (p nextHopPair) same(t testing.TB, script []byte) conversation {
	t.Helper()
	b := converse(t, p.bdat, script)
	d := converse(t, p.data, script)
	if fmt.Sprint(b) != fmt.Sprint(d) {
		t.Fatalf("script %q:\nBDAT to the next hop: %v\nDATA to the next hop: %v", script, b, d)
	}
	return b
}

func TestNextHopChunkingSameConversation(t *testing.T) {
	p := newNextHopPair(t)
	big := strings.Repeat("a line of text in a large message.\r\n.dotted\r\n", 30000) // about 1.4 MB: 43 chunks
	cases := []struct {
		name   string
		script string
		msgs   int
	}{
		{"one message", envelope + "DATA\r\nSubject: a\r\n\r\nhello\r\n.\r\nQUIT\r\n", 1},
		{"empty message", envelope + "DATA\r\n.\r\nQUIT\r\n", 1},
		{"dot-stuffing", envelope + "DATA\r\nSubject: a\r\n\r\n..one\r\n...\r\n.x\r\n.\r\nQUIT\r\n", 1},
		{"bare LF dot bare LF", envelope + "DATA\r\nSubject: a\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.org>\nDATA\nboo\r\n.\r\nQUIT\r\n", 1},
		{"bare CR", envelope + "DATA\r\nSubject: a\r\n\r\nx\ry\r.\rz\r\n.\r\nQUIT\r\n", 1},
		{"refused by the next hop", envelope + "DATA\r\nSubject: a\r\n\r\nREFUSE-ME\r\n.\r\n" + envelope + "DATA\r\nSubject: b\r\n\r\nfine\r\n.\r\nQUIT\r\n", 1},
		{"large, then small", envelope + "DATA\r\nSubject: big\r\n\r\n" + big + ".\r\n" + envelope + "DATA\r\nSubject: small\r\n\r\nx\r\n.\r\nQUIT\r\n", 2},
		{"large refused, then small", envelope + "DATA\r\nSubject: big\r\n\r\n" + big + "REFUSE-ME\r\n.\r\n" + envelope + "DATA\r\nSubject: small\r\n\r\nx\r\n.\r\nQUIT\r\n", 1},
		{"client BDAT", envelope + "BDAT 19 LAST\r\nSubject: a\r\n\r\nx\ry\r\nQUIT\r\n", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := p.same(t, []byte(tc.script))
			if len(conv.Messages) != tc.msgs {
				t.Fatalf("%d messages relayed, want %d: %v", len(conv.Messages), tc.msgs, conv)
			}
		})
	}
	p.bdat.nh.Lock()
	defer p.bdat.nh.Unlock()
	p.data.nh.Lock()
	defer p.data.nh.Unlock()
	if p.bdat.nh.Conns > 3 || p.data.nh.Conns > 3 {
		t.Errorf("next hop connections: %d over BDAT, %d over DATA; the pool should reuse them", p.bdat.nh.Conns, p.data.nh.Conns)
	}
	if p.bdat.nh.BDATs < len(cases)+40 || p.data.nh.BDATs != 0 {
		t.Errorf("BDAT commands: %d to the BDAT next hop (want at least %d), %d to the DATA one (want 0)", p.bdat.nh.BDATs, len(cases)+40, p.data.nh.BDATs)
	}
}

// FuzzNextHopChunking sends a fuzzed message to both servers.
func FuzzNextHopChunking(f *testing.F) {
	f.Add([]byte("Subject: a\r\n\r\nhello\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("hello\n.\nMAIL FROM:<e@example.com>\r\n.\r\n"))
	f.Add([]byte(".\rx\r\r\n..\r\n.\r"))
	f.Add([]byte("REFUSE-ME\r\n.\r\n" + envelope + "DATA\r\nx\r\n.\r\n"))
	p := newNextHopPair(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		p.same(t, append([]byte(envelope+"DATA\r\n"), body...))
	})
}
