package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestShutdownSays421BetweenTransactions: a session idle between two
// transactions hears 421 4.3.2 at shutdown, not a reset.
func TestShutdownSays421BetweenTransactions(t *testing.T) {
	h := newHarness(t)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	readReply := func() string {
		t.Helper()
		var last string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading a reply: %v (after %q)", err, last)
			}
			last = line
			if len(line) < 4 || line[3] != '-' {
				return line
			}
		}
	}
	send := func(cmd string) string {
		t.Helper()
		fmt.Fprintf(c, "%s\r\n", cmd)
		return readReply()
	}
	readReply() // greeting
	send("EHLO client.test")
	send("AUTH PLAIN AGFsaWNlAHNlY3JldA==") // alice / secret
	for _, cmd := range []string{"MAIL FROM:<a@out.example.net>", "RCPT TO:<b@example.org>", "DATA"} {
		send(cmd)
	}
	if got := send("Subject: t\r\n\r\nhello\r\n."); !strings.HasPrefix(got, "250") {
		t.Fatalf("first message: %q", got)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 4.3.2") {
		t.Fatalf("between transactions at shutdown: read %q, %v; want 421 4.3.2", line, err)
	}
	<-done
}

// TestShutdownSays421AfterSTARTTLS: the same over STARTTLS, where the
// reply must go through TLS.
func TestShutdownSays421AfterSTARTTLS(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) { lo.TLSConfig = testTLSConfig(t) })
	raw, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	var r *bufio.Reader
	var w net.Conn = raw
	r = bufio.NewReader(raw)
	readReply := func() string {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading a reply: %v", err)
			}
			if len(line) < 4 || line[3] != '-' {
				return line
			}
		}
	}
	send := func(cmd string) string {
		t.Helper()
		fmt.Fprintf(w, "%s\r\n", cmd)
		return readReply()
	}
	readReply()
	send("EHLO client.test")
	if got := send("STARTTLS"); !strings.HasPrefix(got, "220") {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	w, r = tc, bufio.NewReader(tc)
	send("EHLO client.test")
	send("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
	for _, cmd := range []string{"MAIL FROM:<a@out.example.net>", "RCPT TO:<b@example.org>", "DATA"} {
		send(cmd)
	}
	if got := send("Subject: t\r\n\r\nhello\r\n."); !strings.HasPrefix(got, "250") {
		t.Fatalf("first message: %q", got)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 4.3.2") {
		t.Fatalf("between transactions at shutdown, over TLS: read %q, %v; want 421 4.3.2", line, err)
	}
	<-done
}
