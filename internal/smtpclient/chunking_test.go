package smtpclient

import (
	"bytes"
	"context"
	"errors"
	"strings"
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
				got[i] = rcptsData(t, nh)
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Errorf("BDAT delivered %d octets, DATA %d, or different ones:\nBDAT %q\nDATA %q", len(got[0]), len(got[1]), head(got[0]), head(got[1]))
			}
		})
	}
}

func rcptsData(t *testing.T, nh *testutil.NextHop) []byte {
	t.Helper()
	got := nh.Received()
	if len(got) != 1 {
		t.Fatalf("next hop got %d messages, want 1", len(got))
	}
	return got[0].Data
}

func head(b []byte) []byte { return b[:min(len(b), 80)] }

// A refused message, whole or at a chunk past the server's size limit,
// returns the server's reply; after Reset the connection carries the
// next message.
func TestSendRefused(t *testing.T) {
	nh := testutil.StartNextHopWith(t, testutil.NextHopOptions{MaxMessageBytes: 3 * chunkSize})
	c, err := Dial(context.Background(), Options{Address: nh.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var serr *smtp.SMTPError
	if _, err := sendOne(t, c, strings.Repeat("x", 40*chunkSize)); !errors.As(err, &serr) || serr.Code != 552 {
		t.Fatalf("oversize message: %v, want the next hop's 552", err)
	}
	if c.Broken() {
		t.Fatal("connection broken after a refused chunk")
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	nh.Lock()
	nh.DataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Content rejected"}
	nh.Unlock()
	if _, err := sendOne(t, c, "Subject: a\r\n\r\nx\r\n"); !errors.As(err, &serr) || serr.Code != 554 || serr.Message != "Content rejected" {
		t.Fatalf("refused message: %v, want the next hop's 554", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	nh.Lock()
	nh.DataErr = nil
	nh.Unlock()
	if _, err := sendOne(t, c, "Subject: ok\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := nh.Received(); len(got) != 1 || !bytes.Contains(got[0].Data, []byte("Subject: ok")) {
		t.Fatalf("next hop got %d messages, want the last one", len(got))
	}
}
