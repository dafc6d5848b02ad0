package smtpd

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// gateAuth is an Authenticator whose wrong-password checks block until
// the gate opens, as a slow password hash would; it counts how many run
// at once. The right password ("secret") passes at once.
type gateAuth struct {
	entered chan struct{}
	gate    chan struct{}
	busy    bool // answer ErrAuthBusy instead of checking

	mu          sync.Mutex
	calls       int
	now, peak   int
	openedClose sync.Once
}

func newGateAuth() *gateAuth {
	return &gateAuth{entered: make(chan struct{}, 1000), gate: make(chan struct{})}
}

func (a *gateAuth) open() { a.openedClose.Do(func() { close(a.gate) }) }

func (a *gateAuth) Authenticate(ctx context.Context, u, p string) (*User, error) {
	if a.busy {
		return nil, fmt.Errorf("verifier full: %w", ErrAuthBusy)
	}
	if p == "secret" {
		return &User{Name: u, Domain: "out.example.net"}, nil
	}
	a.mu.Lock()
	a.calls++
	a.now++
	a.peak = max(a.peak, a.now)
	a.mu.Unlock()
	a.entered <- struct{}{}
	<-a.gate
	a.mu.Lock()
	a.now--
	a.mu.Unlock()
	return nil, fmt.Errorf("user %q: %w", u, ErrAuthFailed)
}

func (a *gateAuth) UserForAddress(netip.Addr) (*User, bool) { return nil, false }

func (a *gateAuth) counts() (calls, peak int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, a.peak
}

// dialFrom dials addr from the loopback address local (all of 127/8 is
// loopback on Linux), so that tests can play several clients.
func dialFrom(t *testing.T, local, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := &rawConn{t: t, c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	if g := r.readReply(); !strings.HasPrefix(g, "220") {
		t.Fatalf("greeting %q", g)
	}
	return r
}

// authOnce dials addr from local, says EHLO and AUTH PLAIN alice/pass,
// and returns the reply to AUTH (or what went wrong). It may run outside
// the test's goroutine.
func authOnce(addr, local, pass string) string {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	tc := textprotoConn(c)
	if _, _, err := tc.ReadResponse(220); err != nil {
		return "greeting: " + err.Error()
	}
	if _, err := tc.Cmd("EHLO flood.test"); err != nil {
		return "EHLO: " + err.Error()
	}
	if _, _, err := tc.ReadResponse(250); err != nil {
		return "EHLO: " + err.Error()
	}
	if _, err := tc.Cmd("%s", plainAuth("alice", pass)); err != nil {
		return "AUTH: " + err.Error()
	}
	code, msg, err := tc.ReadResponse(0)
	if err != nil && code == 0 {
		return "AUTH: " + err.Error()
	}
	return fmt.Sprintf("%d %s", code, msg)
}

func textprotoConn(c net.Conn) *textproto.Conn { return textproto.NewConn(c) }

func plainAuth(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

// TestAuthFloodRunsOnlyTheFailuresLeft sends 200 parallel wrong passwords
// from one client: only as many checks as the throttle has failures left
// may run (each costs a password hash's memory), the others wait and then
// get 421; meanwhile another client authenticates and relays.
func TestAuthFloodRunsOnlyTheFailuresLeft(t *testing.T) {
	auth := newGateAuth()
	defer auth.open()
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		o.Auth = auth
		o.AuthFailuresMax = 5
		o.AuthWait = time.Minute
		lo.MaxConnections, lo.MaxConnectionsPerIP = 400, 300
	})
	const flood = 200
	replies := make(chan string, flood)
	for range flood {
		go func() { replies <- authOnce(h.addr, "127.0.0.1", "guess") }()
	}
	for range 5 {
		<-auth.entered
	}

	// With the flood's checks running, another client is served.
	r := dialFrom(t, "127.0.0.2", h.addr)
	r.expect("EHLO other.test", 250)
	r.expect(plainAuth("alice", "secret"), 235)
	r.expect("MAIL FROM:<alice@example.com>", 250)
	r.expect("RCPT TO:<bob@example.org>", 250)
	r.expect("DATA", 354)
	r.expect(plainMsg+".", 250)

	auth.open()
	codes := map[string]int{}
	for range flood {
		r := <-replies
		codes[r[:min(len(r), 9)]]++
	}
	calls, peak := auth.counts()
	if calls != 5 || peak != 5 {
		t.Errorf("%d password checks ran, at most %d at once; want 5 and 5 (auth_failures.max)", calls, peak)
	}
	if codes["535 5.7.8"] != 4 || codes["421 4.7.0"] != flood-4 {
		t.Errorf("replies to the flood: %v, want 4 × 535 5.7.8 and %d × 421 4.7.0", codes, flood-4)
	}
	if n := len(h.nh.Received()); n != 1 {
		t.Errorf("next hop got %d messages, want the other client's", n)
	}
}

// TestAuthWaitEndsIn454: an attempt that finds its client's failures
// taken by attempts in flight waits AuthWait, then gets 454 4.7.0 and may
// try again; it is not counted as a failure.
func TestAuthWaitEndsIn454(t *testing.T) {
	auth := newGateAuth()
	defer auth.open()
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		o.Auth = auth
		o.AuthFailuresMax = 2
		o.AuthWait = 100 * time.Millisecond
	})
	var flood []*rawConn
	for range 2 {
		r := dialRaw(t, h.addr)
		r.expect("EHLO c.test", 250)
		r.w.WriteString(plainAuth("alice", "guess") + "\r\n")
		r.w.Flush()
		flood = append(flood, r)
	}
	<-auth.entered
	<-auth.entered
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	if got := r.cmd(plainAuth("alice", "secret")); !strings.HasPrefix(got, "454 4.7.0") {
		t.Fatalf("AUTH with the client's failures in flight = %q, want 454 4.7.0", got)
	}
	// The checks in flight end, both failed: the failures are used up.
	auth.open()
	var got []string
	for _, f := range flood {
		got = append(got, f.readReply()[:3])
	}
	if strings.Join(got, ",") != "535,421" && strings.Join(got, ",") != "421,535" {
		t.Errorf("the two checks in flight got %v, want 535 and 421", got)
	}
	// The session that got 454 goes on, and is now throttled.
	if got := r.cmd(plainAuth("alice", "secret")); !strings.HasPrefix(got, "421 4.7.0") {
		t.Errorf("AUTH after two failures = %q, want 421 4.7.0", got)
	}
}

// TestAuthBusyIsNot535: when the Authenticator cannot check now, the
// client gets 454 4.7.0, which it retries, and no failure is counted.
func TestAuthBusyIsNot535(t *testing.T) {
	auth := newGateAuth()
	auth.busy = true
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		o.Auth = auth
		o.AuthFailuresMax = 2
	})
	r := dialRaw(t, h.addr)
	r.expect("EHLO c.test", 250)
	for i := range 5 {
		if got := r.cmd(plainAuth("alice", "secret")); !strings.HasPrefix(got, "454 4.7.0") {
			t.Fatalf("attempt %d: %q, want 454 4.7.0", i, got)
		}
	}
	if h.srv.throttle.blocked(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("454 replies were counted as authentication failures")
	}
}

// rcptRecorder is a Policy whose checks keep the transaction's recipient
// record at Close, and that refuses recipients at refuse@.
type rcptRecorder struct {
	mu   sync.Mutex
	seen []Transaction
}

func (p *rcptRecorder) Begin(ctx context.Context, tx *Transaction) (Check, error) {
	return rcptCheck{p}, nil
}

type rcptCheck struct{ p *rcptRecorder }

func (c rcptCheck) Rcpt(ctx context.Context, tx *Transaction, to string) error {
	if strings.HasPrefix(to, "refuse") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Recipient refused by policy"}
	}
	return nil
}

func (c rcptCheck) Data(context.Context, *Transaction, *Message) (Decision, error) {
	return Decision{Action: Relay}, nil
}

func (c rcptCheck) Close(tx *Transaction, _ *Message, _ Result) {
	c.p.mu.Lock()
	c.p.seen = append(c.p.seen, *tx)
	c.p.mu.Unlock()
}

func (p *rcptRecorder) last(t *testing.T) Transaction {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) == 0 {
		t.Fatal("no transaction closed")
	}
	return p.seen[len(p.seen)-1]
}

func TestRecipientAttemptsBounded(t *testing.T) {
	rec := &rcptRecorder{}
	h := newHarness(t, func(o *Options, _ *ListenerOptions) {
		o.Policy = rec
		o.MaxRecipients = 3
		o.MaxRcptRefusals = 1000
	})
	h.nh.RefuseRcpt["nobody@example.org"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	r := h.openTx(t) // bob accepted
	r.expect("RCPT TO:<nobody@example.org>", 550)
	r.expect("RCPT TO:<refuse@example.org>", 550)
	// Three attempts made: refused or not, no more are taken.
	for i := range 10 {
		if got := r.cmd(fmt.Sprintf("RCPT TO:<c%d@example.org>", i)); !strings.HasPrefix(got, "452 4.5.3") {
			t.Fatalf("RCPT %d past the limit = %q, want 452 4.5.3", i, got)
		}
	}
	r.expect("DATA", 354)
	r.expect(plainMsg+".", 250)
	tx := rec.last(t)
	if len(tx.Rcpts) != 3 || tx.RcptsOverLimit != 10 || tx.NumAccepted() != 1 {
		t.Errorf("recorded %d recipients (%d accepted), %d over the limit; want 3 (1 accepted), 10", len(tx.Rcpts), tx.NumAccepted(), tx.RcptsOverLimit)
	}
	d := h.nh.Received()
	if len(d) != 1 || strings.Join(d[0].Rcpts, ",") != "bob@example.org" {
		t.Errorf("deliveries = %+v, want one to bob", d)
	}
}

func TestRefusedRecipientsCloseTheSession(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		o.MaxRcptRefusals = 5
		o.MaxRecipients = 1000
		o.IsFeedbackAddress = func(a string) bool { return a == "fbl@outguard.test" }
		lo.Feedback = true
	})
	h.nh.RefuseRcpt["full@example.org"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	t.Run("feedback listener", func(t *testing.T) {
		r := dialRaw(t, h.addr)
		r.expect("EHLO c.test", 250)
		r.expect("MAIL FROM:<fbl@provider.example>", 250)
		r.expect("RCPT TO:<fbl@outguard.test>", 250)
		// Across transactions: RSET does not start the count again.
		for i := range 5 {
			if i == 3 {
				r.expect("RSET", 250)
				r.expect("MAIL FROM:<fbl@provider.example>", 250)
			}
			r.expect(fmt.Sprintf("RCPT TO:<victim%d@example.org>", i), 530)
		}
		if got := r.cmd("RCPT TO:<fbl@outguard.test>"); !strings.HasPrefix(got, "421 4.7.0") {
			t.Fatalf("RCPT after 5 refusals = %q, want 421 4.7.0", got)
		}
		if _, err := r.r.ReadString('\n'); err == nil {
			t.Errorf("connection still open after 421")
		}
	})
	t.Run("452 is not counted", func(t *testing.T) {
		r := h.openTx(t)
		for range 20 {
			r.expect("RCPT TO:<full@example.org>", 452)
		}
		r.expect("RCPT TO:<carol@example.org>", 250)
		r.expect("DATA", 354)
		r.expect(plainMsg+".", 250)
	})
}

// TestListenersHaveTheirOwnConnectionBudget floods a feedback listener
// with connections: the submission listener still takes mail.
func TestListenersHaveTheirOwnConnectionBudget(t *testing.T) {
	h := newHarness(t, func(o *Options, _ *ListenerOptions) {
		o.MaxConnections = 5
		o.MaxConnectionsPerIP = 5
	})
	fbl, err := h.srv.Listen(ListenerOptions{Name: "feedback", Address: "127.0.0.1:0", Feedback: true})
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for range 10 {
		c, err := net.Dial("tcp", fbl.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.HasPrefix(line, "421 4.7.0") {
			refused++
		}
	}
	if refused != 5 {
		t.Errorf("feedback listener refused %d of 10 connections, want 5", refused)
	}
	c := h.authedClient()
	if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, strings.NewReader(plainMsg)); err != nil {
		t.Fatalf("submission while the feedback listener is full: %v", err)
	}
}

func TestIdleTimeoutBeforeMail(t *testing.T) {
	h := newHarness(t, func(o *Options, lo *ListenerOptions) {
		o.IdleTimeout = time.Minute
		lo.IdleTimeoutBeforeMail = 200 * time.Millisecond
	})
	t.Run("idle before MAIL is closed", func(t *testing.T) {
		r := dialRaw(t, h.addr)
		r.expect("EHLO c.test", 250)
		if got := r.readReply(); !strings.HasPrefix(got, "421 4.4.2") {
			t.Errorf("idle session got %q, want 421 4.4.2", got)
		}
		if _, err := r.r.ReadString('\n'); err == nil {
			t.Errorf("connection still open after the idle timeout")
		}
	})
	t.Run("a transaction has the longer timeout", func(t *testing.T) {
		r := h.openTx(t)
		// Three times the timeout before MAIL: the session must outlive it.
		time.Sleep(600 * time.Millisecond)
		r.expect("RCPT TO:<carol@example.org>", 250)
		r.expect("DATA", 354)
		r.expect(plainMsg+".", 250)
	})
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		bits int
		want string
	}{
		{"192.0.2.7", 64, "192.0.2.7/32"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
	} {
		if got := clientKey(netip.MustParseAddr(tc.ip), tc.bits).String(); got != tc.want {
			t.Errorf("clientKey(%s, %d) = %s, want %s", tc.ip, tc.bits, got, tc.want)
		}
	}
}

func TestIPv6ClientsCountedByPrefix(t *testing.T) {
	a1 := netip.MustParseAddr("2001:db8:0:1::a")
	a2 := netip.MustParseAddr("2001:db8:0:1:ffff::b") // same /64
	b := netip.MustParseAddr("2001:db8:0:2::a")       // next /64
	t.Run("connections", func(t *testing.T) {
		l := newConnLimiter(100, 2, 64)
		for _, ip := range []netip.Addr{a1, a2} {
			if ok, _ := l.acquire(ip); !ok {
				t.Fatalf("acquire(%s) refused", ip)
			}
		}
		if ok, limit := l.acquire(netip.MustParseAddr("2001:db8:0:1::c")); ok || limit != "per_ip" {
			t.Errorf("third address of the /64: ok %v limit %q, want per_ip", ok, limit)
		}
		if ok, _ := l.acquire(b); !ok {
			t.Errorf("another /64 refused")
		}
		l.release(a1)
		l.release(a2)
		l.release(b)
		if len(l.perIP) != 0 || l.total != 0 {
			t.Errorf("after release: %d keys, total %d", len(l.perIP), l.total)
		}
		// With /128, each address is its own client.
		l = newConnLimiter(100, 1, 128)
		for _, ip := range []netip.Addr{a1, a2} {
			if ok, _ := l.acquire(ip); !ok {
				t.Errorf("/128: acquire(%s) refused", ip)
			}
		}
	})
	t.Run("auth throttle", func(t *testing.T) {
		now := time.Unix(1e9, 0)
		th := newAuthThrottle(2, time.Minute, 64, func() time.Time { return now })
		fail := func(ip netip.Addr) bool {
			end, err := th.begin(context.Background(), ip)
			if err != nil {
				t.Fatalf("begin(%s): %v", ip, err)
			}
			return end(true)
		}
		fail(a1)
		if !fail(a2) {
			t.Errorf("two failures in one /64 did not block it")
		}
		if th.blocked(b) {
			t.Errorf("another /64 is blocked")
		}
	})
}

// TestAuthThrottleExpiresOldestFirst: windows end in the order they began,
// each found without a scan, and entries with attempts in flight stay.
func TestAuthThrottleExpiresOldestFirst(t *testing.T) {
	now := time.Unix(1e9, 0)
	th := newAuthThrottle(3, time.Minute, 64, func() time.Time { return now })
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	// Three thousand clients fail once each, a thousand every 30s.
	for i := range 3000 {
		if i > 0 && i%1000 == 0 {
			now = now.Add(30 * time.Second)
		}
		end, err := th.begin(context.Background(), ip(i))
		if err != nil {
			t.Fatal(err)
		}
		end(true)
	}
	// An attempt in flight from the first client.
	end, err := th.begin(context.Background(), ip(0))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second) // the first thousand's windows end
	th.blocked(ip(5000))
	if got := len(th.clients); got != 2001 {
		t.Errorf("%d clients remembered, want 2001 (two windows still open, one attempt in flight)", got)
	}
	if got := len(th.windows) - th.head; got != 2000 {
		t.Errorf("%d windows queued, want 2000", got)
	}
	end(false)
	now = now.Add(time.Hour)
	th.blocked(ip(5000))
	if len(th.clients) != 0 || len(th.windows)-th.head != 0 {
		t.Errorf("after every window ended: %d clients, %d windows", len(th.clients), len(th.windows)-th.head)
	}
}

var _ Authenticator = (*gateAuth)(nil)
