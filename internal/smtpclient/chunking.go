package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// chunkSize is the most message octets in one BDAT command: the size of
// the buffer a message goes out through with DATA too.
const chunkSize = 32 << 10

// maxUnread is the most BDAT commands sent whose replies are unread. A
// larger message waits for the oldest reply before the next chunk, so
// the replies never fill the socket's receive buffer while the server,
// blocked writing them, stops reading the message (a deadlock until the
// timeout).
const maxUnread = 16

// errChunkRefused stops the copy of a message once the server refused
// one of its chunks.
var errChunkRefused = errors.New("chunk refused")

// Chunks reports whether Send uses BDAT: the server offers CHUNKING and
// PIPELINING (RFC 3030, RFC 2920), and Options.NoChunking is not set.
func (c *Conn) Chunks() bool {
	return !c.opts.NoChunking && c.Has("CHUNKING") && c.Has("PIPELINING")
}

// Send sends the transaction's message, r, and returns the server's
// final reply text without its enhanced code. When Chunks, r goes in
// BDAT chunks of chunkSize octets, the last one marked LAST, sent one
// after the other without waiting for their replies: one round trip
// instead of DATA's two (its 354, then the final reply). Line endings
// are made CRLF as Body makes them, without dot-stuffing (BDAT counts
// octets, so no line can end the message early), so that the server
// stores the same octets either way. Otherwise Send is Data then Body.
//
// Whatever the outcome, the server is back in its initial state
// afterwards (the next Mail needs no RSET), or the connection is Broken:
// a refusal that leaves the transaction open (DATA refused, a chunk
// refused) is followed by RSET, and a connection that cannot be reset
// is given up.
func (c *Conn) Send(ctx context.Context, r io.Reader) (string, error) {
	if !c.Chunks() {
		if err := c.Data(ctx); err != nil {
			c.abandon(ctx)
			return "", err
		}
		return c.Body(ctx, r)
	}
	var msg string
	err := c.run(ctx, func() error {
		if err := c.prepare(); err != nil {
			return err
		}
		c.conn.SetDeadline(time.Now().Add(c.opts.DataTimeout))
		ch := chunkers.Get().(*chunker)
		*ch = chunker{c: c, buf: ch.buf[:headroom]}
		defer func() {
			ch.c = nil
			chunkers.Put(ch)
		}()
		err := writeLines(ch, r, false)
		if err != nil && !errors.Is(err, errChunkRefused) {
			if !c.broken {
				// The message could not be read, with part of it sent:
				// as with Body, the connection is given up, and the
				// server drops the unfinished transaction.
				err = c.writeFailed(err)
			}
			return err
		}
		if err := ch.finish(); err != nil {
			return err
		}
		msg = ch.last
		return ch.refused
	})
	if err != nil {
		c.abandon(ctx)
	}
	return c.endMessage(msg, err)
}

// abandon ends a transaction that a failure may have left open with
// RSET; a connection that cannot be reset (its state then unknown) is
// marked Broken.
func (c *Conn) abandon(ctx context.Context) {
	if !c.broken && c.Reset(ctx) != nil {
		c.broken = true
	}
}

// chunker is the lineWriter that cuts a message into BDAT commands.
type chunker struct {
	c *Conn
	// buf holds the chunk being filled after headroom octets, where
	// send puts the BDAT command line: command and chunk then go to the
	// connection in one write.
	buf     []byte
	unread  int    // BDAT commands sent whose replies are unread
	refused error  // the first refusal of a chunk
	last    string // the final reply's text
}

// headroom fits the longest BDAT command line, "BDAT 32768 LAST" CRLF.
const headroom = 24

var chunkers = sync.Pool{New: func() any { return &chunker{buf: make([]byte, headroom, headroom+chunkSize)} }}

func (ch *chunker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if err := ch.room(); err != nil {
			return n - len(p), err
		}
		k := copy(ch.buf[len(ch.buf):cap(ch.buf)], p)
		ch.buf = ch.buf[:len(ch.buf)+k]
		p = p[k:]
	}
	return n, nil
}

func (ch *chunker) WriteString(s string) (int, error) {
	n := len(s)
	for len(s) > 0 {
		if err := ch.room(); err != nil {
			return n - len(s), err
		}
		k := copy(ch.buf[len(ch.buf):cap(ch.buf)], s)
		ch.buf = ch.buf[:len(ch.buf)+k]
		s = s[k:]
	}
	return n, nil
}

func (ch *chunker) WriteByte(b byte) error {
	if err := ch.room(); err != nil {
		return err
	}
	ch.buf = append(ch.buf, b)
	return nil
}

// room sends the buffer as a chunk when it is full (only then: the last
// chunk, sent by finish, is never empty unless the message is).
func (ch *chunker) room() error {
	if ch.refused != nil {
		return errChunkRefused
	}
	if len(ch.buf) < cap(ch.buf) {
		return nil
	}
	return ch.send(false)
}

// send writes the buffer as one BDAT command. With maxUnread replies
// outstanding it first reads the oldest.
func (ch *chunker) send(last bool) error {
	c := ch.c
	if ch.unread >= maxUnread {
		if err := c.text.W.Flush(); err != nil {
			return ch.fail(err)
		}
		if err := ch.readReply(); err != nil {
			return err
		}
		if ch.refused != nil {
			return errChunkRefused
		}
	}
	var line [headroom]byte
	cmd := strconv.AppendInt(append(line[:0], "BDAT "...), int64(len(ch.buf)-headroom), 10)
	if last {
		cmd = append(cmd, " LAST"...)
	}
	cmd = append(cmd, "\r\n"...)
	start := headroom - len(cmd)
	copy(ch.buf[start:], cmd)
	if _, err := c.text.W.Write(ch.buf[start:]); err != nil {
		return ch.fail(err)
	}
	ch.buf = ch.buf[:headroom]
	ch.unread++
	return nil
}

// finish sends the last chunk (unless a chunk was refused) and reads
// every reply left.
func (ch *chunker) finish() error {
	c := ch.c
	if ch.refused == nil {
		if err := ch.send(true); err != nil && !errors.Is(err, errChunkRefused) {
			return err
		}
	}
	if err := c.text.W.Flush(); err != nil {
		return ch.fail(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(c.opts.DataTimeout))
	for ch.unread > 0 {
		if err := ch.readReply(); err != nil {
			return err
		}
	}
	return nil
}

// readReply reads the reply to the oldest chunk sent: an I/O error is
// returned (the connection is broken), a refusal is kept in refused.
func (ch *chunker) readReply() error {
	ch.unread--
	code, m, err := ch.c.text.ReadResponse(250)
	_, m, err = ch.c.reply(code, m, err)
	if ch.c.broken {
		return err
	}
	if err != nil && ch.refused == nil {
		ch.refused = err
	}
	ch.last = m
	return nil
}

// fail marks the connection broken after a write error.
func (ch *chunker) fail(err error) error { return ch.c.writeFailed(err) }

// writeFailed marks the connection broken after a failure in the middle
// of a message, and wraps err in ErrTimeout or ErrUnavailable.
func (c *Conn) writeFailed(err error) error {
	c.broken = true
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return fmt.Errorf("%w: sending message: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: sending message: %v", ErrUnavailable, err)
}

// The chunker replaces the 32 KiB writer Body sends through.
var _ lineWriter = (*chunker)(nil)
var _ lineWriter = (*bufio.Writer)(nil)
