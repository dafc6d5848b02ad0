package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/testutil"
)

// aheadConn dials nh with a write counter.
func aheadConn(t *testing.T, nh *testutil.NextHop) (*Conn, *countingDialer) {
	t.Helper()
	d := &countingDialer{}
	c, err := Dial(context.Background(), Options{Address: nh.Addr, Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if !c.Has("PIPELINING") {
		t.Fatal("the test next hop does not offer PIPELINING")
	}
	return c, d
}

// send ends the transaction with a small message.
func send(t *testing.T, c *Conn) error {
	t.Helper()
	ctx := context.Background()
	if err := c.Data(ctx); err != nil {
		return err
	}
	_, err := c.Body(ctx, strings.NewReader("Subject: s\r\n\r\nbody\r\n"))
	return err
}

// onlyDelivery returns the one message nh received, failing t when it
// received another number of them.
func onlyDelivery(t *testing.T, nh *testutil.NextHop) testutil.Delivery {
	t.Helper()
	got := nh.Received()
	if len(got) != 1 {
		t.Fatalf("next hop got %d messages, want 1", len(got))
	}
	return got[0]
}

// Recipients sent ahead go out in MAIL's write, and Rcpt then writes
// nothing: each one gets the reply to its own RCPT, refusals included.
func TestRecipientsAhead(t *testing.T) {
	nh := testutil.StartNextHop(t)
	nh.RefuseRcpt["carol@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	c, d := aheadConn(t, nh)
	ctx := context.Background()
	before := d.writes.Load()
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"bob@example.org", "carol@example.org", "dan@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "bob@example.org"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	var serr *smtp.SMTPError
	if err := c.Rcpt(ctx, "carol@example.org"); !errors.As(err, &serr) || serr.Code != 550 || serr.Message != "No such user" {
		t.Fatalf("carol: %v, want the next hop's 550 No such user", err)
	}
	if err := c.Rcpt(ctx, "dan@example.org"); err != nil {
		t.Fatalf("dan: %v", err)
	}
	if n := d.writes.Load() - before; n != 1 {
		t.Errorf("MAIL and three RCPTs took %d writes, want 1", n)
	}
	if err := send(t, c); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(onlyDelivery(t, nh).Rcpts, ","); got != "bob@example.org,dan@example.org" {
		t.Errorf("delivered to %s, want bob and dan", got)
	}
	nh.Lock()
	defer nh.Unlock()
	if nh.Mails != 1 {
		t.Errorf("%d MAILs, want 1 (nothing sent again)", nh.Mails)
	}
}

// A recipient sent ahead that Rcpt never takes (refused before it got
// there, or another one came) never receives the message: the
// transaction is sent again without it before DATA.
func TestStrayRecipientAheadResent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ahead []string
		rcpts []string
	}{
		{"last not taken", []string{"bob@example.org", "stray@example.org"}, []string{"bob@example.org"}},
		{"first not taken", []string{"stray@example.org", "bob@example.org"}, []string{"bob@example.org"}},
		{"another came", []string{"stray@example.org"}, []string{"bob@example.org"}},
		{"none taken", []string{"stray@example.org"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nh := testutil.StartNextHop(t)
			c, _ := aheadConn(t, nh)
			ctx := context.Background()
			if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: tc.ahead}); err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.rcpts {
				if err := c.Rcpt(ctx, r); err != nil {
					t.Fatalf("%s: %v", r, err)
				}
			}
			err := send(t, c)
			if len(tc.rcpts) == 0 {
				// The next hop refuses DATA without recipients.
				if err == nil {
					t.Fatal("DATA without recipients succeeded")
				}
				if len(nh.Received()) != 0 {
					t.Fatal("a message was delivered to a stray recipient")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(onlyDelivery(t, nh).Rcpts, ","); got != strings.Join(tc.rcpts, ",") {
				t.Errorf("delivered to %s, want %s", got, strings.Join(tc.rcpts, ","))
			}
			nh.Lock()
			defer nh.Unlock()
			if nh.Mails != 2 {
				t.Errorf("%d MAILs, want 2 (the transaction sent again)", nh.Mails)
			}
		})
	}
}

// When the next hop answers differently the second time, Data fails
// with ErrUnavailable (a 4xx for the client: nothing was kept), and the
// connection stays usable.
func TestStrayResendRefused(t *testing.T) {
	nh := testutil.StartNextHop(t)
	c, _ := aheadConn(t, nh)
	ctx := context.Background()
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"bob@example.org", "stray@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	nh.Lock()
	nh.RefuseRcpt["bob@example.org"] = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "Mailbox busy"}
	nh.Unlock()
	if err := c.Data(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Data = %v, want ErrUnavailable", err)
	}
	if c.Broken() {
		t.Fatal("connection broken after a refused resend")
	}
	nh.Lock()
	delete(nh.RefuseRcpt, "bob@example.org")
	nh.Unlock()
	if _, err := sendOne(t, c, "Subject: s\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(onlyDelivery(t, nh).Rcpts, ","); got != "bob@example.org" {
		t.Errorf("delivered to %s, want bob", got)
	}
}

// A refused MAIL leaves no reply unread: the recipients sent with it are
// read, and the connection carries the next transaction. Reset with
// unread recipients does the same.
func TestAheadRepliesNeverLeftUnread(t *testing.T) {
	nh := testutil.StartNextHop(t)
	c, _ := aheadConn(t, nh)
	ctx := context.Background()
	nh.Lock()
	nh.MailErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try later"}
	nh.Unlock()
	var serr *smtp.SMTPError
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"bob@example.org", "carol@example.org"}}); !errors.As(err, &serr) || serr.Code != 451 {
		t.Fatalf("Mail = %v, want the next hop's 451", err)
	}
	nh.Lock()
	nh.MailErr = nil
	nh.Unlock()
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"carol@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"bob@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := send(t, c); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(onlyDelivery(t, nh).Rcpts, ","); got != "bob@example.org" {
		t.Errorf("delivered to %s, want bob", got)
	}
}

// Without PIPELINING nothing goes ahead: MAIL is sent alone.
func TestNoPipeliningNoAhead(t *testing.T) {
	lines := make(chan string, 16)
	addr := scripted(t, "plain.test", func(line string, r *bufio.Reader, say func(string)) bool {
		lines <- line
		switch {
		case strings.HasPrefix(line, "EHLO"):
			say("250-plain.test\r\n250 8BITMIME")
		case r.Buffered() > 0:
			lines <- "pipelined: " + line
			fallthrough
		default:
			say("250 2.0.0 Ok")
		}
		return true
	})
	c, err := Dial(context.Background(), Options{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-lines // EHLO
	ctx := context.Background()
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"bob@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if l := <-lines; !strings.HasPrefix(l, "MAIL FROM:<a@example.com>") {
		t.Fatalf("server got %q, want MAIL alone", l)
	}
	if err := c.Rcpt(ctx, "bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if l := <-lines; l != "RCPT TO:<bob@example.org>\r\n" {
		t.Fatalf("server got %q, want RCPT after MAIL's reply", l)
	}
}

// A context that has ended before Rcpt reads nothing and returns at once,
// with the replies still pending for Reset to read.
func TestRcptAheadEndedContext(t *testing.T) {
	nh := testutil.StartNextHop(t)
	c, _ := aheadConn(t, nh)
	ctx := context.Background()
	if err := c.Mail(ctx, "a@example.com", MailOptions{Ahead: []string{"stray@example.org", "bob@example.org"}}); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Rcpt(ended, "bob@example.org"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Rcpt with an ended context: %v, want ErrTimeout", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sendOne(t, c, "Subject: s\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(onlyDelivery(t, nh).Rcpts, ","); got != "bob@example.org" {
		t.Errorf("delivered to %s, want bob", got)
	}
}
