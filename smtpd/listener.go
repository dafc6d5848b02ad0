package smtpd

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter counts one listener's open connections, in all and per
// client key (see clientKey).
type connLimiter struct {
	max, maxPerIP int
	v6Bits        int

	mu    sync.Mutex
	total int
	perIP map[netip.Prefix]int
}

func newConnLimiter(max, maxPerIP, v6Bits int) *connLimiter {
	return &connLimiter{max: max, maxPerIP: maxPerIP, v6Bits: v6Bits, perIP: map[netip.Prefix]int{}}
}

// acquire takes a slot for ip, or says which limit was hit.
func (l *connLimiter) acquire(ip netip.Addr) (ok bool, limit string) {
	k := clientKey(ip, l.v6Bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return false, "total"
	}
	if l.maxPerIP > 0 && l.perIP[k] >= l.maxPerIP {
		return false, "per_ip"
	}
	l.total++
	l.perIP[k]++
	return true, ""
}

func (l *connLimiter) release(ip netip.Addr) {
	k := clientKey(ip, l.v6Bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[k]--; l.perIP[k] <= 0 {
		delete(l.perIP, k)
	}
}

// limitListener refuses connections over its listener's limits with a
// 421 and wraps the others in trackedConn.
type limitListener struct {
	net.Listener
	srv         *Server
	opts        ListenerOptions
	limiter     *connLimiter
	implicitTLS bool
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrOf(c.RemoteAddr()).Addr()
		if ok, limit := l.limiter.acquire(ip); !ok {
			l.srv.metrics.connRefusedInc(l.opts.Name, limit)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte("421 4.7.0 Too many connections, try again later\r\n"))
			c.Close()
			continue
		}
		tc := newTrackedConn(c, ip, l.srv, l.limiter, l.opts.IdleTimeoutBeforeMail)
		tc.tls.Store(l.implicitTLS)
		return tc, nil
	}
}

// trackedConn applies the idle and session timeouts, releases its limiter
// slot once, can close itself right after the next reply is written, and
// batches replies to pipelining clients.
//
// Replies are held back until the session is about to wait for input
// (Read), the batch grows large, or the connection closes. A client that
// pipelines MAIL, RCPT and DATA in one packet thus gets their three
// replies in one packet too, as RFC 2920 allows, and a client waiting
// for a reply is never kept waiting: the session reads next, which sends
// the batch first.
type trackedConn struct {
	net.Conn
	ip      netip.Addr
	srv     *Server
	limiter *connLimiter
	// idle is the time allowed per read inside a transaction; idleOut
	// outside one (before MAIL), where a client has nothing to send that
	// takes long.
	idle, idleOut time.Duration
	session       atomic.Pointer[session] // nil until go-smtp made the session
	timer         *time.Timer
	tls           atomic.Bool // TLS (implicit or after STARTTLS) runs above this connection
	guard         *lineGuard

	wmu  sync.Mutex
	wbuf []byte
	werr error

	// Read-ahead while a message streams in (see Read). Only the
	// connection's reader (go-smtp, or TLS above it) uses these.
	rbuf      *[]byte // pooled buffer, held while it has unread bytes
	rdata     []byte  // the unread bytes in rbuf
	rerr      error   // the socket's error after rdata
	streaming bool    // the last socket read filled the reader's buffer

	// Hand-out to go-smtp (see handOut and fastData): lineHead holds the
	// first octets of the line being handed over, lineLen how many of
	// them there are; atData says the last hand-out ended with a DATA
	// command line. raw is set while a fast DATA transfer reads, and
	// inject is handed out before anything else: the end of such a
	// transfer for go-smtp's own reader, then what followed it.
	lineHead  [4]byte
	lineLen   int
	atData    bool
	raw       bool
	inject    []byte
	injectBuf []byte
	failed    error // a fast transfer's read error, returned by every later read

	// ahead holds the recipients of the RCPT lines that followed a MAIL
	// line at the start of the last hand-out (see noteAhead), until the
	// session takes them (takeAhead).
	ahead []string

	closeNext atomic.Bool
	closeOnce sync.Once
}

// maxKeptInject is the largest buffer of a fast DATA transfer's end (see
// fastData) an idle connection keeps.
const maxKeptInject = 256

// maxHeldReplies is the most reply bytes held back before a write.
const maxHeldReplies = 4096

func newTrackedConn(c net.Conn, ip netip.Addr, srv *Server, limiter *connLimiter, idleOut time.Duration) *trackedConn {
	t := &trackedConn{Conn: c, ip: ip, srv: srv, limiter: limiter, idle: srv.opts.IdleTimeout, idleOut: idleOut, guard: newLineGuard(srv.opts)}
	srv.mu.Lock()
	srv.conns[t] = struct{}{}
	srv.mu.Unlock()
	if d := srv.opts.SessionTimeout; d > 0 {
		// The total session timeout closes the connection from under the
		// session; go-smtp then ends it like any dropped connection.
		t.timer = time.AfterFunc(d, func() { t.Close() })
	}
	return t
}

// readAheadBufs are the read-ahead buffers of connections taking in a
// message.
var readAheadBufs = sync.Pool{New: func() any { b := make([]byte, readAhead); return &b }}

// readAhead is the most read from the socket at once while a message
// streams in. go-smtp reads through a 4 KiB buffer; a message sent in
// larger segments would cost one read per 4 KiB without it.
const readAhead = 32 << 10

// Read hands go-smtp (or TLS above it) the client's bytes. Inside a
// transaction, once a read has filled the reader's buffer (a message
// streams in), it reads up to readAhead from the socket at once and hands
// the rest out on the next reads; the buffer goes back to its pool when
// it is empty. Idle connections hold no such buffer.
//
// Without TLS every hand-out ends at the end of the first DATA command
// line in it (handOut), and what follows waits here: when go-smtp then
// calls Data for that line, its buffer holds nothing of the message, and
// the session can read the message itself (fastData).
func (t *trackedConn) Read(b []byte) (int, error) {
	if err := t.flush(); err != nil {
		return 0, err
	}
	room, err := t.guard.beforeRead(len(b))
	if err != nil {
		return 0, err
	}
	if len(t.inject) > 0 {
		n := t.handOut(b[:copy(b[:room], t.inject)])
		t.inject = t.inject[n:]
		if len(t.inject) == 0 && cap(t.injectBuf) > maxKeptInject {
			// What a client pipelined after its end of data is not
			// kept for the rest of the connection.
			t.injectBuf = nil
		}
		t.guard.read(b[:n])
		return n, nil
	}
	if len(t.rdata) > 0 {
		n := t.handOut(b[:copy(b[:room], t.rdata)])
		t.rdata = t.rdata[n:]
		if len(t.rdata) == 0 {
			readAheadBufs.Put(t.rbuf)
			t.rbuf, t.rdata = nil, nil
		}
		t.guard.read(b[:n])
		return n, nil
	}
	if t.failed != nil {
		return 0, t.failed
	}
	if t.rerr != nil {
		err := t.rerr
		t.rerr = nil
		return 0, err
	}
	d := t.idleOut
	ss := t.session.Load()
	inTx := ss != nil && ss.inTransaction()
	if inTx {
		d = t.idle
	}
	if d > 0 {
		t.Conn.SetReadDeadline(time.Now().Add(d))
	}
	if inTx && t.streaming && room > 0 && room < readAhead {
		bp := readAheadBufs.Get().(*[]byte)
		n, err := t.Conn.Read(*bp)
		t.timedOut(err)
		k := t.handOut(b[:copy(b[:room], (*bp)[:n])])
		t.guard.read(b[:k])
		if k < n {
			t.rbuf, t.rdata, t.rerr = bp, (*bp)[k:n], err
			return k, nil
		}
		readAheadBufs.Put(bp)
		t.streaming = n == readAhead
		return k, err
	}
	n, err := t.Conn.Read(b[:room])
	t.timedOut(err)
	k := t.handOut(b[:n])
	t.guard.read(b[:k])
	if k < n {
		// The rest follows a DATA line: it waits in a read-ahead buffer.
		bp := readAheadBufs.Get().(*[]byte)
		t.rbuf, t.rdata, t.rerr = bp, (*bp)[:copy(*bp, b[k:n])], err
		return k, nil
	}
	t.streaming = inTx && n == len(b) && n > 0
	return n, err
}

// timedOut makes a read timeout final: every later read returns it.
// The client said nothing for the idle time; go-smtp answers 421 and
// ends the session when the error reaches it, and the drains of a DATA
// transfer before that (outguard's and go-smtp's) must not wait the
// timeout again each.
func (t *trackedConn) timedOut(err error) {
	if err == nil {
		// (Before the net.Error below, which escapes to the heap.)
		return
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		t.failed = err
	}
}

// handOut returns how much of b, about to go to go-smtp, goes now: all
// of it, or what ends with the first DATA command line in it (go-smtp
// takes a line up to LF, and a command by its first four octets in any
// case; a line that only starts like DATA stops a hand-out too, which
// costs one more read and nothing else). Under TLS the octets are
// records, not lines, and during a fast transfer they are the
// session's: both go through whole.
func (t *trackedConn) handOut(b []byte) int {
	t.atData = false
	if t.raw || t.tls.Load() {
		return len(b)
	}
	t.ahead = nil
	if t.lineLen == 0 && len(b) > 5 {
		n := t.scanLines(b)
		t.noteAhead(b[:n])
		return n
	}
	return t.scanLines(b)
}

// scanLines is handOut's line scan.
func (t *trackedConn) scanLines(b []byte) int {
	for i := 0; i < len(b); {
		if t.lineLen < len(t.lineHead) {
			c := b[i]
			i++
			if c == '\n' {
				t.lineLen = 0
			} else {
				t.lineHead[t.lineLen] = c
				t.lineLen++
			}
			continue
		}
		k := bytes.IndexByte(b[i:], '\n')
		if k < 0 {
			break
		}
		i += k + 1
		t.lineLen = 0
		if h := t.lineHead; h[0]|0x20 == 'd' && h[1]|0x20 == 'a' && h[2]|0x20 == 't' && h[3]|0x20 == 'a' {
			t.atData = true
			return i
		}
	}
	return len(b)
}

// noteAhead looks at a hand-out that starts at the start of a line: when
// its first line is a MAIL command followed by complete RCPT lines, it
// keeps their recipients in ahead. go-smtp asks for more only when its
// buffer holds no whole line, so the first MAIL the session sees before
// the next hand-out is that first line, and the RCPTs come next, unless
// something refuses them first. The session sends them to the next hop
// with MAIL (smtpclient's MailOptions.Ahead); a wrong guess costs a
// round trip, never a recipient.
func (t *trackedConn) noteAhead(b []byte) {
	if !hasVerb(b, "MAIL") {
		return
	}
	i := bytes.IndexByte(b, '\n')
	for i >= 0 && i+1 < len(b) {
		line := b[i+1:]
		k := bytes.IndexByte(line, '\n')
		if k < 0 || !hasVerb(line, "RCPT") {
			return
		}
		to, ok := rcptAddress(line[4:k])
		if !ok {
			return
		}
		t.ahead = append(t.ahead, to)
		i += 1 + k
	}
}

// hasVerb reports whether line starts with the command verb v (upper
// case) followed by a space, in any case.
func hasVerb(line []byte, v string) bool {
	if len(line) < len(v)+1 || line[len(v)] != ' ' {
		return false
	}
	for i := range len(v) {
		if line[i]&^0x20 != v[i] {
			return false
		}
	}
	return true
}

// rcptAddress reads the address of an RCPT command's argument ("
// TO:<addr> params" and its line end) as go-smtp gives it to Rcpt, for
// the plain forms; anything else is not guessed.
func rcptAddress(arg []byte) (string, bool) {
	arg = bytes.TrimLeft(arg, " ")
	if len(arg) < 4 || arg[0]&^0x20 != 'T' || arg[1]&^0x20 != 'O' || arg[2] != ':' {
		return "", false
	}
	arg = bytes.TrimLeft(arg[3:], " ")
	if len(arg) < 2 || arg[0] != '<' {
		return "", false
	}
	end := bytes.IndexByte(arg, '>')
	if end < 0 {
		return "", false
	}
	addr := arg[1:end]
	if bytes.ContainsAny(addr, "\"\\ <:,") {
		return "", false
	}
	return string(addr), true
}

// takeAhead returns the recipients noteAhead kept, at most max, and
// forgets them.
func (t *trackedConn) takeAhead(max int) []string {
	a := t.ahead
	t.ahead = nil
	return a[:min(len(a), max)]
}

func (t *trackedConn) Write(b []byte) (int, error) {
	t.guard.replied()
	t.wmu.Lock()
	if t.werr != nil {
		err := t.werr
		t.wmu.Unlock()
		return 0, err
	}
	t.wbuf = append(t.wbuf, b...)
	full := len(t.wbuf) >= maxHeldReplies
	t.wmu.Unlock()
	if full || t.closeNext.Load() {
		if err := t.flush(); err != nil {
			return 0, err
		}
	}
	if t.closeNext.Load() {
		t.Close()
	}
	return len(b), nil
}

// flush sends the held replies.
func (t *trackedConn) flush() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.werr != nil || len(t.wbuf) == 0 {
		return t.werr
	}
	_, err := t.Conn.Write(t.wbuf)
	t.wbuf = t.wbuf[:0]
	if err != nil {
		t.werr = err
	}
	return err
}

// SetReadDeadline is ignored: trackedConn owns the read deadline (go-smtp
// sets one per line, which would cut a slow but steady DATA transfer).
func (t *trackedConn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline sets only the write deadline, for the same reason.
func (t *trackedConn) SetDeadline(d time.Time) error { return t.Conn.SetWriteDeadline(d) }

// closeAfterWrite makes the connection close once the next write (the
// pending reply) has been sent.
func (t *trackedConn) closeAfterWrite() { t.closeNext.Store(true) }

func (t *trackedConn) Close() error {
	err := net.ErrClosed
	t.closeOnce.Do(func() {
		if t.timer != nil {
			t.timer.Stop()
		}
		// Send what is held back (a 221, a TLS close_notify) with a
		// deadline of its own: crypto/tls sets the write deadline to
		// "now" after its close_notify, which would fail this write.
		t.Conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		t.flush()
		err = t.Conn.Close()
		t.limiter.release(t.ip)
		t.srv.mu.Lock()
		delete(t.srv.conns, t)
		t.srv.mu.Unlock()
	})
	return err
}

// unwrapTracked finds the trackedConn under c (which may be a *tls.Conn).
func unwrapTracked(c net.Conn) *trackedConn {
	for c != nil {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

func addrOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

var errClosed = errors.New("smtpd: server closed")
