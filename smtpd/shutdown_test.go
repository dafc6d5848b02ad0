package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// finishTx sends the message of a transaction openTx opened and expects
// 250: the session is then idle between transactions.
func finishTx(r *rawConn) {
	r.t.Helper()
	r.expect("DATA", 354)
	r.expect("Subject: t\r\n\r\nhello\r\n.", 250)
}

// expectBye shuts srv down and checks that r, idle, hears 421 4.3.2.
func expectBye(r *rawConn, srv *Server) {
	r.t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	line, err := r.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421 4.3.2") {
		r.t.Fatalf("between transactions at shutdown: read %q, %v; want 421 4.3.2", line, err)
	}
	<-done
}

// TestShutdownSays421BetweenTransactions: a session idle between two
// transactions hears 421 4.3.2 at shutdown, not a reset.
func TestShutdownSays421BetweenTransactions(t *testing.T) {
	h := newHarness(t)
	r := h.openTx(t)
	finishTx(r)
	expectBye(r, h.srv)
}

// TestShutdownSays421AfterSTARTTLS: the same over STARTTLS, where the
// reply must go through TLS.
func TestShutdownSays421AfterSTARTTLS(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) { lo.TLSConfig = testTLSConfig(t) })
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	r.expect("STARTTLS", 220)
	tc := tls.Client(r.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r.r, r.w = bufio.NewReader(tc), bufio.NewWriter(tc)
	r.expect("EHLO c.test", 250)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
	r.expect("MAIL FROM:<alice@example.com>", 250)
	r.expect("RCPT TO:<bob@example.org>", 250)
	finishTx(r)
	expectBye(r, h.srv)
}
