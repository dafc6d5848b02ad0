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
