package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// gsConn is a next-hop connection driven by go-smtp's Client, for
// comparison with clientConn.
type gsConn struct {
	dc     *deadlineConn
	c      *smtp.Client
	opts   *NextHopOptions
	w      *smtp.DataCommand
	broken bool
	used   time.Time
}

func dialGoSMTP(ctx context.Context, o *NextHopOptions) (hopConn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.Timeout}
	}
	raw, err := d.DialContext(ctx, "tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
	}
	dc := &deadlineConn{Conn: raw}
	g := &gsConn{dc: dc, opts: o, used: time.Now()}
	err = g.run(ctx, func() error {
		switch o.TLS {
		case "implicit":
			g.c = smtp.NewClient(tls.Client(dc, o.tlsConfig()))
		case "starttls":
			c, err := smtp.NewClientStartTLS(dc, o.tlsConfig())
			if err != nil {
				return err
			}
			g.c = c
		default:
			g.c = smtp.NewClient(dc)
		}
		g.c.CommandTimeout, g.c.SubmissionTimeout = o.Timeout, o.DataTimeout
		if err := g.c.Hello(o.Helo); err != nil {
			return err
		}
		if o.Username != "" {
			return g.c.Auth(sasl.NewPlainClient("", o.Username, o.Password))
		}
		return nil
	})
	if err != nil {
		raw.Close()
		return nil, err
	}
	return g, nil
}

// run binds ctx and sorts f's error as clientConn does: a reply passes
// as *smtp.SMTPError (421 also breaks the connection), anything else
// breaks it and wraps ErrNextHopUnavailable or ErrNextHopTimeout.
func (g *gsConn) run(ctx context.Context, f func() error) error {
	cut, err := g.dc.run(ctx, f)
	if cut {
		g.broken = true
	}
	if err == nil || errors.Is(err, ErrNextHopTimeout) {
		return err
	}
	var serr *smtp.SMTPError
	if errors.As(err, &serr) {
		if serr.Code == 421 {
			g.broken = true
		}
		return serr
	}
	g.broken = true
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return fmt.Errorf("%w: %v", ErrNextHopTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
}

func (g *gsConn) doMail(ctx context.Context, from string, o MailOptions) error {
	path, err := wirePath(from)
	if err != nil {
		return replyBadSender
	}
	if o.UTF8 {
		if ok, _ := g.c.Extension("SMTPUTF8"); !ok {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "The next hop does not support SMTPUTF8"}
		}
	}
	return g.run(ctx, func() error {
		return g.c.Mail(path[1:len(path)-1], &smtp.MailOptions{Size: o.Size, UTF8: o.UTF8})
	})
}

func (g *gsConn) doRcpt(ctx context.Context, to string) error {
	path, err := wirePath(to)
	if err != nil {
		return replyBadRcpt
	}
	return g.run(ctx, func() error { return g.c.Rcpt(path[1:len(path)-1], nil) })
}

func (g *gsConn) doData(ctx context.Context) error {
	return g.run(ctx, func() (err error) { g.w, err = g.c.Data(); return err })
}

func (g *gsConn) doBody(ctx context.Context, r io.Reader) (msg string, err error) {
	err = g.run(ctx, func() error {
		// go-smtp clears the deadline after DATA; bound the transfer.
		g.dc.SetDeadline(time.Now().Add(g.opts.DataTimeout))
		cw := &crlfWriter{w: g.w}
		if _, err := io.Copy(cw, r); err != nil {
			return err
		}
		if err := cw.flush(); err != nil {
			return err
		}
		resp, err := g.w.CloseWithResponse()
		if err != nil {
			return err
		}
		msg = resp.StatusText
		return nil
	})
	if err != nil {
		return "", err
	}
	if _, rest, ok := parseEnhanced(msg); ok {
		msg = rest
	}
	return msg, nil
}

func (g *gsConn) doReset(ctx context.Context) error { return g.run(ctx, g.c.Reset) }
func (g *gsConn) doNoop(ctx context.Context) error  { return g.run(ctx, g.c.Noop) }
func (g *gsConn) isBroken() bool                    { return g.broken }
func (g *gsConn) setBroken()                        { g.broken = true }
func (g *gsConn) idleSince() time.Time              { return g.used }
func (g *gsConn) touch(t time.Time)                 { g.used = t }

func (g *gsConn) shut() {
	if !g.broken {
		g.c.CommandTimeout = time.Second
		g.c.Quit()
	}
	g.c.Close()
}

// crlfWriter turns a bare CR into CRLF before go-smtp's dot writer,
// which passes a bare CR through (it adds the CR to a bare LF itself).
type crlfWriter struct {
	w  io.Writer
	cr bool // the last byte written was a CR
}

func (c *crlfWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if c.cr {
			c.cr = false
			if b[0] != '\n' {
				if _, err := io.WriteString(c.w, "\n"); err != nil {
					return 0, err
				}
			}
		}
		i := bytes.IndexByte(b, '\r')
		if i < 0 {
			if _, err := c.w.Write(b); err != nil {
				return 0, err
			}
			break
		}
		if _, err := c.w.Write(b[:i+1]); err != nil {
			return 0, err
		}
		c.cr = true
		b = b[i+1:]
	}
	return n, nil
}

func (c *crlfWriter) flush() error {
	if c.cr {
		c.cr = false
		_, err := io.WriteString(c.w, "\n")
		return err
	}
	return nil
}

func init() {
	if os.Getenv("OUTGUARD_NEXTHOP_CLIENT") == "gosmtp" {
		dial = dialGoSMTP
	}
}
