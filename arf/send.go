package arf

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPSender delivers reports over SMTP with go-smtp's client. Its Send
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
	// Dial opens the connection. Default net.Dialer.DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Send delivers raw to rcpts with envelope sender from ("" for <>).
func (s *SMTPSender) Send(ctx context.Context, from string, rcpts []string, raw []byte) error {
	dial := s.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second}
		dial = d.DialContext
	}
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		host, _, _ := net.SplitHostPort(s.Address)
		tlsConfig = &tls.Config{ServerName: host}
	}
	helo := s.Helo
	if helo == "" {
		helo = "localhost"
	}
	mode := s.TLS
	if mode == "starttls_optional" {
		// Ask first; go-smtp upgrades only a fresh client.
		offered, err := s.offersStartTLS(ctx, dial, helo)
		if err != nil {
			return err
		}
		mode = "none"
		if offered {
			mode = "starttls"
		}
	}
	c, err := s.open(ctx, dial, mode, tlsConfig)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return err
	}
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return err
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if !bytes.HasSuffix(raw, []byte("\n")) {
		if _, err := w.Write([]byte("\r\n")); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	_ = c.Quit()
	return nil
}

// open dials the relay and sets up TLS as mode says. The client is closed
// with the connection when ctx ends.
func (s *SMTPSender) open(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), mode string, tlsConfig *tls.Config) (*smtp.Client, error) {
	conn, err := dial(ctx, "tcp", s.Address)
	if err != nil {
		return nil, fmt.Errorf("arf: dialing report relay %s: %w", s.Address, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	switch mode {
	case "implicit":
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("arf: TLS with report relay %s: %w", s.Address, err)
		}
		return smtp.NewClient(tc), nil
	case "starttls":
		c, err := smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			return nil, fmt.Errorf("arf: STARTTLS with report relay %s: %w", s.Address, err)
		}
		return c, nil
	}
	return smtp.NewClient(conn), nil
}

func (s *SMTPSender) offersStartTLS(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), helo string) (bool, error) {
	c, err := s.open(ctx, dial, "none", nil)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return false, err
	}
	ok, _ := c.Extension("STARTTLS")
	_ = c.Quit()
	return ok, nil
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
