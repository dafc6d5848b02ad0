// Package testutil holds test helpers shared by outguard's packages: a
// real go-smtp next hop on 127.0.0.1:0 that records what it receives and
// can be told to refuse, plus small helpers. Imported by tests only.
package testutil

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/bdatsync"
)

// Delivery is one message a NextHop accepted.
type Delivery struct {
	From  string
	Rcpts []string
	Data  []byte
	Opts  smtp.MailOptions
}

// NextHop is a real SMTP server on 127.0.0.1:0 that records deliveries.
// Its error fields inject failures; set them before the commands run (or
// under Lock).
type NextHop struct {
	Addr string

	mu sync.Mutex
	// RefuseRcpt maps a recipient to the error its RCPT gets.
	RefuseRcpt map[string]*smtp.SMTPError
	// RcptRule, when set, decides each RCPT not in RefuseRcpt: a non-nil
	// error refuses it, as a receiving MTA's recipient checks do.
	RcptRule func(to string) *smtp.SMTPError
	// DataRule, when set, decides each message after DATA: a non-nil
	// error refuses it, as a receiver's content filter does.
	DataRule func(data []byte) *smtp.SMTPError
	// MailErr, DataErr fail MAIL and the final DATA reply.
	MailErr, DataErr *smtp.SMTPError
	// Deliveries are the accepted messages, in order.
	Deliveries []Delivery
	// Counters. BDATs counts BDAT commands (plaintext sessions only).
	Conns, Mails, Resets, BDATs int
	// Commands are the MAIL and RCPT command lines exactly as they
	// arrived, without CRLF, recorded before go-smtp parses them
	// (plaintext sessions only: recording stops at STARTTLS).
	Commands []string

	srv        *smtp.Server
	ln         net.Listener
	user, pass string
	// TLSSeen counts MAIL commands received over TLS; Authed those
	// after AUTH.
	TLSSeen, Authed int
}

// StartNextHop starts a next hop and stops it with t.Cleanup.
func StartNextHop(t testing.TB) *NextHop { return StartNextHopAt(t, "127.0.0.1:0") }

// NextHopOptions configure StartNextHopWith.
type NextHopOptions struct {
	// TLSConfig enables STARTTLS.
	TLSConfig *tls.Config
	// Username and Password, when set, make AUTH PLAIN required before
	// MAIL.
	Username, Password string
	// MaxMessageBytes, when set, replaces the 64 MiB message limit.
	MaxMessageBytes int64
}

// StartNextHopWith starts a next hop offering STARTTLS and requiring AUTH
// as o says.
func StartNextHopWith(t testing.TB, o NextHopOptions) *NextHop {
	h := StartNextHopAt(t, "127.0.0.1:0")
	h.srv.TLSConfig = o.TLSConfig
	h.srv.AllowInsecureAuth = false
	h.user, h.pass = o.Username, o.Password
	if o.MaxMessageBytes > 0 {
		h.srv.MaxMessageBytes = o.MaxMessageBytes
	}
	return h
}

// StartNextHopAt starts a next hop on addr (a port freed earlier, to bring
// a "down" relay back).
func StartNextHopAt(t testing.TB, addr string) *NextHop {
	t.Helper()
	h := &NextHop{RefuseRcpt: map[string]*smtp.SMTPError{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		h.mu.Lock()
		h.Conns++
		h.mu.Unlock()
		_, tlsOn := c.TLSConnectionState()
		return &nhSession{h: h, tls: tlsOn}, nil
	}))
	s.Domain = "nexthop.test"
	s.AllowInsecureAuth = true
	s.EnableSMTPUTF8 = true
	s.MaxMessageBytes = 64 << 20
	s.MaxRecipients = 10000
	// Like Postfix, take message lines of any length.
	s.MaxLineLength = 0
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h.srv, h.ln, h.Addr = s, ln, ln.Addr().String()
	go s.Serve(&tapListener{Listener: ln, h: h})
	t.Cleanup(func() { s.Close() })
	return h
}

// DeadAddr returns the address of a listener that closes every
// connection at once, as a crashed service behind a live port does. It
// keeps its port for the whole test, so no other process can take it.
func DeadAddr(t testing.TB) string {
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
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// Stop closes the next hop, so that new connections are refused.
func (h *NextHop) Stop() {
	h.ln.Close() // Serve may not have registered the listener yet
	h.srv.Close()
}

// Lock and Unlock guard the fields for tests that change them while mail
// flows.
func (h *NextHop) Lock()   { h.mu.Lock() }
func (h *NextHop) Unlock() { h.mu.Unlock() }

// Received returns a copy of the deliveries so far.
func (h *NextHop) Received() []Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Delivery(nil), h.Deliveries...)
}

// WaitDeliveries waits until n deliveries arrived or d passed, and returns
// them.
func (h *NextHop) WaitDeliveries(n int, d time.Duration) []Delivery {
	deadline := time.Now().Add(d)
	for {
		got := h.Received()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type nhSession struct {
	h      *NextHop
	tls    bool
	authed bool
	from   string
	opts   smtp.MailOptions
	rcpts  []string
	// bdat is the last BDAT transfer: Reset waits for go-smtp's
	// goroutine to be done with it, as smtpd's session does.
	bdat bdatsync.Transfer
}

func (s *nhSession) Reset() {
	s.bdat.Wait()
	s.h.mu.Lock()
	if s.from != "" {
		s.h.Resets++
	}
	s.h.mu.Unlock()
	s.from, s.rcpts = "", nil
}

func (s *nhSession) Logout() error { return nil }

func (s *nhSession) AuthMechanisms() []string {
	if s.h.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *nhSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.h.user || password != s.h.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *nhSession) Mail(from string, opts *smtp.MailOptions) error {
	s.bdat.Wait() // a transfer reset before its Data began ("BDAT 0", RSET)
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.Mails++
	if s.h.user != "" && !s.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if s.tls {
		s.h.TLSSeen++
	}
	if s.authed {
		s.h.Authed++
	}
	if s.h.MailErr != nil {
		return s.h.MailErr
	}
	s.from = from
	if opts != nil {
		s.opts = *opts
	}
	return nil
}

func (s *nhSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if e, ok := s.h.RefuseRcpt[to]; ok {
		return e
	}
	if s.h.RcptRule != nil {
		if e := s.h.RcptRule(to); e != nil {
			return e
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *nhSession) Data(r io.Reader) error {
	_, end := s.bdat.Begin(r)
	defer end()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if s.h.DataErr != nil {
		return s.h.DataErr
	}
	if s.h.DataRule != nil {
		if e := s.h.DataRule(b); e != nil {
			return e
		}
	}
	s.h.Deliveries = append(s.h.Deliveries, Delivery{From: s.from, Rcpts: append([]string(nil), s.rcpts...), Data: b, Opts: s.opts})
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as NH" + itoa(len(s.h.Deliveries))}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

// StripReceived removes the first Received header field (with its
// continuation lines) from raw: what outguard prepends.
func StripReceived(raw []byte) ([]byte, error) {
	if !bytes.HasPrefix(raw, []byte("Received:")) {
		return nil, errors.New("message does not start with a Received header")
	}
	i := 0
	for {
		j := bytes.Index(raw[i:], []byte("\r\n"))
		if j < 0 {
			return nil, errors.New("unterminated Received header")
		}
		i += j + 2
		if i >= len(raw) || (raw[i] != ' ' && raw[i] != '\t') {
			return raw[i:], nil
		}
	}
}

// CRLF turns "\n" line endings into "\r\n".
func CRLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// tapListener hands out connections whose reads feed a commandTap.
type tapListener struct {
	net.Listener
	h *NextHop
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, tap: &commandTap{h: l.h}}, nil
}

type tapConn struct {
	net.Conn
	tap *commandTap
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.tap.feed(b[:n])
	return n, err
}

// commandTap splits the client's stream into lines and records MAIL and
// RCPT commands, skipping DATA content (up to the "." line) and BDAT
// chunks (their octet count), and counts BDAT commands. The client is
// outguard's own next-hop client, which sends DATA content only after a
// 354.
type commandTap struct {
	h      *NextHop
	line   []byte
	inData bool
	off    bool
	skip   int // octets of a BDAT chunk still to come
}

func (t *commandTap) feed(b []byte) {
	for _, c := range b {
		if t.off {
			return
		}
		if t.skip > 0 {
			t.skip--
			continue
		}
		if c != '\n' {
			if len(t.line) < 1<<16 {
				t.line = append(t.line, c)
			}
			continue
		}
		l := strings.TrimSuffix(string(t.line), "\r")
		t.line = t.line[:0]
		u := strings.ToUpper(l)
		switch {
		case t.inData:
			t.inData = l != "."
		case u == "DATA":
			t.inData = true
		case u == "STARTTLS":
			t.off = true
		case strings.HasPrefix(u, "BDAT "):
			f := strings.Fields(u)
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.off = true
				break
			}
			t.skip = n
			t.h.mu.Lock()
			t.h.BDATs++
			t.h.mu.Unlock()
		case strings.HasPrefix(u, "MAIL ") || strings.HasPrefix(u, "RCPT "):
			t.h.mu.Lock()
			t.h.Commands = append(t.h.Commands, l)
			t.h.mu.Unlock()
		}
	}
}

// ReceivedCommands returns a copy of Commands.
func (h *NextHop) ReceivedCommands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.Commands...)
}
