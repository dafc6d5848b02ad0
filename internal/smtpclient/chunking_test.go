package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/testutil"
)

// sendOne sends msg to bob in one transaction over c.
func sendOne(t *testing.T, c *Conn, msg string) (string, error) {
	t.Helper()
	ctx := context.Background()
	if err := c.Mail(ctx, "a@example.com", MailOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	return c.Send(ctx, strings.NewReader(msg))
}

// BDAT carries the same octets as DATA: line endings made CRLF, a last
// line ended, dots as they are; one chunk, several, more than maxUnread.
func TestSendChunksSameOctets(t *testing.T) {
	msgs := map[string]string{
		"plain":            "Subject: a\r\n\r\nhello\r\n",
		"empty":            "",
		"no final CRLF":    "Subject: a\r\n\r\nhello",
		"bare LF and CR":   "Subject: a\n\nhello\n.\nMAIL FROM:<e@x>\rx\r.\r\n",
		"dots":             ".\r\n..\r\n.x\r\n",
		"one chunk exact":  strings.Repeat("a", chunkSize-2) + "\r\n",
		"three chunks":     strings.Repeat("a line of text.\r\n.dot\r\n", 4000),
		"past maxUnread":   strings.Repeat("0123456789abcdef0123456789abcde\n", (maxUnread+4)*chunkSize/32),
		"CR at chunk edge": strings.Repeat("b", chunkSize-1) + "\r\nafter\r",
	}
	for name, msg := range msgs {
		t.Run(name, func(t *testing.T) {
			var got [2][]byte
			for i, noChunking := range []bool{false, true} {
				nh := testutil.StartNextHop(t)
				d := &countingDialer{}
				c, err := Dial(context.Background(), Options{Address: nh.Addr, Dialer: d, NoChunking: noChunking})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if c.Chunks() == noChunking {
					t.Fatalf("Chunks() = %v with NoChunking %v", c.Chunks(), noChunking)
				}
				before := d.writes.Load()
				reply, err := sendOne(t, c, msg)
				if err != nil {
					t.Fatalf("NoChunking %v: %v", noChunking, err)
				}
				if !strings.HasPrefix(reply, "Ok: queued as NH1") {
					t.Errorf("final reply %q", reply)
				}
				if name == "plain" && !noChunking {
					// MAIL, RCPT, then BDAT and its chunk in one write.
					if n := d.writes.Load() - before; n != 3 {
						t.Errorf("the transaction took %d writes, want 3", n)
					}
				}
				got[i] = onlyDelivery(t, nh).Data
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Errorf("BDAT delivered %d octets, DATA %d, or different ones:\nBDAT %q\nDATA %q", len(got[0]), len(got[1]), head(got[0]), head(got[1]))
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 80)] }

// A refused message, whole or at a chunk past the server's size limit,
// returns the server's reply, and the connection carries the next
// message at once (Send reset the transaction). Over DATA too.
func TestSendRefused(t *testing.T) {
	for _, noChunking := range []bool{false, true} {
		nh := testutil.StartNextHopWith(t, testutil.NextHopOptions{MaxMessageBytes: 3 * chunkSize})
		c, err := Dial(context.Background(), Options{Address: nh.Addr, NoChunking: noChunking})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var serr *smtp.SMTPError
		if _, err := sendOne(t, c, strings.Repeat("x", 40*chunkSize)); !errors.As(err, &serr) || serr.Code != 552 {
			t.Fatalf("NoChunking %v: oversize message: %v, want the next hop's 552", noChunking, err)
		}
		if c.Broken() {
			t.Fatalf("NoChunking %v: connection broken after a refused message", noChunking)
		}
		nh.Lock()
		nh.DataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Content rejected"}
		nh.Unlock()
		if _, err := sendOne(t, c, "Subject: a\r\n\r\nx\r\n"); !errors.As(err, &serr) || serr.Code != 554 || serr.Message != "Content rejected" {
			t.Fatalf("NoChunking %v: refused message: %v, want the next hop's 554", noChunking, err)
		}
		nh.Lock()
		nh.DataErr = nil
		nh.Unlock()
		if _, err := sendOne(t, c, "Subject: ok\r\n\r\nx\r\n"); err != nil {
			t.Fatalf("NoChunking %v: %v", noChunking, err)
		}
		if got := nh.Received(); len(got) != 1 || !bytes.Contains(got[0].Data, []byte("Subject: ok")) {
			t.Fatalf("NoChunking %v: next hop got %d messages, want the last one", noChunking, len(got))
		}
	}
}

// strictServer keeps a transaction open after it refuses DATA or a BDAT
// chunk, as RFC 5321 and RFC 3030 allow: MAIL is then refused (nested)
// until RSET.
func strictServer(t *testing.T) string {
	t.Helper()
	inTx := map[*bufio.Reader]bool{} // per connection; serve runs on its goroutine
	var mu sync.Mutex
	return scripted(t, "strict.test", func(line string, r *bufio.Reader, say func(string)) bool {
		mu.Lock()
		defer mu.Unlock()
		f := strings.Fields(strings.ToUpper(line))
		switch {
		case len(f) == 0:
			say("500 5.5.2 empty")
		case f[0] == "EHLO":
			say("250-strict.test\r\n250-PIPELINING\r\n250 CHUNKING")
		case f[0] == "MAIL" && inTx[r]:
			say("503 5.5.1 Error: nested MAIL command")
		case f[0] == "MAIL":
			inTx[r] = true
			say("250 2.1.0 Ok")
		case f[0] == "RCPT":
			say("250 2.1.5 Ok")
		case f[0] == "DATA":
			say("554 5.5.1 Error: no valid recipients")
		case f[0] == "BDAT" && len(f) > 1:
			n, _ := strconv.Atoi(f[1])
			io.CopyN(io.Discard, r, int64(n))
			say("552 5.3.4 Message too big")
		case f[0] == "RSET":
			inTx[r] = false
			say("250 2.0.0 Ok")
		case f[0] == "QUIT":
			say("221 2.0.0 Bye")
			return false
		default:
			say("502 5.5.2 unknown")
		}
		return true
	})
}

// After a refusal that leaves the server's transaction open, Send resets
// it: the next MAIL on the connection is not a nested one.
func TestSendResetsOpenTransaction(t *testing.T) {
	addr := strictServer(t)
	for _, noChunking := range []bool{false, true} {
		c, err := Dial(context.Background(), Options{Address: addr, NoChunking: noChunking})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 2 {
			var serr *smtp.SMTPError
			if _, err := sendOne(t, c, "Subject: a\r\n\r\nx\r\n"); !errors.As(err, &serr) || serr.Code/100 != 5 {
				t.Fatalf("NoChunking %v, message %d: %v, want the server's refusal", noChunking, i, err)
			}
			if c.Broken() {
				t.Fatalf("NoChunking %v: connection broken after a refusal", noChunking)
			}
		}
	}
}
