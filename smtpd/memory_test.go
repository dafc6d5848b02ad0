package smtpd

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/testutil"
)

// barrierPolicy holds every message at Data until n messages are there,
// so that all of them are in outguard at once, and notes which were
// spooled.
type barrierPolicy struct {
	n       int
	mu      sync.Mutex
	arrived int
	spooled int
	all     chan struct{}
}

func (p *barrierPolicy) Begin(ctx context.Context, tx *Transaction) (Check, error) {
	return barrierCheck{p}, nil
}

type barrierCheck struct{ p *barrierPolicy }

func (c barrierCheck) Data(ctx context.Context, tx *Transaction, msg *Message) (Decision, error) {
	p := c.p
	p.mu.Lock()
	p.arrived++
	if msg.Spooled() {
		p.spooled++
	}
	if p.arrived == p.n {
		close(p.all)
	}
	p.mu.Unlock()
	select {
	case <-p.all:
	case <-ctx.Done():
		return Decision{}, ctx.Err()
	}
	return Decision{Action: Relay}, nil
}

func (barrierCheck) Close(*Transaction, *Message, Result) {}

// sendRaw sends one message over DATA or BDAT with a raw dialogue and
// returns the final reply, or an error.
func sendRaw(addr string, msg []byte, chunked bool) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewConn(c)
	step := func(code int, format string, args ...any) error {
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				return err
			}
		}
		_, m, err := tp.ReadResponse(code)
		if err != nil {
			return fmt.Errorf("%q: %w (%s)", format, err, m)
		}
		return nil
	}
	if err := step(220, ""); err != nil {
		return "", err
	}
	for _, s := range []struct {
		code int
		line string
	}{
		{250, "EHLO c.test"},
		{235, "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))},
		{250, "MAIL FROM:<alice@example.com>"},
		{250, "RCPT TO:<bob@example.org>"},
	} {
		if err := step(s.code, "%s", s.line); err != nil {
			return "", err
		}
	}
	if chunked {
		fmt.Fprintf(tp.W, "BDAT %d LAST\r\n", len(msg))
		tp.W.Write(msg)
		tp.W.Flush()
	} else {
		if err := step(354, "DATA"); err != nil {
			return "", err
		}
		w := tp.DotWriter()
		w.Write(msg)
		w.Close()
	}
	code, m, err := tp.ReadResponse(250)
	if err != nil {
		return "", fmt.Errorf("final reply: %w (%s)", err, m)
	}
	return fmt.Sprintf("%d %s", code, m), nil
}

// The memory budget bounds what all messages in memory take together:
// with a budget of 1 MiB, twelve messages of 300 KB held at once (each
// under the spool threshold) are relayed whole, the accounted memory
// never passes the budget, the messages it has no room for go to the
// spool, and every byte goes back to the budget at the end.
func TestMessageMemoryBudget(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		name := "DATA"
		if chunked {
			name = "BDAT"
		}
		t.Run(name, func(t *testing.T) {
			const n, budget = 12, 1 << 20
			pol := &barrierPolicy{n: n, all: make(chan struct{})}
			spoolDir := t.TempDir()
			h := newHarness(t, func(o *Options, _ *ListenerOptions) {
				o.Policy = pol
				o.SpoolThreshold = 512 << 10
				o.SpoolDir = spoolDir
				o.MessageMemoryBytes = budget
			})
			msgs := make([][]byte, n)
			for i := range msgs {
				msgs[i] = []byte(fmt.Sprintf("Subject: m%d\r\n\r\n%s", i, strings.Repeat(fmt.Sprintf("line of message %d.\r\n", i), 300_000/20)))
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range msgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = sendRaw(h.addr, msgs[i], chunked)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("message %d: %v", i, err)
				}
			}
			b := h.srv.MessageMemory()
			if p := b.Peak(); p > budget || p == 0 {
				t.Errorf("peak memory of messages = %d, want at most the budget %d (and some)", p, budget)
			}
			if u := b.Used(); u != 0 {
				t.Errorf("memory still held after every message was relayed: %d", u)
			}
			pol.mu.Lock()
			spooled := pol.spooled
			pol.mu.Unlock()
			// 300 KB grows to a 512 KiB buffer: at most two fit in 1 MiB
			// (fewer when several grow at once and none finds room).
			if spooled < n-2 {
				t.Errorf("%d of %d messages spooled, want at least %d", spooled, n, n-2)
			}
			got := h.nh.WaitDeliveries(n, 10*time.Second)
			if len(got) != n {
				t.Fatalf("next hop got %d messages, want %d", len(got), n)
			}
			seen := map[string]bool{}
			for _, d := range got {
				body, err := testutil.StripReceived(d.Data)
				if err != nil {
					t.Fatal(err)
				}
				for i, m := range msgs {
					if bytes.Equal(body, m) {
						seen[fmt.Sprint(i)] = true
					}
				}
			}
			if len(seen) != n {
				t.Errorf("%d of %d messages relayed byte for byte", len(seen), n)
			}
		})
	}
}

// growCap walks the pooled classes, then doubles, never past the limit.
func TestGrowCap(t *testing.T) {
	cases := []struct{ have, need, limit, want int }{
		{0, 100, 1 << 20, 4 << 10},
		{4 << 10, 5 << 10, 1 << 20, 16 << 10},
		{0, 20 << 10, 1 << 20, 64 << 10},
		{256 << 10, 257 << 10, 1 << 20, 512 << 10},
		{512 << 10, 600 << 10, 1 << 20, 1 << 20},
		{0, 10, 10, 10},
		{0, 3000, 4000, 4000},
	}
	for _, c := range cases {
		if got := growCap(c.have, c.need, c.limit); got != c.want {
			t.Errorf("growCap(%d, %d, %d) = %d, want %d", c.have, c.need, c.limit, got, c.want)
		}
	}
}

// readCountingListener counts the reads on the connections it accepts.
type readCountingListener struct {
	net.Listener
	reads   atomic.Int64
	largest atomic.Int64 // octets of the largest read
}

func (l *readCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &readCountingConn{Conn: c, l: l}, nil
}

type readCountingConn struct {
	net.Conn
	l *readCountingListener
}

func (c *readCountingConn) Read(b []byte) (int, error) {
	// A slow reader: the sender, a goroutine of this busy process, gets
	// ahead, and what a read can take is in the socket.
	time.Sleep(2 * time.Millisecond)
	c.l.reads.Add(1)
	n, err := c.Conn.Read(b)
	for {
		m := c.l.largest.Load()
		if int64(n) <= m || c.l.largest.CompareAndSwap(m, int64(n)) {
			break
		}
	}
	return n, err
}

// A message streaming in is read from the socket up to 32 KiB at a time,
// not through go-smtp's 4 KiB buffer alone, and arrives whole: over DATA
// (read by the session, fastdata.go, or by go-smtp's reader) and over
// BDAT (go-smtp copies chunks in large reads). How many reads a message
// takes depends on how fast the sender is against the reader (on a busy
// machine, 400 KB took 30 to 50 through go-smtp's reader, and at least
// 100 without the read-ahead), so the test asks for reads larger than
// go-smtp's buffer, which none would be without it, from a reader slow
// enough (2 ms a read) for the sender to keep the socket full.
func TestMessageReadInLargeReads(t *testing.T) {
	for _, mode := range []string{"DATA", "DATA/go-smtp", "BDAT"} {
		chunked := mode == "BDAT"
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.goSMTPDataReader = mode == "DATA/go-smtp" })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cl := &readCountingListener{Listener: ln}
			addr, err := h.srv.Serve(cl, ListenerOptions{Name: "counted", AllowInsecureAuth: true})
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("Subject: big\r\n\r\n" + strings.Repeat("the same line again and again, 40 chars\r\n", 400_000/42))
			if _, err := sendRaw(addr.String(), msg, chunked); err != nil {
				t.Fatal(err)
			}
			if n := cl.largest.Load(); n <= 4096 {
				t.Errorf("largest read %d octets (of %d reads), want more than go-smtp's 4 KiB buffer", n, cl.reads.Load())
			}
			got := h.nh.WaitDeliveries(1, 10*time.Second)
			if len(got) != 1 {
				t.Fatalf("next hop got %d messages", len(got))
			}
			if body, _ := testutil.StripReceived(got[0].Data); !bytes.Equal(body, msg) {
				t.Errorf("the message relayed differs from the one sent")
			}
		})
	}
}
