package arf

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/smtpclient"
)

// SMTPSender delivers reports over SMTP with outguard's SMTP client
// (internal/smtpclient, the one the relay uses for the next hop). Its Send
// method is a SendFunc.
type SMTPSender struct {
	// Address is host:port of the report relay.
	Address string
	// TLS is "none", "starttls" (required), "starttls_optional" (used when
	// offered) or "implicit". Default none.
	TLS string
	// TLSConfig verifies the relay; nil verifies against the host of
	// Address with the system roots.
	TLSConfig *tls.Config
	// Username and Password, when set, authenticate with AUTH PLAIN.
	Username string
	Password string
	// Helo is the name sent in EHLO. Default "localhost".
	Helo string
	// Dial opens the connection. Default net.Dialer.DialContext with a
	// 30-second timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// dialFunc makes a Dial function a smtpclient.Dialer.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// Send delivers raw to rcpts with envelope sender from ("" for <>). ctx
// bounds the whole attempt: when it ends, the command in progress fails
// at once. Each command also has the timeouts RFC 5321 §4.5.3.2
// recommends (5 minutes; 10 for the message's final reply, with some
// leeway), which only matter when ctx has no earlier deadline.
func (s *SMTPSender) Send(ctx context.Context, from string, rcpts []string, raw []byte) error {
	o := smtpclient.Options{
		Address:     s.Address,
		TLS:         s.TLS,
		TLSConfig:   s.TLSConfig,
		Username:    s.Username,
		Password:    s.Password,
		Helo:        s.Helo,
		Timeout:     5 * time.Minute,
		DataTimeout: 12 * time.Minute,
		Dialer:      &net.Dialer{Timeout: 30 * time.Second},
	}
	if s.Dial != nil {
		o.Dialer = dialFunc(s.Dial)
	}
	c, err := smtpclient.Dial(ctx, o)
	if err != nil {
		return fmt.Errorf("arf: report relay %s: %w", s.Address, err)
	}
	defer c.Close()
	mo := smtpclient.MailOptions{Body8Bit: has8bit(raw), Size: int64(len(raw)), UTF8: !isASCII(from)}
	for _, r := range rcpts {
		mo.UTF8 = mo.UTF8 || !isASCII(r)
	}
	if err := c.Mail(ctx, from, mo); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(ctx, r); err != nil {
			return err
		}
	}
	_, err = c.Send(ctx, bytes.NewReader(raw))
	return err
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// isPermanent reports whether a delivery error is final: ErrPermanent, or
// an SMTP reply with a 5xx code.
func isPermanent(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600
}
