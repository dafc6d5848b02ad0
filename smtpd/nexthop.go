package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/smtpclient"
)

// NextHop is where relayed mail goes. Begin opens one transaction with
// MAIL FROM; the caller then adds recipients one by one and finishes with
// Data, or gives up with Abort. Exactly one of Data and Abort ends every
// transaction.
type NextHop interface {
	Begin(ctx context.Context, from string, opts MailOptions) (NextHopTx, error)
}

// NextHopTx is one transaction on the next hop.
type NextHopTx interface {
	// Rcpt adds a recipient. A refusal is an *smtp.SMTPError carrying the
	// next hop's reply.
	Rcpt(ctx context.Context, to string) error
	// Data sends the message and returns the next hop's final reply text.
	Data(ctx context.Context, r io.Reader) (string, error)
	// Abort discards the transaction (RSET) and releases the connection.
	Abort()
}

// MailOptions are the MAIL FROM parameters passed on to the next hop.
type MailOptions = smtpclient.MailOptions

type deliveryNameKey struct{}

// WithDeliveryName returns ctx carrying the name Deliver gives the message
// at the next hop (MailOptions.Name), e.g. "<log id>.arf" for the report
// about a blocked transaction.
func WithDeliveryName(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, deliveryNameKey{}, name)
}

// Dialer opens network connections; *net.Dialer is one.
type Dialer = smtpclient.Dialer

// NextHopOptions configure an SMTP next hop.
type NextHopOptions struct {
	// Address is host:port.
	Address string
	// TLS is "none", "starttls" (required), "starttls_optional" or
	// "implicit".
	TLS string
	// ServerName is verified in the certificate; default: Address's host.
	ServerName string
	// InsecureSkipVerify disables certificate verification.
	InsecureSkipVerify bool
	// Username and Password, when set, authenticate with AUTH PLAIN.
	Username, Password string
	// Helo is the EHLO name.
	Helo string
	// Timeout bounds each command; DataTimeout the message transfer.
	Timeout, DataTimeout time.Duration
	// PoolSize is the most idle connections kept; 0 disables pooling.
	PoolSize int
	// IdleTimeout closes pooled connections unused for this long; a
	// connection idle for more than a second is checked with NOOP first.
	IdleTimeout time.Duration
	// NoChunking sends every message with DATA, even to a next hop that
	// offers CHUNKING (smtpclient.Options.NoChunking).
	NoChunking bool
	// Dialer is a test seam; default net.Dialer.
	Dialer Dialer
	// Metrics receives latencies and pool size; may be nil.
	Metrics *Metrics
}

func (o *NextHopOptions) tlsConfig() *tls.Config {
	name := o.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(o.Address)
	}
	return &tls.Config{ServerName: name, InsecureSkipVerify: o.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
}

// SMTPNextHop relays to an SMTP server through a bounded pool of
// connections reused across transactions. Its connections are
// internal/smtpclient's: a connection left clean by a finished DATA takes
// the next MAIL without RSET or EHLO, and every command runs under the
// caller's context, so a cancelled session abandons a stalled next hop
// (the client hears 451 4.4.1).
type SMTPNextHop struct {
	opts NextHopOptions
	conn smtpclient.Options

	mu     sync.Mutex
	idle   []*pooledConn
	closed bool
}

// pooledConn is a connection and when it was last returned to the pool.
type pooledConn struct {
	*smtpclient.Conn
	used time.Time
}

var _ NextHop = (*SMTPNextHop)(nil)

// NewSMTPNextHop validates o and returns the next hop. Close it to close
// the pooled connections.
func NewSMTPNextHop(o NextHopOptions) (*SMTPNextHop, error) {
	if _, _, err := net.SplitHostPort(o.Address); err != nil {
		return nil, fmt.Errorf("smtpd: next hop address %q: %w", o.Address, err)
	}
	if o.TLS == "" {
		o.TLS = "none"
	}
	if o.Helo == "" {
		o.Helo = "localhost"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.DataTimeout == 0 {
		o.DataTimeout = 5 * time.Minute
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = time.Minute
	}
	return &SMTPNextHop{opts: o, conn: smtpclient.Options{
		Address:     o.Address,
		TLS:         o.TLS,
		TLSConfig:   o.tlsConfig(),
		Username:    o.Username,
		Password:    o.Password,
		Helo:        o.Helo,
		Timeout:     o.Timeout,
		DataTimeout: o.DataTimeout,
		Dialer:      o.Dialer,
		NoChunking:  o.NoChunking,
	}}, nil
}

// get returns a pooled connection in a clean state, or a new one.
func (h *SMTPNextHop) get(ctx context.Context) (*pooledConn, error) {
	now := time.Now()
	for {
		h.mu.Lock()
		n := len(h.idle)
		if n == 0 {
			h.mu.Unlock()
			break
		}
		c := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		h.opts.Metrics.poolSize(n - 1)
		idle := now.Sub(c.used)
		if idle > h.opts.IdleTimeout {
			c.Close()
			continue
		}
		// A connection idle for a while may have been closed by the
		// next hop; find out now rather than at MAIL.
		if idle > time.Second {
			if err := c.Noop(ctx); err != nil {
				c.Close()
				if ctx.Err() != nil {
					return nil, err
				}
				continue
			}
		}
		return c, nil
	}
	start := time.Now()
	c, err := smtpclient.Dial(ctx, h.conn)
	h.opts.Metrics.nextHop("connect", start, err)
	if err != nil {
		return nil, err
	}
	return &pooledConn{Conn: c}, nil
}

// put returns c to the pool, or closes it when the pool is full, closed
// or c is broken.
func (h *SMTPNextHop) put(c *pooledConn) {
	if c.Broken() {
		c.Close()
		return
	}
	c.used = time.Now()
	h.mu.Lock()
	if h.closed || len(h.idle) >= h.opts.PoolSize {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.idle = append(h.idle, c)
	n := len(h.idle)
	h.mu.Unlock()
	h.opts.Metrics.poolSize(n)
}

// Close closes the idle connections; connections in use close when their
// transaction ends.
func (h *SMTPNextHop) Close() error {
	h.mu.Lock()
	idle := h.idle
	h.idle = nil
	h.closed = true
	h.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	h.opts.Metrics.poolSize(0)
	return nil
}

// Begin takes a connection and sends MAIL FROM. A pooled connection that
// fails at MAIL without a reply is replaced by a fresh one once.
func (h *SMTPNextHop) Begin(ctx context.Context, from string, opts MailOptions) (NextHopTx, error) {
	for attempt := 0; ; attempt++ {
		c, err := h.get(ctx)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = c.Mail(ctx, from, opts)
		h.opts.Metrics.nextHop("mail", start, err)
		if err == nil {
			return &smtpTx{h: h, c: c}, nil
		}
		var serr *smtp.SMTPError
		if errors.As(err, &serr) {
			h.release(ctx, c)
			return nil, err
		}
		c.Close()
		if attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

// release puts c back after a refused command, resetting it first.
func (h *SMTPNextHop) release(ctx context.Context, c *pooledConn) {
	if !c.Broken() {
		if err := c.Reset(ctx); err != nil && !c.Broken() {
			// A refused RSET leaves the state unknown.
			c.Close()
			return
		}
	}
	h.put(c)
}

type smtpTx struct {
	h    *SMTPNextHop
	c    *pooledConn
	done bool
}

func (t *smtpTx) Rcpt(ctx context.Context, to string) error {
	if t.done {
		return fmt.Errorf("%w: transaction already ended", ErrNextHopUnavailable)
	}
	start := time.Now()
	err := t.c.Rcpt(ctx, to)
	t.h.opts.Metrics.nextHop("rcpt", start, err)
	return err
}

func (t *smtpTx) Data(ctx context.Context, r io.Reader) (string, error) {
	if t.done {
		return "", fmt.Errorf("%w: transaction already ended", ErrNextHopUnavailable)
	}
	t.done = true
	start := time.Now()
	// BDAT when the next hop offers CHUNKING, else DATA (smtpclient.Send).
	msg, err := t.c.Send(ctx, r)
	t.h.opts.Metrics.nextHop("data", start, err)
	// Send leaves the next hop in its initial state, reusable without
	// RSET or a fresh EHLO, or the connection broken (put closes it).
	t.h.put(t.c)
	return msg, err
}

// Abort discards the transaction with RSET, bounded by the next hop's
// command timeout, and releases the connection.
func (t *smtpTx) Abort() {
	if t.done {
		return
	}
	t.done = true
	t.h.release(context.Background(), t.c)
}

// Deliver relays one whole message through h: the path used to release
// quarantined mail and to send reports. Every recipient must be accepted.
func Deliver(ctx context.Context, h NextHop, from string, rcpts []string, raw []byte) error {
	name, _ := ctx.Value(deliveryNameKey{}).(string)
	tx, err := h.Begin(ctx, from, MailOptions{Body8Bit: has8bit(raw), Size: int64(len(raw)), Name: name})
	if err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := tx.Rcpt(ctx, r); err != nil {
			tx.Abort()
			return fmt.Errorf("recipient %s: %w", r, err)
		}
	}
	_, err = tx.Data(ctx, bytes.NewReader(raw))
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
