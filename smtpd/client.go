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
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// clientConn is one SMTP connection to the next hop. It is a small client
// of its own rather than go-smtp's Client because the relay needs control
// go-smtp's Client does not give: RSET without a fresh EHLO, the next MAIL
// on a connection left clean by a finished DATA, per-command deadlines, and
// replies returned as *smtp.SMTPError values to pass through verbatim.
//
// A clientConn is used by one transaction at a time; the pool hands it out.
type clientConn struct {
	dc     *deadlineConn
	conn   net.Conn
	text   *textproto.Conn
	ext    map[string]string
	opts   *NextHopOptions
	broken bool
	used   time.Time
}

// dialNextHop connects, reads the greeting, says EHLO, upgrades with
// STARTTLS and authenticates as opts asks.
func dialNextHop(ctx context.Context, o *NextHopOptions) (*clientConn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.Timeout}
	}
	raw, err := d.DialContext(ctx, "tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
	}
	dc := &deadlineConn{Conn: raw}
	var conn net.Conn = dc
	if o.TLS == "implicit" {
		conn = tls.Client(conn, o.tlsConfig())
	}
	c := &clientConn{dc: dc, conn: conn, text: textproto.NewConn(conn), opts: o, used: time.Now()}
	if err := c.run(ctx, c.handshake); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// run does f with ctx bound to the connection (see deadlineConn). When
// ctx ends while f waits on the next hop, f fails and the connection is
// marked broken.
func (c *clientConn) run(ctx context.Context, f func() error) error {
	cut, err := c.dc.run(ctx, f)
	if cut {
		c.broken = true
	}
	return err
}

func (c *clientConn) handshake() error {
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
			c.conn = tls.Client(c.conn, c.opts.tlsConfig())
			c.text = textproto.NewConn(c.conn)
			if err := c.ehlo(); err != nil {
				return err
			}
		} else if c.opts.TLS == "starttls" {
			return fmt.Errorf("%w: next hop does not offer STARTTLS", ErrNextHopUnavailable)
		}
	}
	if c.opts.Username != "" {
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + c.opts.Username + "\x00" + c.opts.Password))
		if _, _, err := c.cmd(235, "AUTH PLAIN %s", ir); err != nil {
			return fmt.Errorf("%w: authenticating to next hop: %v", ErrNextHopUnavailable, err)
		}
	}
	return nil
}

func (c *clientConn) ehlo() error {
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

func (c *clientConn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// cmd sends one command and reads its reply, expecting the code class of
// expect. A reply of another class comes back as *smtp.SMTPError; an I/O
// failure marks the connection broken and wraps ErrNextHopUnavailable.
func (c *clientConn) cmd(expect int, format string, args ...any) (int, string, error) {
	c.conn.SetDeadline(time.Now().Add(c.opts.Timeout))
	if err := c.text.PrintfLine(format, args...); err != nil {
		c.broken = true
		return 0, "", fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
	}
	return c.read(expect)
}

func (c *clientConn) read(expect int) (int, string, error) {
	if c.opts.Timeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	}
	code, msg, err := c.text.ReadResponse(expect)
	return c.reply(code, msg, err)
}

func (c *clientConn) reply(code int, msg string, err error) (int, string, error) {
	if err == nil {
		return code, msg, nil
	}
	var terr *textproto.Error
	if errors.As(err, &terr) {
		if code == 421 {
			c.broken = true
		}
		return code, msg, replyError(terr.Code, terr.Msg)
	}
	c.broken = true
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return 0, "", fmt.Errorf("%w: %v", ErrNextHopTimeout, err)
	}
	return 0, "", fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
}

// replyError turns a next-hop reply into an *smtp.SMTPError, splitting off
// the enhanced status code when there is one.
func replyError(code int, msg string) *smtp.SMTPError {
	// Multi-line replies come joined by "\n"; keep the last line's text
	// shape for every line but pass them all.
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

// mail sends MAIL FROM with the parameters the next hop supports.
// The reverse path is written by wirePath, never as it came.
func (c *clientConn) mail(from string, o MailOptions) error {
	path, err := wirePath(from)
	if err != nil {
		return replyBadSender
	}
	var b strings.Builder
	b.WriteString("MAIL FROM:" + path)
	if o.Body8Bit && c.has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if o.UTF8 {
		if !c.has("SMTPUTF8") {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "The next hop does not support SMTPUTF8"}
		}
		b.WriteString(" SMTPUTF8")
	}
	if o.Size > 0 && c.has("SIZE") {
		fmt.Fprintf(&b, " SIZE=%d", o.Size)
	}
	_, _, err = c.cmd(250, "%s", b.String())
	return err
}

// rcpt sends RCPT TO with the forward path written by wirePath.
func (c *clientConn) rcpt(to string) error {
	path, err := wirePath(to)
	if err != nil {
		return replyBadRcpt
	}
	_, _, err = c.cmd(250, "RCPT TO:%s", path)
	return err
}

// body sends r, after a DATA command answered 354, dot-stuffed with line
// endings normalised to CRLF, and returns the final reply's text. Bare LF
// and bare CR become CRLF so that no "\n.\n" or "\r.\r" sequence can end
// the data early at a next hop that takes either for a line ending (SMTP
// smuggling).
func (c *clientConn) body(r io.Reader) (string, error) {
	c.conn.SetDeadline(time.Now().Add(c.opts.DataTimeout))
	if err := writeDotStuffed(c.text.W, r); err != nil {
		c.broken = true
		return "", fmt.Errorf("%w: sending message: %v", ErrNextHopUnavailable, err)
	}
	c.conn.SetReadDeadline(time.Now().Add(c.opts.DataTimeout))
	code, msg, err := c.text.ReadResponse(250)
	_, msg, err = c.reply(code, msg, err)
	if err != nil {
		return "", err
	}
	if _, rest, ok := parseEnhanced(msg); ok {
		msg = rest
	}
	return msg, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeDotStuffed writes r to w as SMTP DATA content followed by the
// terminating ".\r\n", and flushes w. Every line ending becomes CRLF (a
// bare LF gains its CR, a bare CR its LF) and a dot at the start of a
// line is doubled. It works on whole runs between line breaks rather than
// byte by byte.
func writeDotStuffed(w *bufio.Writer, r io.Reader) error {
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
			if bol && b[0] == '.' {
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
	w.WriteString(".\r\n")
	return w.Flush()
}

func (c *clientConn) reset() error {
	_, _, err := c.cmd(250, "RSET")
	return err
}

func (c *clientConn) noop() error {
	_, _, err := c.cmd(250, "NOOP")
	return err
}

func (c *clientConn) close() {
	if !c.broken {
		c.conn.SetDeadline(time.Now().Add(time.Second))
		c.text.PrintfLine("QUIT")
		c.text.ReadResponse(221)
	}
	c.conn.Close()
}

// hopConn is one next-hop connection as the pool uses it: each command
// runs under the caller's ctx.
type hopConn interface {
	doMail(ctx context.Context, from string, o MailOptions) error
	doRcpt(ctx context.Context, to string) error
	// doData sends DATA; an error leaves the transaction open.
	doData(ctx context.Context) error
	// doBody sends the message and returns the final reply's text.
	doBody(ctx context.Context, r io.Reader) (string, error)
	doReset(ctx context.Context) error
	doNoop(ctx context.Context) error
	shut()
	isBroken() bool
	setBroken()
	idleSince() time.Time
	touch(time.Time)
}

var _ hopConn = (*clientConn)(nil)

func (c *clientConn) doMail(ctx context.Context, from string, o MailOptions) error {
	return c.run(ctx, func() error { return c.mail(from, o) })
}

func (c *clientConn) doRcpt(ctx context.Context, to string) error {
	return c.run(ctx, func() error { return c.rcpt(to) })
}

func (c *clientConn) doData(ctx context.Context) error {
	return c.run(ctx, func() error { _, _, err := c.cmd(354, "DATA"); return err })
}

func (c *clientConn) doBody(ctx context.Context, r io.Reader) (msg string, err error) {
	err = c.run(ctx, func() error { msg, err = c.body(r); return err })
	return msg, err
}

func (c *clientConn) doReset(ctx context.Context) error { return c.run(ctx, c.reset) }
func (c *clientConn) doNoop(ctx context.Context) error  { return c.run(ctx, c.noop) }
func (c *clientConn) shut()                             { c.close() }
func (c *clientConn) isBroken() bool                    { return c.broken }
func (c *clientConn) setBroken()                        { c.broken = true }
func (c *clientConn) idleSince() time.Time              { return c.used }
func (c *clientConn) touch(t time.Time)                 { c.used = t }

// dial opens a next-hop connection; a variable so that the benchmark can
// swap clients.
var dial = func(ctx context.Context, o *NextHopOptions) (hopConn, error) {
	c, err := dialNextHop(ctx, o)
	if err != nil {
		return nil, err
	}
	return c, nil
}
