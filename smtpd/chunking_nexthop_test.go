package smtpd

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// newNextHopPair is two servers relaying to next hops that offer
// CHUNKING, one sending messages with BDAT (a), one with DATA
// (next_hop.chunking off, b). Both next hops refuse messages that
// contain "REFUSE-ME".
func newNextHopPair(t testing.TB) serverPair {
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
	return serverPair{a: mk(false), aName: "BDAT to the next hop", b: mk(true), bName: "DATA to the next hop"}
}

func TestNextHopChunkingSameConversation(t *testing.T) {
	p := newNextHopPair(t)
	big := strings.Repeat("a line of text in a large message.\r\n.dotted\r\n", 30000) // about 1.4 MB: 43 chunks
	cases := append(slices.Clone(commonScripts), []scriptCase{
		{"bare CR", envelope + "DATA\r\nSubject: a\r\n\r\nx\ry\r.\rz\r\n.\r\nQUIT\r\n", 1},
		{"refused by the next hop", envelope + "DATA\r\nSubject: a\r\n\r\nREFUSE-ME\r\n.\r\n" + envelope + "DATA\r\nSubject: b\r\n\r\nfine\r\n.\r\nQUIT\r\n", 1},
		{"large, then small", envelope + "DATA\r\nSubject: big\r\n\r\n" + big + ".\r\n" + envelope + "DATA\r\nSubject: small\r\n\r\nx\r\n.\r\nQUIT\r\n", 2},
		{"large refused, then small", envelope + "DATA\r\nSubject: big\r\n\r\n" + big + "REFUSE-ME\r\n.\r\n" + envelope + "DATA\r\nSubject: small\r\n\r\nx\r\n.\r\nQUIT\r\n", 1},
		{"client BDAT", envelope + "BDAT 19 LAST\r\nSubject: a\r\n\r\nx\ry\r\nQUIT\r\n", 1},
	}...)
	p.sameAll(t, cases)
	p.a.nh.Lock()
	defer p.a.nh.Unlock()
	p.b.nh.Lock()
	defer p.b.nh.Unlock()
	if p.a.nh.Conns > 3 || p.b.nh.Conns > 3 {
		t.Errorf("next hop connections: %d over BDAT, %d over DATA; the pool should reuse them", p.a.nh.Conns, p.b.nh.Conns)
	}
	if p.a.nh.BDATs < len(cases)+40 || p.b.nh.BDATs != 0 {
		t.Errorf("BDAT commands: %d to the BDAT next hop (want at least %d), %d to the DATA one (want 0)", p.a.nh.BDATs, len(cases)+40, p.b.nh.BDATs)
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
