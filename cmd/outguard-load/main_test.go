package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/loadmsg"
)

// wireServer is an SMTP server that records what each transaction sent on
// the wire: its commands and its message bytes.
type wireServer struct {
	addr     string
	chunking bool

	mu   sync.Mutex
	txs  []wireTx
	cmds []string
}

type wireTx struct {
	bdat []string // the BDAT command lines, or nil for DATA
	msg  []byte
}

func startWireServer(t *testing.T, chunking bool) *wireServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &wireServer{addr: ln.Addr().String(), chunking: chunking}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *wireServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(l string) { io.WriteString(c, l+"\r\n") }
	reply("220 wire ready")
	var cur wireTx
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f := strings.Fields(line)
		if len(f) == 0 {
			reply("500 empty")
			continue
		}
		s.mu.Lock()
		s.cmds = append(s.cmds, line)
		s.mu.Unlock()
		switch strings.ToUpper(f[0]) {
		case "EHLO":
			if s.chunking {
				reply("250-wire\r\n250-PIPELINING\r\n250 CHUNKING")
			} else {
				reply("250-wire\r\n250 PIPELINING")
			}
		case "MAIL", "RCPT":
			reply("250 ok")
		case "BDAT":
			n, err := strconv.Atoi(f[1])
			if err != nil || !s.chunking {
				reply("500 bad BDAT")
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			cur.bdat = append(cur.bdat, line)
			cur.msg = append(cur.msg, buf...)
			if len(f) > 2 && strings.EqualFold(f[2], "LAST") {
				s.done(cur)
				cur = wireTx{}
			}
			reply("250 chunk ok")
		case "DATA":
			reply("354 go on")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				cur.msg = append(cur.msg, strings.TrimPrefix(l, ".")...)
			}
			s.done(cur)
			cur = wireTx{}
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not here")
		}
	}
}

func (s *wireServer) done(tx wireTx) {
	s.mu.Lock()
	s.txs = append(s.txs, tx)
	s.mu.Unlock()
}

func (s *wireServer) transactions() []wireTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wireTx(nil), s.txs...)
}

// wantMessage is the message outguard-load sends as identity n.
func wantMessage(size, n int) []byte {
	return append([]byte(fmt.Sprintf("X-AuthUser: loader-%d\r\n", n)), loadmsg.Message(size)...)
}

func runLoad(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String() + errb.String()
}

func TestBDATSendsChunks(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		count int // BDAT commands per message
	}{
		{"one chunk", nil, 1},
		{"chunks pipelined", []string{"--chunk", "1000"}, 6},
		{"chunks in lockstep", []string{"--chunk", "1000", "--no-pipelining"}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startWireServer(t, true)
			args := append([]string{"--addr", srv.addr, "-c", "2", "-m", "4", "-s", "5120", "--identities", "1", "--bdat"}, c.args...)
			if code, out := runLoad(t, args...); code != 0 {
				t.Fatalf("exit %d: %s", code, out)
			}
			txs := srv.transactions()
			if len(txs) != 4 {
				t.Fatalf("%d transactions, want 4", len(txs))
			}
			want := wantMessage(5120, 0)
			for _, tx := range txs {
				if len(tx.bdat) != c.count || !strings.HasSuffix(tx.bdat[len(tx.bdat)-1], " LAST") {
					t.Errorf("BDAT commands %q, want %d ending with LAST", tx.bdat, c.count)
				}
				if !bytes.Equal(tx.msg, want) {
					t.Errorf("message of %d bytes differs from the %d sent", len(tx.msg), len(want))
				}
			}
		})
	}
}

func TestDATAByDefault(t *testing.T) {
	srv := startWireServer(t, true)
	if code, out := runLoad(t, "--addr", srv.addr, "-c", "1", "-m", "2", "-s", "2000", "--identities", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, tx := range srv.transactions() {
		if tx.bdat != nil || !bytes.Equal(tx.msg, wantMessage(2000, 0)) {
			t.Errorf("BDAT %q, message %q", tx.bdat, tx.msg)
		}
	}
}

func TestBDATNeedsChunking(t *testing.T) {
	srv := startWireServer(t, false)
	code, out := runLoad(t, "--addr", srv.addr, "-c", "1", "-m", "1", "--bdat")
	if code != 1 || !strings.Contains(out, "does not offer CHUNKING") {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, c := range srv.cmds {
		if strings.HasPrefix(c, "BDAT") || strings.HasPrefix(c, "MAIL") {
			t.Errorf("sent %q to a server without CHUNKING", c)
		}
	}
}

// goSMTPBackend keeps the messages a go-smtp server received.
type goSMTPBackend struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (b *goSMTPBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &goSMTPSession{b: b}, nil
}

type goSMTPSession struct{ b *goSMTPBackend }

func (s *goSMTPSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *goSMTPSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *goSMTPSession) Reset()                               {}
func (s *goSMTPSession) Logout() error                        { return nil }
func (s *goSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, b)
	s.b.mu.Unlock()
	return nil
}

// TestBDATToGoSMTP sends BDAT to go-smtp, the server outguard is built on.
func TestBDATToGoSMTP(t *testing.T) {
	be := &goSMTPBackend{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if code, out := runLoad(t, "--addr", ln.Addr().String(), "-c", "3", "-m", "9", "-s", "51200", "--identities", "1", "--bdat", "--chunk", "16384"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 9 {
		t.Fatalf("%d messages received, want 9", len(be.msgs))
	}
	for _, m := range be.msgs {
		if !bytes.Equal(m, wantMessage(51200, 0)) {
			t.Errorf("message of %d bytes differs from the one sent", len(m))
		}
	}
}

// With --hold every session greets the server before any of them sends
// MAIL, the tool says when all are connected, and every message goes.
func TestHoldConnectsEverySessionFirst(t *testing.T) {
	srv := startWireServer(t, false)
	code, out := runLoad(t, "--addr", srv.addr, "-c", "5", "-m", "5", "-s", "500", "--hold", "1ms")
	if code != 0 || !strings.Contains(out, "connected 5") || !strings.Contains(out, "ok 5 failed 0") {
		t.Fatalf("exit %d: %s", code, out)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	ehlos, mailSeen := 0, false
	for _, c := range srv.cmds {
		switch {
		case strings.HasPrefix(c, "EHLO"):
			if mailSeen {
				t.Errorf("a session said EHLO after another had sent MAIL: %q", srv.cmds)
			}
			ehlos++
		case strings.HasPrefix(c, "MAIL"):
			mailSeen = true
		}
	}
	if ehlos != 5 {
		t.Errorf("%d sessions, want 5", ehlos)
	}
}

// --addr with two servers spreads the sessions over them, one session in
// two each, and counts what each accepted.
func TestSeveralAddressesTakeSessionsInTurn(t *testing.T) {
	a, b := startWireServer(t, false), startWireServer(t, false)
	code, out := runLoad(t, "--addr", a.addr+","+b.addr, "-c", "4", "-m", "40", "-s", "500", "--hold", "1ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var res result
	if err := json.Unmarshal([]byte(out[:strings.IndexByte(out, '\n')]), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.OK != 40 || res.Failed != 0 {
		t.Fatalf("ok %d failed %d, want 40 and 0", res.OK, res.Failed)
	}
	for _, s := range []*wireServer{a, b} {
		s.mu.Lock()
		ehlos := 0
		for _, c := range s.cmds {
			if strings.HasPrefix(c, "EHLO") {
				ehlos++
			}
		}
		s.mu.Unlock()
		if ehlos != 2 {
			t.Errorf("server %s: %d sessions, want 2", s.addr, ehlos)
		}
		if got := len(s.transactions()); got != res.PerAddr[s.addr] {
			t.Errorf("server %s received %d messages, per_addr says %d", s.addr, got, res.PerAddr[s.addr])
		}
	}
	if res.PerAddr[a.addr]+res.PerAddr[b.addr] != 40 {
		t.Errorf("per_addr %v does not add up to 40", res.PerAddr)
	}
}

func TestEmptyAddressIsRefused(t *testing.T) {
	if code, out := runLoad(t, "--addr", "127.0.0.1:1,", "-m", "1"); code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, out)
	}
}
