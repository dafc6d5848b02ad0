package smtpd

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// writeCounter counts the writes outguard makes to the next hop.
type writeCounter struct{ n atomic.Int64 }

func (d *writeCounter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, d: d}, nil
}

type countedConn struct {
	net.Conn
	d *writeCounter
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.d.n.Add(1)
	return c.Conn.Write(b)
}

// A client that pipelines MAIL and its RCPTs gets them to the next hop
// in one write (RFC 2920), with each reply still the next hop's own
// reply to that command; a recipient outguard refuses itself never
// receives the message, though it went to the next hop ahead. Over DATA
// and BDAT.
func TestPipelinedRecipientsGoAhead(t *testing.T) {
	for _, tc := range []struct {
		proto      string
		noChunking bool
		writes     int64
	}{
		// MAIL and RCPT in one write, then BDAT and the message in one.
		{"DATA", false, 2},
		{"BDAT", false, 2},
		// MAIL and RCPT in one write, DATA, the message.
		{"DATA", true, 3},
		{"BDAT", true, 3},
	} {
		proto := tc.proto
		t.Run(fmt.Sprintf("%s/next hop chunking %v", proto, !tc.noChunking), func(t *testing.T) {
			rec := &rcptRecorder{}
			h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.Policy = rec })
			// The harness's next hop, before its first connection.
			wc := &writeCounter{}
			h.hop.conn.Dialer = wc
			h.hop.conn.NoChunking = tc.noChunking
			h.nh.RefuseRcpt["carol@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}

			r := dialRaw(t, h.addr)
			r.expect("EHLO c.test", 250)
			r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
			body := "Subject: ahead\r\n\r\nbody\r\n"
			// Two transactions: the first with recipients the next hop
			// and the policy refuse, the second plain.
			for i, rcpts := range [][]string{{"bob@example.org", "carol@example.org", "refuse@example.org", "dan@example.org"}, {"erin@example.org"}} {
				before := wc.n.Load()
				var b strings.Builder
				b.WriteString("MAIL FROM:<alice@example.com>\r\n")
				for _, to := range rcpts {
					fmt.Fprintf(&b, "RCPT TO:<%s>\r\n", to)
				}
				if proto == "DATA" {
					b.WriteString("DATA\r\n")
				} else {
					fmt.Fprintf(&b, "BDAT %d LAST\r\n%s", len(body), body)
				}
				r.w.WriteString(b.String())
				r.w.Flush()
				if got := r.readReply(); !strings.HasPrefix(got, "250") {
					t.Fatalf("MAIL: %q", got)
				}
				for _, to := range rcpts {
					got := r.readReply()
					switch {
					case to == "carol@example.org" && !strings.HasPrefix(got, "550 5.1.1 No such user here"):
						t.Errorf("RCPT %s: %q, want the next hop's 550", to, got)
					case to == "refuse@example.org" && !strings.HasPrefix(got, "550 5.7.1 Recipient refused by policy"):
						t.Errorf("RCPT %s: %q, want the policy's 550", to, got)
					case to != "carol@example.org" && to != "refuse@example.org" && !strings.HasPrefix(got, "250"):
						t.Errorf("RCPT %s: %q, want 250", to, got)
					}
				}
				if proto == "DATA" {
					if got := r.readReply(); !strings.HasPrefix(got, "354") {
						t.Fatalf("DATA: %q", got)
					}
					r.w.WriteString(body + ".\r\n")
					r.w.Flush()
				}
				if got := r.readReply(); !strings.HasPrefix(got, "250") {
					t.Fatalf("end of the message: %q", got)
				}
				d := h.nh.WaitDeliveries(i+1, 5*time.Second)
				if len(d) != i+1 {
					t.Fatalf("next hop got %d messages, want %d", len(d), i+1)
				}
				want := "bob@example.org,dan@example.org"
				if i == 1 {
					want = "erin@example.org"
					if n := wc.n.Load() - before; n != tc.writes {
						t.Errorf("the plain transaction took %d writes to the next hop, want %d", n, tc.writes)
					}
				}
				if got := strings.Join(d[i].Rcpts, ","); got != want {
					t.Errorf("message %d delivered to %s, want %s", i, got, want)
				}
			}
		})
	}
}

// newAheadPair is two servers with the same policy (refusing recipients
// at refuse@) and next hop rules (refusing carol@example.org and any
// recipient at nobody@): one sending pipelined recipients ahead (a), one
// never (b). Scripts go after AUTH's reply, so that a MAIL starts a read.
func newAheadPair(t testing.TB) serverPair {
	mk := func(noAhead bool) *harness {
		h := newHarness(t, func(o *Options, _ *ListenerOptions) {
			o.Policy = &rcptRecorder{}
			o.MaxRecipients = 8
			o.noRcptAhead = noAhead
		})
		h.nh.RefuseRcpt["carol@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
		h.nh.RcptRule = func(to string) *smtp.SMTPError {
			if strings.HasPrefix(to, "nobody@") {
				return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "Try later"}
			}
			return nil
		}
		return h
	}
	return serverPair{a: mk(false), aName: "recipients ahead", b: mk(true), bName: "lockstep", authFirst: true}
}

func TestRecipientsAheadSameConversation(t *testing.T) {
	p := newAheadPair(t)
	msg := "DATA\r\nSubject: a\r\n\r\nx\r\n.\r\n"
	for _, rcpts := range []string{
		"RCPT TO:<bob@example.org>\r\n",
		"RCPT TO:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nRCPT TO:<refuse@example.org>\r\nRCPT TO:<dan@example.org>\r\n",
		"RCPT TO:<refuse@example.org>\r\n",
		"RCPT TO:<refuse@example.org>\r\nRCPT TO:<bob@example.org>\r\n",
		"rcpt to: <Bob@Example.org>\r\nRCPT TO:<nobody@example.org>\r\n",
		"RCPT TO:<bob@example.org> NOTIFY=NEVER\r\nRCPT TO:<\"b o b\"@example.org>\r\nRCPT TO:<erin@example.org>\r\n",
		"RCPT TO:<bob@example.org>\r\nRCPT TO:<bob@example.org>\r\n",
		"RCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nRCPT TO:<d@x>\r\nRCPT TO:<e@x>\r\nRCPT TO:<f@x>\r\nRCPT TO:<g@x>\r\nRCPT TO:<h@x>\r\nRCPT TO:<i@x>\r\nRCPT TO:<j@x>\r\n",
		"RCPT TO:<postmaster>\r\nRCPT TO:<>\r\nRCPT TO:bob@example.org\r\nRCPT TO:<bob@example.org\r\n",
		"RCPT TO:<bob@example.org>\r\nNOOP\r\nRCPT TO:<dan@example.org>\r\n",
		"RCPT TO:<bob@example.org>\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<dan@example.org>\r\n",
	} {
		for _, end := range []string{msg, "RSET\r\n", "BDAT 17 LAST\r\nSubject: a\r\n\r\nx\r\n"} {
			conv := p.same(t, []byte("MAIL FROM:<alice@example.com>\r\n"+rcpts+end+"QUIT\r\n"))
			for _, m := range conv.Messages {
				if strings.Contains(m, "refuse@") || strings.Contains(m, "carol@") {
					t.Errorf("a refused recipient got the message: %s", m)
				}
			}
		}
	}
	if p.a.nh.Received() == nil {
		t.Fatal("nothing was relayed")
	}
	if n := p.a.srv.aheadTransactions.Load(); n == 0 {
		t.Error("no transaction sent recipients ahead")
	}
	if n := p.b.srv.aheadTransactions.Load(); n != 0 {
		t.Errorf("the lockstep server sent recipients ahead in %d transactions", n)
	}
}

// FuzzRecipientsAhead sends fuzzed commands between MAIL and DATA to both
// servers.
func FuzzRecipientsAhead(f *testing.F) {
	f.Add([]byte("RCPT TO:<bob@example.org>\r\nRCPT TO:<refuse@example.org>\r\n"))
	f.Add([]byte("RCPT TO:<carol@example.org>\r\nRCPT TO:<nobody@x>\r\nRCPT TO:<dan@example.org>\r\n"))
	f.Add([]byte("rcpt to:<\"a>b\"@x>\r\nRCPT TO:<x@y> ORCPT=rfc822;x@y\r\n"))
	f.Add([]byte("RCPT TO:<bob@example.org>\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\n"))
	p := newAheadPair(f)
	f.Fuzz(func(t *testing.T, cmds []byte) {
		p.same(t, []byte("MAIL FROM:<alice@example.com>\r\n"+string(cmds)+"DATA\r\nSubject: a\r\n\r\nx\r\n.\r\nQUIT\r\n"))
	})
}
