package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/internal/tlsutil"
)

// fakeAuth knows users by password and by network.
type fakeAuth struct {
	passwords map[string]string
	networks  map[netip.Prefix]*User
	calls     int
	mu        sync.Mutex
}

func (a *fakeAuth) Authenticate(ctx context.Context, u, p string) (*User, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if want, ok := a.passwords[u]; ok && want == p {
		return &User{Name: u, Domain: "out.example.net"}, nil
	}
	return nil, fmt.Errorf("user %q: %w", u, ErrAuthFailed)
}

func (a *fakeAuth) UserForAddress(ip netip.Addr) (*User, bool) {
	for p, u := range a.networks {
		if p.Contains(ip) {
			return u, true
		}
	}
	return nil, false
}

// fakePolicy refuses messages whose subject contains "REFUSE", defers
// those with "DEFER", and records the results it is given.
type fakePolicy struct {
	mu      sync.Mutex
	results []Result
	mailErr error
	begins  int
}

func (p *fakePolicy) Begin(ctx context.Context, tx *Transaction) (Check, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.begins++
	if p.mailErr != nil {
		return nil, p.mailErr
	}
	return &fakeCheck{p: p}, nil
}

type fakeCheck struct{ p *fakePolicy }

func (c *fakeCheck) Data(ctx context.Context, tx *Transaction, msg *Message) (Decision, error) {
	switch {
	case bytes.Contains(msg.Header, []byte("REFUSE")):
		return Decision{Action: Refuse, Outcome: OutcomeQuarantined, Reply: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "[OG-SPAM] message refused as spam (id " + tx.ID + ")"}}, nil
	case bytes.Contains(msg.Header, []byte("DEFER")):
		return Decision{}, fmt.Errorf("scanner down: %w", ErrTempfail)
	case bytes.Contains(msg.Header, []byte("STRIP")):
		return Decision{Action: Relay, StripHeaders: []string{"X-AuthUser"}, AddHeaders: []string{"X-Trace: abc"}}, nil
	}
	return Decision{Action: Relay}, nil
}

func (c *fakeCheck) Close(tx *Transaction, msg *Message, res Result) {
	c.p.mu.Lock()
	c.p.results = append(c.p.results, res)
	c.p.mu.Unlock()
}

func (p *fakePolicy) Results() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Result(nil), p.results...)
}

type harness struct {
	t      testing.TB
	srv    *Server
	addr   string
	nh     *testutil.NextHop
	hop    *SMTPNextHop
	policy *fakePolicy
	auth   *fakeAuth
}

type harnessOpt func(*Options, *ListenerOptions)

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	nh := testutil.StartNextHop(t)
	hop, err := NewSMTPNextHop(NextHopOptions{Address: nh.Addr, PoolSize: 4, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hop.Close() })
	h := &harness{t: t, nh: nh, hop: hop, policy: &fakePolicy{},
		auth: &fakeAuth{passwords: map[string]string{"alice": "secret"}, networks: map[netip.Prefix]*User{}}}
	o := Options{
		Hostname: "outguard.test",
		Auth:     h.auth,
		Policy:   h.policy,
		NextHop:  hop,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	lo := ListenerOptions{Name: "test", Address: "127.0.0.1:0", AllowInsecureAuth: true}
	for _, f := range opts {
		f(&o, &lo)
	}
	hop.opts.Metrics = o.Metrics
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen(lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	h.srv, h.addr = srv, addr.String()
	return h
}

func (h *harness) client() *smtp.Client {
	h.t.Helper()
	c, err := smtp.Dial(h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) authedClient() *smtp.Client {
	c := h.client()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		h.t.Fatalf("AUTH: %v", err)
	}
	return c
}

func codeOf(err error) int {
	var e *smtp.SMTPError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

const plainMsg = "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob.\r\n"

func TestRelayByteForByte(t *testing.T) {
	h := newHarness(t)
	c := h.authedClient()
	if err := c.SendMail("alice@example.com", []string{"bob@example.org", "carol@example.org"}, strings.NewReader(plainMsg)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	got := h.nh.Received()
	if len(got) != 1 {
		t.Fatalf("next hop got %d messages, want 1", len(got))
	}
	d := got[0]
	if d.From != "alice@example.com" || strings.Join(d.Rcpts, ",") != "bob@example.org,carol@example.org" {
		t.Errorf("envelope = %q %q", d.From, d.Rcpts)
	}
	body, err := testutil.StripReceived(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != plainMsg {
		t.Errorf("next hop got\n%q\nwant\n%q", body, plainMsg)
	}
	if !bytes.Contains(d.Data, []byte("by outguard.test (outguard) with ESMTPA id ")) {
		t.Errorf("Received header missing or wrong:\n%s", d.Data[:200])
	}
	res := h.policy.Results()
	if len(res) != 1 || res[0].Outcome != OutcomeAccepted || res[0].NextHopReply != "Ok: queued as NH1" {
		t.Errorf("results = %+v", res)
	}
}

func TestFinalReplyCarriesNextHopTextAndID(t *testing.T) {
	h := newHarness(t)
	r := h.openTx(t)
	r.expect("DATA", 354)
	line := r.expect(plainMsg+".", 250)
	if !strings.Contains(line, "Ok: queued as NH1 (id ") {
		t.Errorf("final reply %q lacks the next hop's text and the id", line)
	}
}

func TestUnauthenticatedRelayRefused(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name  string
		steps func(r *rawConn) string
	}{
		{"MAIL without AUTH", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			return r.cmd("MAIL FROM:<alice@example.com>")
		}},
		{"HELO then MAIL", func(r *rawConn) string {
			r.expect("HELO c.test", 250)
			return r.cmd("MAIL FROM:<>")
		}},
		{"RCPT without MAIL", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			return r.cmd("RCPT TO:<bob@example.org>")
		}},
		{"after failed AUTH", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")), 535)
			return r.cmd("MAIL FROM:<alice@example.com>")
		}},
		{"after cancelled AUTH", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			r.expect("AUTH LOGIN", 334)
			r.expect("*", 501)
			return r.cmd("MAIL FROM:<alice@example.com>")
		}},
		{"after RSET", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			r.expect("RSET", 250)
			return r.cmd("MAIL FROM:<alice@example.com>")
		}},
		{"DATA without MAIL", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			return r.cmd("DATA")
		}},
		{"AUTH with other authorization identity", func(r *rawConn) string {
			r.expect("EHLO c.test", 250)
			r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("bob\x00alice\x00secret")), 535)
			return r.cmd("MAIL FROM:<alice@example.com>")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, h.addr)
			got := tc.steps(r)
			if got[0] != '5' {
				t.Errorf("got %q, want a 5xx refusal", got)
			}
		})
	}
	if n := len(h.nh.Received()); n != 0 {
		t.Errorf("next hop got %d messages, want 0", n)
	}
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	if got := r.cmd("MAIL FROM:<a@b.c>"); !strings.HasPrefix(got, "530 5.7.0") {
		t.Errorf("MAIL before AUTH = %q, want 530 5.7.0", got)
	}
}

func TestNetworkUserRelaysWithoutAuth(t *testing.T) {
	h := newHarness(t)
	h.auth.networks[netip.MustParsePrefix("127.0.0.0/8")] = &User{Name: "webfarm", Domain: "out.example.net"}
	c := h.client()
	if err := c.SendMail("www@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if n := len(h.nh.Received()); n != 1 {
		t.Errorf("next hop got %d, want 1", n)
	}
}

func TestAuthLoginAndFailures(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.AuthFailuresMax = 3 })
	t.Run("LOGIN ok", func(t *testing.T) {
		r := dialRaw(t, h.addr)
		r.expect("EHLO c.test", 250)
		if got := r.expect("AUTH LOGIN", 334); got != "334 "+b64("Username:") {
			t.Errorf("prompt = %q", got)
		}
		r.expect(b64("alice"), 334)
		r.expect(b64("secret"), 235)
		r.expect("MAIL FROM:<alice@example.com>", 250)
	})
	t.Run("LOGIN with initial response", func(t *testing.T) {
		r := dialRaw(t, h.addr)
		r.expect("EHLO c.test", 250)
		r.expect("AUTH LOGIN "+b64("alice"), 334)
		r.expect(b64("secret"), 235)
	})
	t.Run("wrong password 535 then throttled 421 and closed", func(t *testing.T) {
		r := dialRaw(t, h.addr)
		r.expect("EHLO c.test", 250)
		for i := 0; i < 2; i++ {
			if got := r.cmd("AUTH PLAIN " + b64("\x00alice\x00nope")); !strings.HasPrefix(got, "535 5.7.8") {
				t.Fatalf("attempt %d: %q, want 535 5.7.8", i, got)
			}
		}
		if got := r.cmd("AUTH PLAIN " + b64("\x00alice\x00nope")); !strings.HasPrefix(got, "421 4.7.0") {
			t.Fatalf("third failure: %q, want 421 4.7.0", got)
		}
		if _, err := r.r.ReadString('\n'); err == nil {
			t.Errorf("connection still open after 421")
		}
		// A new connection from the same IP is refused at AUTH too, even
		// with the right password.
		r2 := dialRaw(t, h.addr)
		r2.expect("EHLO c.test", 250)
		if got := r2.cmd("AUTH PLAIN " + b64("\x00alice\x00secret")); !strings.HasPrefix(got, "421 4.7.0") {
			t.Errorf("after throttling: %q, want 421", got)
		}
	})
}

func TestAuthNotOfferedBeforeTLS(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		lo.AllowInsecureAuth = false
		lo.TLSConfig = testTLSConfig(t)
	})
	r := dialRaw(t, h.addr)
	ehlo := r.expect("EHLO c.test", 250)
	if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO before TLS = %q, want STARTTLS and no AUTH", ehlo)
	}
	if got := r.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))); !strings.HasPrefix(got, "523 5.7.10") {
		t.Errorf("AUTH before TLS = %q, want 523 5.7.10", got)
	}
	// After STARTTLS it works.
	c, err := smtp.DialStartTLS(h.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}
	if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg)); err != nil {
		t.Fatal(err)
	}
	d := h.nh.Received()
	if len(d) != 1 || !bytes.Contains(d[0].Data, []byte("with ESMTPSA")) {
		t.Errorf("deliveries = %d, want 1 with ESMTPSA", len(d))
	}
	if n := h.srv.fastTransfers.Load(); n != 0 {
		t.Errorf("the session read %d transfers after STARTTLS itself", n)
	}
	// The 221 to QUIT arrives before the TLS connection closes.
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT over TLS: %v", err)
	}
}

func TestRefusedRecipientAtRcpt(t *testing.T) {
	h := newHarness(t)
	h.nh.RefuseRcpt["nobody@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	h.nh.RefuseRcpt["full@example.org"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	r := h.openTx(t)
	if got := r.cmd("RCPT TO:<nobody@example.org>"); got != "550 5.1.1 No such user here" {
		t.Errorf("refused RCPT = %q, want the next hop's reply", got)
	}
	if got := r.cmd("RCPT TO:<full@example.org>"); got != "452 4.2.2 Mailbox full" {
		t.Errorf("deferred RCPT = %q", got)
	}
	r.expect("RCPT TO:<carol@example.org>", 250)
	r.expect("DATA", 354)
	r.expect(plainMsg+".", 250)
	d := h.nh.Received()
	if len(d) != 1 || strings.Join(d[0].Rcpts, ",") != "bob@example.org,carol@example.org" {
		t.Fatalf("deliveries = %+v, want one to bob and carol", d)
	}
}

func TestNextHopDownNeverSays250(t *testing.T) {
	h := newHarness(t)
	h.nh.Stop()
	for i := 0; i < 3; i++ {
		c := h.authedClient()
		err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg))
		if code := codeOf(err); code != 451 {
			t.Fatalf("message %d: err %v, want 451", i, err)
		}
		if !strings.Contains(err.Error(), "4.4.1") && !strings.Contains(fmt.Sprint(err.(*smtp.SMTPError).EnhancedCode), "4 4 1") {
			t.Errorf("err = %v, want 4.4.1", err)
		}
	}
}

func TestNextHopFailuresAtData(t *testing.T) {
	cases := []struct {
		name     string
		dataErr  *smtp.SMTPError
		wantCode int
		outcome  string
	}{
		{"5xx passed through", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Content rejected"}, 554, OutcomeFailed},
		{"4xx passed through", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient storage"}, 452, OutcomeDeferred},
	}
	for _, tc := range cases {
		// The message goes to the next hop with BDAT (it offers
		// CHUNKING) or, with next_hop.chunking off, with DATA.
		for _, noChunking := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/next hop DATA %v", tc.name, noChunking), func(t *testing.T) {
				h := newHarness(t)
				h.hop.conn.NoChunking = noChunking
				h.nh.DataErr = tc.dataErr
				c := h.authedClient()
				err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg))
				if codeOf(err) != tc.wantCode {
					t.Fatalf("got %v, want %d", err, tc.wantCode)
				}
				if !strings.Contains(err.Error(), tc.dataErr.Message) {
					t.Errorf("reply %q lacks the next hop's text", err)
				}
				res := h.policy.Results()
				if len(res) != 1 || res[0].Outcome != tc.outcome {
					t.Errorf("results = %+v, want one %s", res, tc.outcome)
				}
				// The connection was reset and went back to the pool: the
				// next message takes it and is relayed.
				h.nh.Lock()
				h.nh.DataErr = nil
				h.nh.Unlock()
				if err := h.authedClient().SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg)); err != nil {
					t.Fatalf("the next message: %v", err)
				}
				h.nh.Lock()
				defer h.nh.Unlock()
				if h.nh.Conns != 1 || len(h.nh.Deliveries) != 1 {
					t.Errorf("next hop: %d connections, %d messages; want 1 and 1", h.nh.Conns, len(h.nh.Deliveries))
				}
			})
		}
	}
}

func TestPolicyDecisions(t *testing.T) {
	h := newHarness(t)
	c := h.authedClient()
	msg := strings.Replace(plainMsg, "Subject: hello", "Subject: REFUSE me", 1)
	err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(msg))
	if codeOf(err) != 550 || !strings.Contains(err.Error(), "[OG-SPAM]") {
		t.Fatalf("refused message: %v, want 550 [OG-SPAM]", err)
	}
	msg = strings.Replace(plainMsg, "Subject: hello", "Subject: DEFER me", 1)
	err = c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(msg))
	if codeOf(err) != 451 || !strings.Contains(err.Error(), "4.7.1") && err.(*smtp.SMTPError).EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
		t.Fatalf("deferred message: %v, want 451 4.7.1", err)
	}
	// Stripped: the fields the identity reader reads (internal/header),
	// white space before the colon included (RFC 5322 section 4.5.8);
	// kept: a line whose name is not a field name, which no reader reads.
	msg = "X-AuthUser: web42\r\n X-folded\r\nX-AuthUser : web43\r\nX-AuthUser\v: not a field\r\nSubject: STRIP\r\n\r\nbody\r\n"
	if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	d := h.nh.Received()
	if len(d) != 1 {
		t.Fatalf("next hop got %d messages, want only the stripped one", len(d))
	}
	body, _ := testutil.StripReceived(d[0].Data)
	if want := "X-Trace: abc\r\nX-AuthUser\v: not a field\r\nSubject: STRIP\r\n\r\nbody\r\n"; string(body) != want {
		t.Errorf("relayed %q, want %q", body, want)
	}
	h.nh.Lock()
	resets := h.nh.Resets
	h.nh.Unlock()
	if resets < 2 {
		t.Errorf("next hop saw %d RSETs, want one per refused message", resets)
	}
	outcomes := []string{}
	for _, r := range h.policy.Results() {
		outcomes = append(outcomes, r.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "quarantined,deferred,accepted" {
		t.Errorf("outcomes = %s", got)
	}
}

func TestPipeliningAndSeveralTransactions(t *testing.T) {
	h := newHarness(t)
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
	// Three transactions, the middle one reset, all in one write.
	var b strings.Builder
	for i := 0; i < 3; i++ {
		b.WriteString("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n")
		if i == 1 {
			b.WriteString("RSET\r\n")
			continue
		}
		fmt.Fprintf(&b, "DATA\r\n")
		fmt.Fprintf(&b, "Subject: m%d\r\n\r\nbody %d\r\n.\r\n", i, i)
	}
	b.WriteString("QUIT\r\n")
	r.w.WriteString(b.String())
	r.w.Flush()
	want := []int{250, 250, 354, 250, 250, 250, 250, 250, 250, 354, 250, 221}
	for i, w := range want {
		line := r.readReply()
		if !strings.HasPrefix(line, fmt.Sprint(w)) {
			t.Fatalf("reply %d = %q, want %d", i, line, w)
		}
	}
	d := h.nh.Received()
	if len(d) != 2 || !bytes.Contains(d[0].Data, []byte("body 0")) || !bytes.Contains(d[1].Data, []byte("body 2")) {
		t.Fatalf("deliveries = %d, want m0 and m2", len(d))
	}
	h.nh.Lock()
	defer h.nh.Unlock()
	if h.nh.Conns != 1 {
		t.Errorf("next hop connections = %d, want 1 (pooled)", h.nh.Conns)
	}
}

func TestSmugglingStaysOneMessage(t *testing.T) {
	h := newHarness(t)
	cases := []struct{ name, data string }{
		{"bare LF dot bare LF", "Subject: a\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.org>\nDATA\nSubject: smuggled\n\nboo\r\n"},
		{"LF dot CRLF", "Subject: a\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.com>\r\n"},
		{"CRLF dot LF", "Subject: a\r\n\r\nhello\r\n.\nMAIL FROM:<evil@example.com>\r\n"},
		{"CR dot CR", "Subject: a\r\n\r\nhello\r.\rMAIL FROM:<evil@example.com>\r\n"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.openTx(t)
			r.expect("DATA", 354)
			r.w.WriteString(tc.data)
			r.expect(".", 250)
			d := h.nh.Received()
			if len(d) != i+1 {
				t.Fatalf("next hop has %d messages, want %d", len(d), i+1)
			}
			last := d[len(d)-1]
			if last.From != "alice@example.com" || !bytes.Contains(last.Data, []byte("evil@example.com")) {
				t.Errorf("smuggled command was not kept inside the message: %q", last.Data)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	h := newHarness(t, func(o *Options, _ *ListenerOptions) {
		o.MaxRecipients = 2
		o.MaxMessageBytes = 4096
		o.MaxHeaderBytes = 2048
	})
	t.Run("too many recipients", func(t *testing.T) {
		r := h.openTx(t)
		r.expect("RCPT TO:<c2@example.org>", 250)
		if got := r.cmd("RCPT TO:<c3@example.org>"); !strings.HasPrefix(got, "452 4.5.3") {
			t.Errorf("third RCPT = %q, want 452 4.5.3", got)
		}
	})
	cases := []struct {
		name, data, want string
	}{
		{"message too large", "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 500), "552 5.3.4"},
		{"header line over 998", "Subject: " + strings.Repeat("x", 990) + "\r\n\r\nbody\r\n", "550 5.6.0"},
		{"header block too large", strings.Repeat("X-Pad: "+strings.Repeat("y", 90)+"\r\n", 30) + "\r\nbody\r\n", "552 5.3.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.openTx(t)
			r.expect("DATA", 354)
			r.w.WriteString(tc.data)
			if got := r.cmd("."); !strings.HasPrefix(got, tc.want) {
				t.Errorf("end of data = %q, want %s", got, tc.want)
			}
			// The session goes on.
			r.expect("RSET", 250)
		})
	}
	if n := len(h.nh.Received()); n != 0 {
		t.Errorf("next hop got %d messages, want 0", n)
	}
	// A header line of exactly 998 octets is fine.
	r := h.openTx(t)
	r.expect("DATA", 354)
	r.w.WriteString("Subject: " + strings.Repeat("x", 989) + "\r\n\r\nbody\r\n")
	r.expect(".", 250)
}

func TestConnectionLimits(t *testing.T) {
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.MaxConnectionsPerIP = 2 })
	a := dialRaw(t, h.addr)
	b := dialRaw(t, h.addr)
	_, _ = a, b
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0") {
		t.Errorf("third connection greeted %q, want 421 4.7.0", line)
	}
}

func TestGracefulShutdownLetsTransactionFinish(t *testing.T) {
	h := newHarness(t)
	idle := dialRaw(t, h.addr)
	idle.expect("EHLO idle.test", 250)
	silent := dialRaw(t, h.addr) // greeted, never said EHLO
	r := h.openTx(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	// The idle session is told and closed.
	if got := idle.readReply(); !strings.HasPrefix(got, "421") {
		t.Errorf("idle session got %q, want 421", got)
	}
	if got := silent.readReply(); !strings.HasPrefix(got, "421") {
		t.Errorf("connection without EHLO got %q, want 421", got)
	}
	r.expect("DATA", 354)
	r.expect(plainMsg+".", 250)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(h.nh.Received()); n != 1 {
		t.Errorf("next hop got %d, want the in-flight message", n)
	}
	if _, err := net.Dial("tcp", h.addr); err == nil {
		t.Errorf("still accepting connections after Shutdown")
	}
}

// openTx dials, authenticates as alice and opens a transaction from
// alice@example.com to bob@example.org.
func (h *harness) openTx(t testing.TB) *rawConn {
	t.Helper()
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
	r.expect("MAIL FROM:<alice@example.com>", 250)
	r.expect("RCPT TO:<bob@example.org>", 250)
	return r
}

// rawConn speaks SMTP line by line for protocol-level tests.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := &rawConn{t: t, c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	if g := r.readReply(); !strings.HasPrefix(g, "220") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

// readReply reads one (possibly multi-line) reply and returns it with
// lines joined by "\n".
func (r *rawConn) readReply() string {
	r.t.Helper()
	var lines []string
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading reply: %v (so far %q)", err, lines)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (r *rawConn) cmd(line string) string {
	r.t.Helper()
	r.w.WriteString(line + "\r\n")
	r.w.Flush()
	return r.readReply()
}

func (r *rawConn) expect(line string, code int) string {
	r.t.Helper()
	got := r.cmd(line)
	if !strings.HasPrefix(got, fmt.Sprint(code)) {
		r.t.Fatalf("%q: got %q, want %d", firstLine(line), got, code)
	}
	return got
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return s[:i] + "..."
	}
	return s
}

func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	c, k, err := tlsutil.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return tlsutil.Config(cert)
}

func TestNextHopSTARTTLSAndAuth(t *testing.T) {
	nh := testutil.StartNextHopWith(t, testutil.NextHopOptions{TLSConfig: testTLSConfig(t), Username: "relay", Password: "pw"})
	hop, err := NewSMTPNextHop(NextHopOptions{Address: nh.Addr, TLS: "starttls", InsecureSkipVerify: true, Username: "relay", Password: "pw", PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer hop.Close()
	for i := 0; i < 3; i++ {
		if err := Deliver(context.Background(), hop, "a@example.com", []string{"b@example.org"}, []byte(plainMsg)); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	nh.Lock()
	defer nh.Unlock()
	// go-smtp starts a new session after STARTTLS: one pooled connection
	// makes two sessions.
	if len(nh.Deliveries) != 3 || nh.TLSSeen != 3 || nh.Authed != 3 || nh.Conns != 2 {
		t.Errorf("deliveries %d, over TLS %d, authenticated %d, sessions %d; want 3, 3, 3, 2 (one connection)", len(nh.Deliveries), nh.TLSSeen, nh.Authed, nh.Conns)
	}
	// A next hop without STARTTLS fails a required-TLS configuration.
	plain := testutil.StartNextHop(t)
	hop2, _ := NewSMTPNextHop(NextHopOptions{Address: plain.Addr, TLS: "starttls"})
	defer hop2.Close()
	if err := Deliver(context.Background(), hop2, "a@example.com", []string{"b@example.org"}, []byte(plainMsg)); !errors.Is(err, ErrNextHopUnavailable) {
		t.Errorf("required STARTTLS missing: %v, want ErrNextHopUnavailable", err)
	}
}

func TestSMTPUTF8And8BitMIMEPassedThrough(t *testing.T) {
	h := newHarness(t)
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	r.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")), 235)
	r.expect("MAIL FROM:<jörg@example.com> BODY=8BITMIME SMTPUTF8", 250)
	r.expect("RCPT TO:<zoë@example.org>", 250)
	r.expect("DATA", 354)
	r.expect("Subject: Grüße\r\n\r\nÄpfel\r\n.", 250)
	d := h.nh.Received()
	if len(d) != 1 || d[0].From != "jörg@example.com" || !d[0].Opts.UTF8 || d[0].Opts.Body != smtp.Body8BitMIME {
		t.Fatalf("next hop got %+v, want the UTF-8 envelope with SMTPUTF8 and BODY=8BITMIME", d)
	}
	if !bytes.Contains(d[0].Data, []byte("Äpfel")) {
		t.Errorf("8-bit body changed")
	}
}

func TestImplicitTLSListener(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		lo.TLSConfig, lo.Implicit, lo.AllowInsecureAuth = testTLSConfig(t), true, false
	})
	c, err := smtp.DialTLS(h.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		t.Fatalf("AUTH over implicit TLS: %v", err)
	}
	// Under TLS the connection carries records, so go-smtp's reader
	// (above TLS) reads the message, not the session (fastdata.go).
	msg := plainMsg + "DATA\r\n.. dot\r\n"
	if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if d := h.nh.Received(); len(d) != 1 || !bytes.HasSuffix(d[0].Data, []byte(msg)) {
		t.Fatalf("next hop got %v, want the message ending %q", d, msg)
	}
	if n := h.srv.fastTransfers.Load(); n != 0 {
		t.Errorf("the session read %d TLS transfers itself", n)
	}
}
