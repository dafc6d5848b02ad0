package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/deadline"
)

// scripted starts a server on 127.0.0.1:0 for tests that need replies no
// real server gives. Each connection is greeted with "220 name ESMTP";
// serve then gets every command line, the connection's reader (for a
// chunk's octets, or to see what was pipelined behind the line) and say,
// which writes a reply line (several when it holds CRLFs). serve returns
// false to close the connection.
func scripted(t *testing.T, name string, serve func(line string, r *bufio.Reader, say func(string)) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				say := func(l string) { c.Write([]byte(l + "\r\n")) }
				say("220 " + name + " ESMTP")
				for {
					line, err := r.ReadString('\n')
					if err != nil || !serve(line, r, say) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startMute starts a server that greets, answers EHLO, and then reads
// commands without ever answering them; each command line goes to got.
func startMute(t *testing.T) (addr string, got chan string) {
	t.Helper()
	got = make(chan string, 16)
	addr = scripted(t, "mute.test", func(line string, _ *bufio.Reader, say func(string)) bool {
		if strings.HasPrefix(line, "EHLO") {
			say("250-mute.test\r\n250 8BITMIME")
		} else {
			got <- line
		}
		return true
	})
	return addr, got
}

// TestCancelAbandonsCommand: cancelling the context fails the command
// waiting for its reply at once, whatever the command timeout, and leaves
// the connection broken (its state is unknown).
func TestCancelAbandonsCommand(t *testing.T) {
	addr, got := startMute(t)
	c, err := Dial(context.Background(), Options{Address: addr, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Mail(ctx, "a@example.net", MailOptions{}) }()
	if line := <-got; !strings.HasPrefix(line, "MAIL FROM:<a@example.net>") {
		t.Fatalf("server got %q", line)
	}
	cancel()
	err = <-done
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Mail after cancel: %v, want ErrTimeout wrapping context.Canceled", err)
	}
	if !c.Broken() {
		t.Errorf("connection not broken after an abandoned command")
	}
}

// TestDeadlineShortensTimeout: a context deadline earlier than the
// command timeout ends the command at the deadline.
func TestDeadlineShortensTimeout(t *testing.T) {
	// A deadline.Context (smtpd's steps) is bound by its deadline alone,
	// without a watcher; the same holds.
	for _, kind := range []string{"context.WithTimeout", "deadline.New"} {
		addr, _ := startMute(t)
		c, err := Dial(context.Background(), Options{Address: addr, Timeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var ctx context.Context
		var cancel func()
		if kind == "deadline.New" {
			dc := deadline.New(200 * time.Millisecond)
			ctx, cancel = dc, dc.Release
		} else {
			ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		}
		defer cancel()
		err = c.Noop(ctx)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: Noop past the deadline: %v, want ErrTimeout wrapping context.DeadlineExceeded", kind, err)
		}
		if !c.Broken() {
			t.Errorf("%s: connection not broken after a timed-out command", kind)
		}
	}
}

// TestEndedContextSendsNothing: a command whose context has already
// ended is not sent, and the connection stays usable.
func TestEndedContextSendsNothing(t *testing.T) {
	addr, got := startMute(t)
	c, err := Dial(context.Background(), Options{Address: addr, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Rcpt(ctx, "b@example.org"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rcpt with an ended context: %v", err)
	}
	if c.Broken() {
		t.Errorf("connection broken by a command never sent")
	}
	// The next command is the first thing the server hears.
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Noop(ctx2); close(done) }()
	if line := <-got; line != "NOOP\r\n" {
		t.Errorf("server heard %q first, want NOOP", line)
	}
	cancel2()
	<-done
}
