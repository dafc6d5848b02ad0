package smtpd

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/testutil"
)

// syncBuffer is a log sink shared by the session goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withLog(buf *syncBuffer) harnessOpt {
	return func(o *Options, _ *ListenerOptions) {
		o.Logger = slog.New(slog.NewTextHandler(buf, nil))
	}
}

// authed dials and authenticates as alice.
func (h *harness) authed(t *testing.T) *rawConn {
	t.Helper()
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
	return r
}

func TestEnvelopeAddressesKeepTheirQuoting(t *testing.T) {
	cases := []struct {
		name      string
		mail      string // MAIL argument sent by the client
		rcpt      string // RCPT argument sent by the client
		wantMail  string // exact command the next hop received
		wantRcpt  string
		wantLog   string // the mail_from the transaction line records
		wantParse string // the sender as the next hop's go-smtp parsed it
	}{
		{
			name: "plain addresses unchanged",
			mail: "<alice@example.com>", rcpt: "<bob@example.org>",
			wantMail: "MAIL FROM:<alice@example.com>", wantRcpt: "RCPT TO:<bob@example.org>",
			wantLog: `mail_from=<alice@example.com>`, wantParse: "alice@example.com",
		},
		{
			name: "sender parameters smuggled in a quoted local part",
			mail: `<"bounce AUTH=ceo@victim.example"@out.example.net>`, rcpt: "<bob@example.org>",
			wantMail: `MAIL FROM:<"bounce AUTH=ceo@victim.example"@out.example.net>`, wantRcpt: "RCPT TO:<bob@example.org>",
			wantLog:   `mail_from="<\"bounce AUTH=ceo@victim.example\"@out.example.net>"`,
			wantParse: "bounce AUTH=ceo@victim.example@out.example.net",
		},
		{
			name: "recipient DSN parameters smuggled in a quoted local part",
			mail: "<alice@example.com>", rcpt: `<"x NOTIFY=NEVER ORCPT=rfc822;boss@example.org"@example.org>`,
			wantMail: "MAIL FROM:<alice@example.com>", wantRcpt: `RCPT TO:<"x NOTIFY=NEVER ORCPT=rfc822;boss@example.org"@example.org>`,
			wantLog: `rcpt_to="<\"x NOTIFY=NEVER ORCPT=rfc822;boss@example.org\"@example.org>"`, wantParse: "alice@example.com",
		},
		{
			name: "quote and backslash escaped again",
			mail: `<"a\"b\\c"@example.com>`, rcpt: "<bob@example.org>",
			wantMail: `MAIL FROM:<"a\"b\\c"@example.com>`, wantRcpt: "RCPT TO:<bob@example.org>",
			wantLog: `mail_from="<\"a\\\"b\\\\c\"@example.com>"`, wantParse: `a"b\c@example.com`,
		},
		{
			name: "null reverse path",
			mail: "<>", rcpt: "<bob@example.org>",
			wantMail: "MAIL FROM:<>", wantRcpt: "RCPT TO:<bob@example.org>",
			wantLog: `mail_from=<>`, wantParse: "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			h := newHarness(t, withLog(&logs))
			r := h.authed(t)
			r.expect("MAIL FROM:"+tc.mail, 250)
			r.expect("RCPT TO:"+tc.rcpt, 250)
			r.expect("DATA", 354)
			r.expect(plainMsg+".", 250)
			got := h.nh.ReceivedCommands()
			if len(got) != 2 || got[0] != tc.wantMail || got[1] != tc.wantRcpt {
				t.Fatalf("next hop received %q, want %q and %q", got, tc.wantMail, tc.wantRcpt)
			}
			if d := h.nh.Received(); len(d) != 1 || d[0].From != tc.wantParse {
				t.Errorf("next hop parsed the sender as %q, want %q", d[0].From, tc.wantParse)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log lacks %s:\n%s", tc.wantLog, logs.String())
			}
		})
	}
}

func TestUnwritableAddressesRefused(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, cmd, want string
	}{
		{"angle brackets in the sender", `MAIL FROM:<"bounce> AUTH=<ceo@victim.example>"@out.example.net>`, "501 5.1.7"},
		{"NUL in the sender", "MAIL FROM:<\"a\x00b\"@example.com>", "501 5.1.7"},
		{"bare CR in the sender", "MAIL FROM:<\"a\rb\"@example.com>", "501 5.1.7"},
		{"tab in the sender", "MAIL FROM:<\"a\tb\"@example.com>", "501 5.1.7"},
		{"angle brackets in a recipient", `RCPT TO:<"x> NOTIFY=NEVER <y"@example.org>`, "501 5.1.3"},
		{"bare CR in a recipient", "RCPT TO:<\"x\ry\"@example.org>", "501 5.1.3"},
		{"NUL in a recipient", "RCPT TO:<\"x\x00y\"@example.org>", "501 5.1.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.authed(t)
			if strings.HasPrefix(tc.cmd, "RCPT") {
				r.expect("MAIL FROM:<alice@example.com>", 250)
			}
			if got := r.cmd(tc.cmd); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%q: got %q, want %s", tc.cmd, got, tc.want)
			}
			// The session goes on.
			r.expect("RSET", 250)
			r.expect("NOOP", 250)
		})
	}
	for _, c := range h.nh.ReceivedCommands() {
		if c != "MAIL FROM:<alice@example.com>" {
			t.Errorf("next hop received %q", c)
		}
	}
}

func TestReceivedNamesIPv6AsAddressLiteral(t *testing.T) {
	s := &session{srv: &Server{opts: Options{Hostname: "outguard.test", Now: func() time.Time { return time.Unix(0, 0).UTC() }}}}
	cases := []struct{ client, want string }{
		{"[2001:db8::1]:2525", "from c.test ([IPv6:2001:db8::1])"},
		{"[::ffff:192.0.2.7]:2525", "from c.test ([192.0.2.7])"},
		{"192.0.2.7:2525", "from c.test ([192.0.2.7])"},
	}
	for _, tc := range cases {
		tx := &Transaction{ID: "T1", Helo: "c.test", Client: netip.MustParseAddrPort(tc.client), Rcpts: []Recipient{{Addr: "a b@example.org"}}}
		got := s.received(tx)
		if !strings.Contains(got, tc.want) {
			t.Errorf("client %s: Received is %q, want it to contain %q", tc.client, got, tc.want)
		}
		if !strings.Contains(got, `for <"a b"@example.org>`) {
			t.Errorf("Received %q: the recipient is not written as a path", got)
		}
	}
}

func TestReceivedOverIPv6(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
			t.Fatalf("no IPv6 loopback: %v", err)
		}
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	h := newHarness(t, func(_ *Options, lo *ListenerOptions) { lo.Address = "[::1]:0" })
	r := h.openTx(t)
	r.expect("DATA", 354)
	r.expect(plainMsg+".", 250)
	d := h.nh.Received()
	if len(d) != 1 {
		t.Fatalf("next hop got %d messages, want 1", len(d))
	}
	if !bytes.HasPrefix(d[0].Data, []byte("Received: from c.test ([IPv6:::1])\r\n")) {
		t.Errorf("next hop got %q, want a Received header naming [IPv6:::1]", d[0].Data)
	}
}

// TestDeliverQuotesAddresses covers the other way addresses reach the
// wire: releases from the quarantine and reports go through Deliver.
func TestDeliverQuotesAddresses(t *testing.T) {
	nh := testutil.StartNextHop(t)
	hop, err := NewSMTPNextHop(NextHopOptions{Address: nh.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer hop.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Deliver(ctx, hop, "a b@example.com", []string{`c"d@example.org`}, []byte(plainMsg)); err != nil {
		t.Fatal(err)
	}
	want := []string{`MAIL FROM:<"a b"@example.com> SIZE=105`, `RCPT TO:<"c\"d"@example.org>`}
	if got := nh.ReceivedCommands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("next hop received %q, want %q", got, want)
	}
	err = Deliver(ctx, hop, "a@example.com", []string{"x@example.org> NOTIFY=NEVER"}, []byte(plainMsg))
	if codeOf(err) != 501 {
		t.Errorf("unwritable recipient: %v, want 501", err)
	}
	if n := len(nh.Received()); n != 1 {
		t.Errorf("next hop got %d messages, want 1", n)
	}
}

// TestReceivedHeaderText pins the Received header's text (RFC 5321
// section 4.4), with and without a single recipient.
func TestReceivedHeaderText(t *testing.T) {
	now := time.Date(2026, 11, 30, 16, 4, 5, 0, time.FixedZone("", 3600))
	s := &session{srv: &Server{opts: Options{Hostname: "relay.test", Now: func() time.Time { return now }}}}
	tx := &Transaction{ID: "01ABC", Client: netip.MustParseAddrPort("192.0.2.7:2525"), Helo: "client.test", TLS: true, AuthName: "alice",
		Rcpts: []Recipient{{Addr: "bob@example.org", Code: 250}}}
	want := "Received: from client.test ([192.0.2.7])\r\n\tby relay.test (outguard) with ESMTPSA id 01ABC\r\n\tfor <bob@example.org>;\r\n\tMon, 30 Nov 2026 16:04:05 +0100\r\n"
	if got := s.received(tx); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	tx.TLS, tx.AuthName = false, ""
	tx.Rcpts = append(tx.Rcpts, Recipient{Addr: "carol@example.org", Code: 250})
	want = "Received: from client.test ([192.0.2.7])\r\n\tby relay.test (outguard) with ESMTP id 01ABC;\r\n\tMon, 30 Nov 2026 16:04:05 +0100\r\n"
	if got := s.received(tx); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
