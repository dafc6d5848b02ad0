// Package smtpclient is outguard's SMTP client, used for every message
// outguard sends: the relay to the next hop (lockstep, through smtpd's
// pool) and the ARF reports and lock notices (arf.SMTPSender).
//
// It is a small client of its own rather than go-smtp's Client: both were
// measured behind the same next-hop pool (smtpd.SMTPNextHop, go-smtp
// v0.25.1, the same context binding; commit 423e323 holds the go-smtp
// adapter, chosen with OUTGUARD_NEXTHOP_CLIENT=gosmtp, whose message
// copy then went through a pooled buffer as this client's does),
// alternating the two on a shared 2-core machine; medians, ranges in
// brackets:
//
//	bench/relay.sh 5120 50, 4 rounds each    this client         go-smtp's Client
//	  outguard cpu per message                1008 µs [900-1043]  1040 µs [895-1087]
//	  cpu outguard/sink per message           5.74 [5.66-5.86]    6.02 [5.81-6.23]
//	  msgs/s outguard/direct                  0.19 [0.15-0.21]    0.15 [0.10-0.23]
//	BenchmarkNextHopClient (smtpd), 3 runs each
//	  wall time per message, 8 in flight      341 µs [313-403]    622 µs [620-753]
//	  allocations per message                 34, 1.2 KB          44, 5.4 KB
//	BenchmarkRelay engines=builtin/log=true (app), 3 runs each
//	  process cpu per message                 2157 µs [2130-2206] 2206 µs [2146-2508]
//	  allocations per message                 746, 148 KB         768, 152 KB
//
// The figures favour this client, by little over the whole relay and
// clearly on the client's own path. Beyond them, go-smtp's Client cannot
// do what the relay promises: its Mail always adds BODY=8BITMIME when
// the next hop offers it (a 7-bit message is declared 8-bit); STARTTLS
// is only reachable through NewClientStartTLS, which says EHLO as
// "localhost" before TLS and cannot fall back on the same connection
// (starttls_optional needs a second one); the message transfer has no
// deadline between DATA's 354 and the final dot; its dot writer passes a
// bare CR through ("\r.\r" smuggling) and works byte by byte; and after
// Reset the next command says EHLO again.
//
// A Conn is used by one transaction at a time. Every command takes a
// context: its deadline shortens the command's timeout, and its
// cancellation fails the command at once (see deadlineConn).
package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Sentinel errors, wrapped with %w. Anything else a command returns is an
// *smtp.SMTPError carrying the server's reply.
var (
	// ErrUnavailable: the server could not be reached or the connection
	// broke.
	ErrUnavailable = errors.New("next hop unavailable")
	// ErrTimeout: the server did not answer in time, or the command's
	// context ended.
	ErrTimeout = errors.New("next hop timed out")
)

// Replies for addresses that no SMTP path can carry (see Path).
var (
	ReplyBadSender    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	ReplyBadRecipient = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	// ReplyNoSMTPUTF8: the message needs SMTPUTF8 (RFC 6531) and the
	// server does not offer it.
	ReplyNoSMTPUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "The next hop does not support SMTPUTF8"}
)

// Dialer opens network connections; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Options configure a connection.
type Options struct {
	// Address is host:port.
	Address string
	// TLS is "none" (the default), "starttls" (required),
	// "starttls_optional" (used when offered) or "implicit".
	TLS string
	// TLSConfig verifies the server; nil verifies Address's host against
	// the system roots.
	TLSConfig *tls.Config
	// Username and Password, when set, authenticate with AUTH PLAIN.
	Username, Password string
	// Helo is the EHLO name; default "localhost".
	Helo string
	// Timeout bounds each command (default 30s); DataTimeout the message
	// transfer and its final reply (default 5m).
	Timeout, DataTimeout time.Duration
	// Dialer opens the connection; default a net.Dialer with Timeout.
	Dialer Dialer
	// NoChunking sends every message with DATA. Otherwise a server that
	// offers CHUNKING and PIPELINING gets it in BDAT chunks (RFC 3030),
	// one round trip fewer (see Send).
	NoChunking bool
}

// MailOptions are the MAIL FROM parameters.
type MailOptions struct {
	// Body8Bit declares BODY=8BITMIME when the server offers 8BITMIME.
	Body8Bit bool
	// UTF8 declares SMTPUTF8; a server without it refuses the mail
	// (ReplyNoSMTPUTF8) before anything is sent.
	UTF8 bool
	// Size declares SIZE when the server offers it and Size > 0.
	Size int64
	// Ahead lists recipients the caller expects to add next (a client
	// pipelined them after its MAIL). When the server offers PIPELINING
	// (RFC 2920), Mail sends their RCPT commands in the same write as
	// MAIL and reads only MAIL's reply; Rcpt then takes each one's reply
	// in turn (see Rcpt). A guess that turns out wrong costs time, never
	// a recipient: see Data.
	Ahead []string
	// Name names the message at the next hop, not on the wire: the
	// transaction's log id for relayed mail, or what smtpd's
	// WithDeliveryName gave Deliver. The capture next hop names its files
	// by it; the SMTP client ignores it.
	Name string
}

// Conn is one SMTP connection.
type Conn struct {
	dc     *deadlineConn
	conn   net.Conn
	text   *textproto.Conn
	ext    map[string]string
	opts   Options
	broken bool
	tx     txState
}

// Dial connects, reads the greeting, says EHLO, upgrades with STARTTLS
// and authenticates as o asks, all within ctx.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	if o.Helo == "" {
		o.Helo = "localhost"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.DataTimeout == 0 {
		o.DataTimeout = 5 * time.Minute
	}
	if o.TLSConfig == nil {
		host, _, _ := net.SplitHostPort(o.Address)
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.Timeout}
	}
	raw, err := d.DialContext(ctx, "tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	dc := &deadlineConn{Conn: raw}
	var conn net.Conn = dc
	if o.TLS == "implicit" {
		conn = tls.Client(conn, o.TLSConfig)
	}
	c := &Conn{dc: dc, conn: conn, text: textproto.NewConn(conn), opts: o}
	if err := c.run(ctx, c.handshake); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// run does f with ctx bound to the connection (see deadlineConn). When
// ctx ends while f waits on the server, f fails and the connection is
// marked broken.
func (c *Conn) run(ctx context.Context, f func() error) error {
	cut, err := c.dc.run(ctx, f)
	if cut {
		c.broken = true
	}
	return err
}

func (c *Conn) handshake() error {
	if _, _, err := c.read(220); err != nil {
		return err
	}
	if err := c.ehlo(); err != nil {
		return err
	}
	if c.opts.TLS == "starttls" || c.opts.TLS == "starttls_optional" {
		if _, ok := c.ext["STARTTLS"]; ok {
			if _, _, err := c.cmd(220, "STARTTLS"); err != nil {
				return err
			}
			c.conn = tls.Client(c.conn, c.opts.TLSConfig)
			c.text = textproto.NewConn(c.conn)
			if err := c.ehlo(); err != nil {
				return err
			}
		} else if c.opts.TLS == "starttls" {
			return fmt.Errorf("%w: %s does not offer STARTTLS", ErrUnavailable, c.opts.Address)
		}
	}
	if c.opts.Username != "" {
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + c.opts.Username + "\x00" + c.opts.Password))
		if _, _, err := c.cmd(235, "AUTH PLAIN %s", ir); err != nil {
			return fmt.Errorf("%w: authenticating to %s: %v", ErrUnavailable, c.opts.Address, err)
		}
	}
	return nil
}

func (c *Conn) ehlo() error {
	_, msg, err := c.cmd(250, "EHLO %s", c.opts.Helo)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// Has reports whether the server offered the EHLO keyword ext (upper
// case).
func (c *Conn) Has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// TLS reports whether the connection is encrypted.
func (c *Conn) TLS() bool {
	_, ok := c.conn.(*tls.Conn)
	return ok
}

// Broken reports whether the connection is unusable: an I/O failure, a
// 421, or a context that ended in the middle of a command.
func (c *Conn) Broken() bool { return c.broken }

// cmd sends one command and reads its reply, expecting the code class of
// expect. A reply of another class comes back as *smtp.SMTPError; an I/O
// failure marks the connection broken and wraps ErrUnavailable or
// ErrTimeout.
func (c *Conn) cmd(expect int, format string, args ...any) (int, string, error) {
	c.conn.SetDeadline(time.Now().Add(c.opts.Timeout))
	if err := c.text.PrintfLine(format, args...); err != nil {
		return c.reply(0, "", err)
	}
	return c.read(expect)
}

func (c *Conn) read(expect int) (int, string, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	code, msg, err := c.text.ReadResponse(expect)
	return c.reply(code, msg, err)
}

func (c *Conn) reply(code int, msg string, err error) (int, string, error) {
	if err == nil {
		return code, msg, nil
	}
	var terr *textproto.Error
	if errors.As(err, &terr) {
		if code == 421 {
			c.broken = true
		}
		return code, msg, ReplyError(terr.Code, terr.Msg)
	}
	c.broken = true
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return 0, "", fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return 0, "", fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// ReplyError turns a server's reply into an *smtp.SMTPError, splitting
// off the enhanced status code (RFC 3463) when there is one. Multi-line
// replies come joined by "\n"; each line loses its enhanced code.
func ReplyError(code int, msg string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode}
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if ec, rest, ok := parseEnhanced(l); ok {
			if i == 0 {
				e.EnhancedCode = ec
			}
			lines[i] = rest
		}
	}
	e.Message = strings.Join(lines, "\n")
	return e
}

func parseEnhanced(s string) (smtp.EnhancedCode, string, bool) {
	head, rest, _ := strings.Cut(s, " ")
	parts := strings.Split(head, ".")
	if len(parts) != 3 {
		return smtp.EnhancedCode{}, s, false
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return smtp.EnhancedCode{}, s, false
		}
		ec[i] = n
	}
	if ec[0] < 2 || ec[0] > 5 {
		return smtp.EnhancedCode{}, s, false
	}
	return ec, rest, true
}

// Mail sends MAIL FROM with the parameters the server supports, and the
// RCPT commands of o.Ahead with it when the server offers PIPELINING
// (see MailOptions.Ahead). The reverse path is written by Path, never as
// it came.
func (c *Conn) Mail(ctx context.Context, from string, o MailOptions) error {
	path, err := Path(from)
	if err != nil {
		return ReplyBadSender
	}
	if o.UTF8 && !c.Has("SMTPUTF8") {
		return ReplyNoSMTPUTF8
	}
	var b strings.Builder
	b.WriteString("MAIL FROM:" + path)
	if o.Body8Bit && c.Has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if o.UTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if o.Size > 0 && c.Has("SIZE") {
		fmt.Fprintf(&b, " SIZE=%d", o.Size)
	}
	c.tx.begin(b.String())
	if len(o.Ahead) == 0 || !c.Has("PIPELINING") {
		return c.run(ctx, func() error { _, _, err := c.cmd(250, "%s", c.tx.mail); return err })
	}
	return c.run(ctx, func() error { return c.mailAhead(o.Ahead) })
}

// Rcpt sends RCPT TO with the forward path written by Path. When Mail
// sent recipients ahead, their replies come first, in order: the reply
// to the first one for the same address is this recipient's, and those
// before it were guesses that did not come (the recipient was refused
// before it got here, or the client sent another). A guess the server
// accepted makes the transaction hold a recipient nobody asked for, and
// Data sends the transaction again without it.
func (c *Conn) Rcpt(ctx context.Context, to string) error {
	path, err := Path(to)
	if err != nil {
		return ReplyBadRecipient
	}
	for n := len(c.tx.ahead); n > 0; n = len(c.tx.ahead) {
		guess := c.tx.ahead[0]
		err := c.run(ctx, c.readAhead)
		if len(c.tx.ahead) == n {
			// ctx had ended: nothing was read.
			return err
		}
		if guess == to {
			if err == nil {
				c.tx.accepted = append(c.tx.accepted, path)
			}
			return err
		}
		if err == nil {
			c.tx.stray = true
		} else if c.broken {
			return err
		}
	}
	return c.run(ctx, func() error {
		_, _, err := c.cmd(250, "RCPT TO:%s", path)
		if err == nil {
			c.tx.accepted = append(c.tx.accepted, path)
		}
		return err
	})
}

// Data sends DATA. A refusal leaves the transaction open: Reset it.
//
// The replies to recipients sent ahead that Rcpt did not take are read
// first. If the server accepted any of them, the transaction is sent
// again without them first (RSET, MAIL and the accepted recipients), so
// that the message only ever goes to recipients Rcpt returned success
// for; should the server now answer any of those differently, Data
// fails with ErrUnavailable and the transaction is reset.
func (c *Conn) Data(ctx context.Context) error {
	return c.run(ctx, func() error {
		if err := c.prepare(); err != nil {
			return err
		}
		_, _, err := c.cmd(354, "DATA")
		return err
	})
}

// prepare readies the transaction for its message: it reads the replies
// to recipients sent ahead that Rcpt did not take, and sends the
// transaction again without them if the server accepted any (see Data).
func (c *Conn) prepare() error {
	if err := c.settle(); err != nil {
		return err
	}
	if c.tx.stray {
		return c.resend()
	}
	return nil
}

// Body sends r after Data, dot-stuffed with line endings normalised to
// CRLF, and returns the final reply's text without its enhanced code.
// Bare LF and bare CR become CRLF so that no "\n.\n" or "\r.\r" sequence
// can end the data early at a server that takes either for a line ending
// (SMTP smuggling). Whatever the reply, the server is back in its initial
// state afterwards: the next Mail needs no RSET and no EHLO.
func (c *Conn) Body(ctx context.Context, r io.Reader) (string, error) {
	var msg string
	err := c.run(ctx, func() error {
		c.conn.SetDeadline(time.Now().Add(c.opts.DataTimeout))
		// The message goes out through a larger buffer than the
		// connection's 4 KiB one: one write per 32 KiB instead of eight
		// (the connection's buffer is empty after DATA, so each full
		// buffer passes straight through it).
		bw := bodyWriters.Get().(*bufio.Writer)
		bw.Reset(c.text.W)
		err := writeDotStuffed(bw, r)
		if err == nil {
			err = c.text.W.Flush()
		}
		bw.Reset(nil)
		bodyWriters.Put(bw)
		if err != nil {
			return c.writeFailed(err)
		}
		c.conn.SetReadDeadline(time.Now().Add(c.opts.DataTimeout))
		code, m, err := c.text.ReadResponse(250)
		_, msg, err = c.reply(code, m, err)
		return err
	})
	return c.endMessage(msg, err)
}

// endMessage ends the transaction after its message's final reply msg
// (or err), and returns msg without its enhanced code.
func (c *Conn) endMessage(msg string, err error) (string, error) {
	c.tx.begin("")
	if err != nil {
		return "", err
	}
	if _, rest, ok := parseEnhanced(msg); ok {
		msg = rest
	}
	return msg, nil
}

// Reset sends RSET, ending the transaction in progress (after reading
// the replies to recipients sent ahead that Rcpt did not take).
func (c *Conn) Reset(ctx context.Context) error {
	return c.run(ctx, func() error {
		if err := c.settle(); err != nil {
			return err
		}
		c.tx.begin("")
		_, _, err := c.cmd(250, "RSET")
		return err
	})
}

// Noop sends NOOP: is the connection still alive?
func (c *Conn) Noop(ctx context.Context) error {
	return c.run(ctx, func() error { _, _, err := c.cmd(250, "NOOP"); return err })
}

// Close says QUIT (unless the connection is broken), waiting at most a
// second for the reply, and closes the connection.
func (c *Conn) Close() {
	if !c.broken {
		c.conn.SetDeadline(time.Now().Add(time.Second))
		c.text.PrintfLine("QUIT")
		c.text.ReadResponse(221)
	}
	c.conn.Close()
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// bodyWriters buffer a message on its way to the server (see Body).
var bodyWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// writeDotStuffed writes r to w as SMTP DATA content followed by the
// terminating ".\r\n", and flushes w. Every line ending becomes CRLF (a
// bare LF gains its CR, a bare CR its LF) and a dot at the start of a
// line is doubled. It works on whole runs between line breaks rather than
// byte by byte.
func writeDotStuffed(w *bufio.Writer, r io.Reader) error {
	if err := writeLines(w, r, true); err != nil {
		return err
	}
	w.WriteString(".\r\n")
	return w.Flush()
}

// lineWriter is where writeLines writes: a *bufio.Writer, or a BDAT
// chunker (see Send).
type lineWriter interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
}

// writeLines copies r to w with every line ending made CRLF (bare LF and
// bare CR included) and a CRLF added after a last line without one;
// with stuff, a line that starts with '.' gets another (RFC 5321 section
// 4.5.2). It reports r's error; w's errors are w's to keep.
func writeLines(w lineWriter, r io.Reader, stuff bool) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	bol := true // at the beginning of a line
	cr := false // the last byte read was a CR, not yet written
	for {
		n, err := r.Read(buf)
		b := buf[:n]
		for len(b) > 0 {
			if cr {
				// CR LF, or a bare CR: either way one line ending.
				w.WriteString("\r\n")
				cr, bol = false, true
				if b[0] == '\n' {
					b = b[1:]
					continue
				}
			}
			if stuff && bol && b[0] == '.' {
				w.WriteByte('.')
			}
			i := bytes.IndexByte(b, '\n')
			run := b
			if i >= 0 {
				run = b[:i]
			}
			if j := bytes.IndexByte(run, '\r'); j >= 0 {
				i = j
			}
			if i < 0 {
				w.Write(b)
				bol = false
				break
			}
			w.Write(b[:i])
			if b[i] == '\r' {
				cr = true
			} else {
				w.WriteString("\r\n")
				bol = true
			}
			b = b[i+1:]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if cr || !bol {
		w.WriteString("\r\n")
	}
	return nil
}
