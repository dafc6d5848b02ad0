package smtpd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/testutil"
)

// TestNextHopPoolReuse: sequential messages through a pooled next hop
// use one connection.
func TestNextHopPoolReuse(t *testing.T) {
	nh := testutil.StartNextHop(t)
	h, err := NewSMTPNextHop(NextHopOptions{Address: nh.Addr, PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := range 5 {
		if err := Deliver(context.Background(), h, "a@out.example.net", []string{"b@example.org"}, []byte("Subject: m\r\n\r\nbody\r\n")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	nh.Lock()
	conns, n := nh.Conns, len(nh.Deliveries)
	nh.Unlock()
	if n != 5 || conns != 1 {
		t.Errorf("%d deliveries over %d connections, want 5 over 1", n, conns)
	}
	// Without a pool, each message opens its own connection.
	h2, _ := NewSMTPNextHop(NextHopOptions{Address: nh.Addr})
	defer h2.Close()
	for range 2 {
		if err := Deliver(context.Background(), h2, "a@out.example.net", []string{"b@example.org"}, []byte("Subject: m\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	nh.Lock()
	conns = nh.Conns
	nh.Unlock()
	if conns != 3 {
		t.Errorf("without a pool: %d connections in all, want 3", conns)
	}
}

// TestNextHopTimeout: a next hop that greets and then says nothing more
// fails the command at Timeout with ErrNextHopTimeout (a 4xx for the
// client).
func TestNextHopTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("220 mute.test ESMTP\r\n"))
				bufio.NewReader(c).ReadString('\n') // EHLO, never answered
				time.Sleep(time.Minute)
			}()
		}
	}()
	h, _ := NewSMTPNextHop(NextHopOptions{Address: ln.Addr().String(), Timeout: 200 * time.Millisecond})
	defer h.Close()
	_, err = h.Begin(context.Background(), "a@out.example.net", MailOptions{})
	if err == nil || !errors.Is(err, ErrNextHopTimeout) {
		t.Fatalf("Begin against a mute next hop: %v, want ErrNextHopTimeout", err)
	}
	if r := toReply(err, slog.New(slog.DiscardHandler)); r.Code/100 != 4 {
		t.Errorf("the client would get %d, want a 4xx", r.Code)
	}
}

// TestCaptureNextHop: the trial next hop writes the message and its
// envelope, and refuses a message over its bound.
func TestCaptureNextHop(t *testing.T) {
	dir := t.TempDir()
	h := &CaptureNextHop{Dir: dir, MaxBytes: 1000}
	raw := "Subject: captured\r\n\r\nhello\r\n"
	if err := Deliver(context.Background(), h, "a@out.example.net", []string{"b@example.org", "c@example.org"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(emls) != 1 {
		t.Fatalf("%d .eml files, want 1", len(emls))
	}
	b, _ := os.ReadFile(emls[0])
	if string(b) != raw {
		t.Errorf("captured %q, want %q", b, raw)
	}
	var env struct {
		MailFrom string   `json:"mail_from"`
		RcptTo   []string `json:"rcpt_to"`
	}
	jb, err := os.ReadFile(strings.TrimSuffix(emls[0], ".eml") + ".json")
	if err != nil || json.Unmarshal(jb, &env) != nil || env.MailFrom != "a@out.example.net" || len(env.RcptTo) != 2 {
		t.Errorf("envelope %s (%v)", jb, err)
	}
	err = Deliver(context.Background(), h, "a@out.example.net", []string{"b@example.org"}, []byte("Subject: big\r\n\r\n"+strings.Repeat("x", 2000)+"\r\n"))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a message over the bound: %v, want too large", err)
	}
}

// stallHop is a raw next hop that answers until the command named stall
// ("RCPT", or "." for the final reply to the message) and then says
// nothing more. got receives the stalled command's line (the whole body
// for "."); closed is closed when outguard drops the connection.
type stallHop struct {
	addr   string
	stall  string
	got    chan string
	closed chan struct{}
}

func startStallHop(t *testing.T, stall string) *stallHop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stallHop{addr: ln.Addr().String(), stall: stall, got: make(chan string, 1), closed: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer close(s.closed)
		defer c.Close()
		r := bufio.NewReader(c)
		say := func(l string) { c.Write([]byte(l + "\r\n")) }
		say("220 stall.test ESMTP")
		stalled := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if stalled {
				continue
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO") && s.stall == "BDAT":
				say("250-stall.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME")
			case strings.HasPrefix(cmd, "EHLO"):
				say("250-stall.test\r\n250 8BITMIME")
			case strings.HasPrefix(cmd, s.stall):
				s.got <- line
				stalled = true
			case cmd == "DATA":
				say("354 go ahead")
				var body strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					body.WriteString(l)
				}
				if s.stall == "." {
					s.got <- body.String()
					stalled = true
					continue
				}
				say("250 2.0.0 queued")
			default:
				say("250 2.0.0 ok")
			}
		}
	}()
	return s
}

// TestNextHopCancelAbandonsStalledHop: a next hop that takes the message
// and never answers is abandoned as soon as the caller's context is
// cancelled, long before the command timeouts. The caller gets
// ErrNextHopTimeout carrying context.Canceled (a 4xx for the client) and
// the connection, in an unknown state, is closed rather than pooled.
func TestNextHopCancelAbandonsStalledHop(t *testing.T) {
	s := startStallHop(t, ".")
	h, err := NewSMTPNextHop(NextHopOptions{Address: s.addr, PoolSize: 4, Timeout: time.Minute, DataTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tx, err := h.Begin(ctx, "a@out.example.net", MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rcpt(ctx, "b@example.org"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := tx.Data(ctx, strings.NewReader("Subject: stalled\r\n\r\nbody\r\n"))
		done <- err
	}()
	if body := <-s.got; !strings.Contains(body, "Subject: stalled") {
		t.Fatalf("the next hop got %q", body)
	}
	cancel()
	err = <-done
	if !errors.Is(err, ErrNextHopTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Data after cancel: %v, want ErrNextHopTimeout wrapping context.Canceled", err)
	}
	if r := toReply(err, slog.New(slog.DiscardHandler)); r.Code != 451 {
		t.Errorf("the client would get %d, want 451", r.Code)
	}
	<-s.closed
	h.mu.Lock()
	idle := len(h.idle)
	h.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d pooled connections after a cancelled transfer, want 0", idle)
	}
}

// TestRelayStalledNextHopAnswered451: over SMTP, a next hop that stalls
// after the message is abandoned when the transaction's context ends
// (the session's IdleTimeout), well before its own DataTimeout. The
// client hears 451 4.4.1: nothing was claimed delivered, and the
// outcome is recorded as deferred.
func TestRelayStalledNextHopAnswered451(t *testing.T) {
	// After the final dot (DATA), or after the BDAT chunk of a next hop
	// that offers CHUNKING.
	for _, stall := range []string{".", "BDAT"} {
		s := startStallHop(t, stall)
		hop, err := NewSMTPNextHop(NextHopOptions{Address: s.addr, PoolSize: 4, Timeout: time.Minute, DataTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hop.Close() })
		h := newHarness(t, func(o *Options, _ *ListenerOptions) {
			o.NextHop = hop
			o.IdleTimeout = 2 * time.Second
		})
		c := h.authedClient()
		err = c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg))
		var serr *smtp.SMTPError
		if !errors.As(err, &serr) || serr.Code != 451 || serr.EnhancedCode != (smtp.EnhancedCode{4, 4, 1}) {
			t.Fatalf("next hop stalled at %q: %v, want 451 4.4.1", stall, err)
		}
		if got := <-s.got; stall == "BDAT" && !strings.HasPrefix(got, "BDAT ") {
			t.Errorf("the next hop stalled at %q, want at BDAT", got)
		}
		<-s.closed
		res := h.policy.Results()
		if len(res) != 1 || res[0].Outcome != OutcomeDeferred || !errors.Is(res[0].Err, context.DeadlineExceeded) {
			t.Fatalf("next hop stalled at %q: results %+v, want one deferred transaction ended by its context", stall, res)
		}
	}
}

// TestRelayNextHopTimeoutAtRcpt: a next hop that does not answer RCPT
// within Timeout costs the client a 451 4.4.1 at RCPT, and the broken
// connection is dropped.
func TestRelayNextHopTimeoutAtRcpt(t *testing.T) {
	s := startStallHop(t, "RCPT")
	hop, err := NewSMTPNextHop(NextHopOptions{Address: s.addr, PoolSize: 4, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hop.Close() })
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.NextHop = hop })
	c := h.authedClient()
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt("bob@example.org", nil)
	var serr *smtp.SMTPError
	if !errors.As(err, &serr) || serr.Code != 451 || serr.EnhancedCode != (smtp.EnhancedCode{4, 4, 1}) {
		t.Fatalf("RCPT to a mute next hop: %v, want 451 4.4.1", err)
	}
	if line := <-s.got; !strings.HasPrefix(line, "RCPT TO:<bob@example.org>") {
		t.Errorf("the next hop got %q", line)
	}
	c.Reset()
	<-s.closed
}

// TestRelayPoolReusedAcrossSessions: two client sessions one after the
// other relay over one next-hop connection.
func TestRelayPoolReusedAcrossSessions(t *testing.T) {
	h := newHarness(t)
	for i := range 2 {
		c := h.authedClient()
		if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg)); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.Quit()
	}
	if d := h.nh.Received(); len(d) != 2 {
		t.Fatalf("%d deliveries, want 2", len(d))
	}
	h.nh.Lock()
	defer h.nh.Unlock()
	if h.nh.Conns != 1 {
		t.Errorf("%d next-hop connections, want 1", h.nh.Conns)
	}
}

// TestRelayToCaptureNextHop: over SMTP, the trial next hop keeps the
// message as relayed (outguard's Received field first) with its
// envelope, and its reply reaches the client.
func TestRelayToCaptureNextHop(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.NextHop = &CaptureNextHop{Dir: dir} })
	c := h.authedClient()
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"bob@example.org", "carol@example.org"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(plainMsg))
	resp, err := w.CloseWithResponse()
	if err != nil || !strings.Contains(resp.StatusText, "captured as") {
		t.Fatalf("final reply %+v, %v; want the capture's", resp, err)
	}
	emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(emls) != 1 {
		t.Fatalf("%d .eml files, want 1", len(emls))
	}
	b, _ := os.ReadFile(emls[0])
	if !strings.HasPrefix(string(b), "Received: ") || !strings.HasSuffix(string(b), plainMsg) {
		t.Errorf("captured %q, want a Received field then the message", b)
	}
	var env struct {
		MailFrom string   `json:"mail_from"`
		RcptTo   []string `json:"rcpt_to"`
	}
	jb, err := os.ReadFile(strings.TrimSuffix(emls[0], ".eml") + ".json")
	if err != nil || json.Unmarshal(jb, &env) != nil || env.MailFrom != "alice@example.com" || strings.Join(env.RcptTo, ",") != "bob@example.org,carol@example.org" {
		t.Errorf("envelope %s (%v)", jb, err)
	}
}

// TestCaptureNames: the capture next hop files a message under the name
// it is given, adds a counter to a name used before, and makes a fresh
// log id of a name that is not a plain file name.
func TestCaptureNames(t *testing.T) {
	dir := t.TempDir()
	h := &CaptureNextHop{Dir: dir}
	send := func(name string) {
		t.Helper()
		ctx := WithDeliveryName(context.Background(), name)
		if err := Deliver(ctx, h, "", []string{"b@example.org"}, []byte("Subject: r\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	send("01JABC.arf")
	send("01JABC.arf")
	send("../escape")
	for _, f := range []string{"01JABC.arf.eml", "01JABC.arf.json", "01JABC.arf-2.eml", "01JABC.arf-2.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(emls) != 3 {
		t.Errorf("%d files, want 3: %v", len(emls), emls)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.eml")); err == nil {
		t.Error("a name with a path left the capture folder")
	}
}
